//! API tokens, the inbox, pagination and `Idempotency-Key` through the API.

use crate::both_dbs;
use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

both_dbs!(token_lifecycle_and_expiry, |s: TestServer| async move {
    let a = s.subscriber("a@example.fr").await;
    let b = s.subscriber("b@example.fr").await;
    let (st, t) = s
        .post(
            "/api/v1/tokens",
            Some(&a.token),
            json!({"name": "ci", "expires_in_days": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let ci = t["token"].as_str().unwrap().to_string();
    let ci_id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["expires_at"], "2026-11-27T09:00:00Z");
    let (_, list) = s.get("/api/v1/tokens", Some(&a.token)).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "sign-in"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none()),
        "secrets are never listed"
    );
    // Another subscriber cannot revoke it: 404, and it still works.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{ci_id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/v1/me", Some(&ci)).await.0, StatusCode::OK);
    // It expires after its lifetime.
    s.clock.advance(jiff::SignedDuration::from_hours(25));
    let (st, p) = s.get("/api/v1/me", Some(&ci)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    // Revoked tokens stop at once.
    let (_, t) = s
        .post("/api/v1/tokens", Some(&a.token), json!({"name": "short"}))
        .await;
    let (tok, id) = (
        t["token"].as_str().unwrap().to_string(),
        t["id"].as_str().unwrap().to_string(),
    );
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/api/v1/me", Some(&tok)).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Bad input.
    let (st, p) = s
        .post(
            "/api/v1/tokens",
            Some(&a.token),
            json!({"expires_in_days": 0}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_in_days"))
    );
    let (st, _) = s.post("/api/v1/tokens", None, json!({"name": "x"})).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.get("/api/v1/me", Some("mc_not-a-real-token")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .call(
            Method::DELETE,
            "/api/v1/tokens/not-an-id",
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
});

// the inbox is the subscriber's own; reading marks read; another's message is 404.
both_dbs!(inbox_is_private, |s: TestServer| async move {
    let a = s.subscriber("a@example.fr").await;
    let b = s.subscriber("b@example.fr").await;
    let (_, inbox) = s.get("/api/v1/messages", Some(&a.token)).await;
    let id = inbox["items"][0]["id"].as_str().unwrap().to_string();
    assert!(inbox["items"][0]["read_at"].is_null());
    let (st, _) = s
        .get(&format!("/api/v1/messages/{id}"), Some(&b.token))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, m) = s
        .get(&format!("/api/v1/messages/{id}"), Some(&a.token))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(m["read_at"], "2026-11-26T09:00:00Z");
    let (_, me) = s.get("/api/v1/me", Some(&a.token)).await;
    assert_eq!(me["unread_messages"], 0);
});

// Cursor pagination walks every item once; bad parameters are named.
both_dbs!(cursor_pagination, |s: TestServer| async move {
    for i in 0..7 {
        s.post(
            "/api/v1/signup",
            None,
            s.signup_form(&format!("p{i}@example.fr")).await,
        )
        .await;
    }
    let op = s
        .operator(
            "support@maocloud.test",
            maocloud_types::OperatorRole::Support,
        )
        .await;
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/subscribers?limit=3&cursor={c}"),
            None => "/api/v1/subscribers?limit=3".into(),
        };
        let (st, p) = s.get(&path, Some(&op.token)).await;
        assert_eq!(st, StatusCode::OK, "{p}");
        pages += 1;
        seen.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["email"].as_str().unwrap().to_string()),
        );
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).rev().map(|i| format!("p{i}@example.fr")).collect();
    assert_eq!(seen, expected, "newest first, each once");
    let (_, found) = s
        .get("/api/v1/subscribers?search=P3%40", Some(&op.token))
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("cursor=garbage", "cursor"),
        ("limit=abc", "limit"),
        ("colour=red", "colour"),
    ] {
        let (st, p) = s
            .get(&format!("/api/v1/subscribers?{q}"), Some(&op.token))
            .await;
        assert!(st.is_client_error(), "{q}: {st}");
        assert_eq!(p["field"], field, "{q}: {p}");
    }
});

// Idempotency-Key: a retried sign-up replays the first answer and creates one account; the
// same key with another body is refused; a secret-bearing answer is never replayed.
both_dbs!(idempotency_key_on_creation, |s: TestServer| async move {
    let form = s.signup_form("once@example.fr").await;
    let send = |body: serde_json::Value, key: &'static str| {
        s.http
            .post(format!("{}/api/v1/signup", s.url))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let r1 = send(form.clone(), "k-1").await.unwrap();
    assert_eq!(r1.status(), StatusCode::CREATED);
    let b1 = r1.text().await.unwrap();
    let r2 = send(form.clone(), "k-1").await.unwrap();
    assert_eq!(r2.status(), StatusCode::CREATED);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    assert_eq!(r2.text().await.unwrap(), b1);
    let mut other = form.clone();
    other["email"] = json!("twice@example.fr");
    let r3 = send(other, "k-1").await.unwrap();
    assert_eq!(r3.status(), StatusCode::CONFLICT);
    let p: serde_json::Value = r3.json().await.unwrap();
    assert_eq!(p["field"], "Idempotency-Key");
    // Without the key, the duplicate is a plain conflict on the email.
    let (st, p) = s.post("/api/v1/signup", None, form).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::CONFLICT, Some("email"))
    );
    // Token creation: the retry does not show the secret again.
    let creds = json!({"email": "once@example.fr", "password": PASSWORD});
    let t1 = s
        .http
        .post(format!("{}/api/v1/tokens", s.url))
        .header("Idempotency-Key", "t-1")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(t1.status(), StatusCode::CREATED);
    let t2 = s
        .http
        .post(format!("{}/api/v1/tokens", s.url))
        .header("Idempotency-Key", "t-1")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(t2.status(), StatusCode::CONFLICT);
});
