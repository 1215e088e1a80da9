//! The API contract and the platform endpoints: the checked-in OpenAPI document equals the one
//! generated from the code (and the one served), `/healthz`, `/metrics`.

use crate::harness::*;
use reqwest::StatusCode;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

#[test]
fn checked_in_openapi_matches_the_code() {
    let generated = maocloud_api::openapi_json();
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi.json is out of date: run `cargo run -p maocloud -- openapi > openapi.json` and review the diff"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_openapi_is_the_checked_in_one() {
    let s = TestServer::start().await;
    let r = s
        .http
        .get(format!("{}/api/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), maocloud_api::openapi_json());
    // Unknown API paths are problem+json 404s.
    let (st, p) = s.get("/api/v1/nothing-here", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(p["status"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.metrics_token = Some("scrape-secret-123".into())
    })
    .await;
    let (st, h) = s.get("/healthz", None).await;
    assert_eq!(
        (st, h["status"].as_str(), h["database"].as_str()),
        (StatusCode::OK, Some("ok"), Some("sqlite"))
    );
    let sub = s.subscriber("m@example.fr").await;
    s.get("/api/v1/me", Some(&sub.token)).await;
    assert_eq!(s.get("/metrics", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/metrics", Some(&sub.token)).await.0,
        StatusCode::FORBIDDEN
    );
    let admin = s
        .operator("admin@maocloud.test", maocloud_types::OperatorRole::Admin)
        .await;
    for token in [admin.token.as_str(), "scrape-secret-123"] {
        let r = s
            .http
            .get(format!("{}/metrics", s.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = r.text().await.unwrap();
        assert!(text.contains("maocloud_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("# TYPE maocloud_http_request_duration_seconds histogram"));
        assert!(text.contains("maocloud_jobs{state=\"ready\"} 1"), "{text}");
    }
}
