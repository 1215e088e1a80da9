//! Accounts through the API: sign-up and its bad input, email verification, password
//! reset, sign-in throttling, TOTP.

use crate::both_dbs;
use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn link_token(body: &str, path: &str) -> String {
    let start = body
        .find(path)
        .unwrap_or_else(|| panic!("no {path} link in: {body}"))
        + path.len();
    body[start..].split_whitespace().next().unwrap().to_string()
}

async fn subscriber_count(s: &TestServer) -> usize {
    let page = maocloud_app::accounts::subscriber_list(
        &s.app,
        &maocloud_app::Ctx::system(),
        None,
        &maocloud_types::PageRequest::first(200),
    )
    .await
    .unwrap();
    page.items.len()
}

// a consumer signs up, the acceptance of the current terms is recorded with its version
// and time, and /me shows the profile.
both_dbs!(
    signup_records_terms_and_profile,
    |s: TestServer| async move {
        let sub = s.subscriber("alex@example.fr").await;
        let (st, me) = s.get("/api/v1/me", Some(&sub.token)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(me["kind"], "subscriber");
        assert_eq!(me["email"], "alex@example.fr");
        assert_eq!(me["email_verified"], false);
        assert_eq!(me["profile"]["city"], "Paris");
        assert_eq!(me["profile"]["customer_kind"], "consumer");
        let op = s
            .operator("ops@maocloud.test", maocloud_types::OperatorRole::Support)
            .await;
        let (st, d) = s
            .get(&format!("/api/v1/subscribers/{}", sub.id), Some(&op.token))
            .await;
        assert_eq!(st, StatusCode::OK, "{d}");
        let acc = &d["terms_acceptances"][0];
        assert_eq!(acc["version"], s.terms_version().await);
        assert_eq!(acc["accepted_at"], "2026-11-26T09:00:00Z");
    }
);

// professionals give a company name, a SIREN/SIRET and a VAT number, checked for form.
both_dbs!(
    professional_signup_checks_company_ids,
    |s: TestServer| async move {
        let mut form = s.signup_form("pro@example.fr").await;
        form["customer_kind"] = json!("professional");
        let (st, p) = s.post("/api/v1/signup", None, form.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["company_name", "company_id", "vat_number"], "{p}");
        form["company_name"] = json!("Alouettes SAS");
        form["company_id"] = json!("732 829 321");
        form["vat_number"] = json!("FR44732829320");
        let (st, p) = s.post("/api/v1/signup", None, form.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p["field"], "company_id", "{p}");
        form["company_id"] = json!("73282932000074");
        form["vat_number"] = json!("FR45732829320");
        let (_, p) = s.post("/api/v1/signup", None, form.clone()).await;
        assert_eq!(p["field"], "vat_number", "{p}");
        form["vat_number"] = json!("FR44732829320");
        let (st, p) = s.post("/api/v1/signup", None, form).await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
    }
);

// Bad input gets a 4xx problem naming the field, and nothing is created.
both_dbs!(
    signup_bad_input_changes_nothing,
    |s: TestServer| async move {
        s.subscriber("taken@example.fr").await;
        let before = subscriber_count(&s).await;
        let good = s.signup_form("new@example.fr").await;
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                json!({"email": "TAKEN@example.fr"}),
                StatusCode::CONFLICT,
                "email",
            ),
            (
                json!({"password": "short"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "password",
            ),
            (
                json!({"password": "aaaaaaaaaaaaaaa"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "password",
            ),
            (
                json!({"email": "not-an-email"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "email",
            ),
            (
                json!({"customer_kind": "alien"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "customer_kind",
            ),
            (
                json!({"postal_code": "7500"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "postal_code",
            ),
            (
                json!({"country": "France"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "country",
            ),
            (
                json!({"accept_terms_version": "1999-01"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "accept_terms_version",
            ),
            (
                json!({"company_id": "732829320"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "company_id",
            ),
            (
                json!({"is_admin": true}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "is_admin",
            ),
            (
                json!({"email": 42}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "email",
            ),
            (
                json!({"full_name": "x".repeat(300)}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "full_name",
            ),
        ];
        for (patch, status, field) in cases {
            let mut body = good.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (st, p) = s.post("/api/v1/signup", None, body).await;
            assert_eq!(st, status, "{patch} → {p}");
            assert_eq!(p["field"], field, "{patch} → {p}");
        }
        // A missing field, malformed JSON, the wrong content type, an oversized body.
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("city");
        let (st, p) = s.post("/api/v1/signup", None, missing).await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("city")),
            "{p}"
        );
        let r = s
            .http
            .post(format!("{}/api/v1/signup", s.url))
            .header("content-type", "application/json")
            .body("{\"email\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let r = s
            .http
            .post(format!("{}/api/v1/signup", s.url))
            .header("content-type", "text/plain")
            .body(good.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let mut huge = good.clone();
        huge["full_name"] = json!("x".repeat(100_000));
        let r = s
            .http
            .post(format!("{}/api/v1/signup", s.url))
            .json(&huge)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            subscriber_count(&s).await,
            before,
            "bad input created nobody"
        );
    }
);

// Email verification by the emailed one-time link; the link works once.
both_dbs!(email_verification_link, |s: TestServer| async move {
    let sub = s.subscriber("verify@example.fr").await;
    assert_eq!(s.run_jobs().await, 1);
    let body = s
        .last_email_to("verify@example.fr")
        .await
        .expect("verification email delivered");
    let token = link_token(&body, "/verify-email?token=");
    let (st, _) = s
        .post(
            "/api/v1/email-verification/confirm",
            None,
            json!({"token": token}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, me) = s.get("/api/v1/me", Some(&sub.token)).await;
    assert_eq!(me["email_verified"], true);
    let (st, p) = s
        .post(
            "/api/v1/email-verification/confirm",
            None,
            json!({"token": token}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("token"))
    );
    // the email is in the subscriber's inbox too.
    let (_, inbox) = s.get("/api/v1/messages", Some(&sub.token)).await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1);
    assert!(inbox["items"][0]["body"]
        .as_str()
        .unwrap()
        .contains("/verify-email?token="));
});

// Password reset by an emailed one-time link: the old password and every old token stop
// working; an expired link is refused; unknown addresses get the same answer and no email.
both_dbs!(
    password_reset_revokes_everything,
    |s: TestServer| async move {
        let sub = s.subscriber("reset@example.fr").await;
        let (st, _) = s
            .post(
                "/api/v1/password-reset",
                None,
                json!({"email": "nobody@example.fr"}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        assert!(s.emails_to("nobody@example.fr").await.is_empty());
        let (st, _) = s
            .post(
                "/api/v1/password-reset",
                None,
                json!({"email": "reset@example.fr"}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        s.run_jobs().await;
        let token = link_token(
            &s.last_email_to("reset@example.fr").await.unwrap(),
            "/reset-password?token=",
        );
        let (st, p) = s
            .post(
                "/api/v1/password-reset/complete",
                None,
                json!({"token": token, "password": "short"}),
            )
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
        );
        // The failed attempt did not burn the link (nothing changed).
        let (st, _) = s
            .post(
                "/api/v1/password-reset/complete",
                None,
                json!({"token": token, "password": "New-Password-Alouette-7"}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = s.get("/api/v1/me", Some(&sub.token)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "old tokens are revoked");
        let (st, _) = s
            .post(
                "/api/v1/tokens",
                None,
                json!({"email": "reset@example.fr", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "the old password no longer works"
        );
        s.sign_in("reset@example.fr", "New-Password-Alouette-7", None)
            .await;
        // A link used after its lifetime (60 min) is refused.
        s.post(
            "/api/v1/password-reset",
            None,
            json!({"email": "reset@example.fr"}),
        )
        .await;
        s.run_jobs().await;
        let late = link_token(
            &s.last_email_to("reset@example.fr").await.unwrap(),
            "/reset-password?token=",
        );
        assert!(s
            .emails_to("reset@example.fr")
            .await
            .iter()
            .any(|e| e.1.contains(&late)));
        s.clock.advance(jiff::SignedDuration::from_mins(61));
        let (st, _) = s
            .post(
                "/api/v1/password-reset/complete",
                None,
                json!({"token": late, "password": "Another-Password-Alouette-8"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    }
);

// Sign-in is throttled per account (5 failures in 15 minutes) and per IP (30).
both_dbs!(sign_in_is_throttled, |s: TestServer| async move {
    s.subscriber("victim@example.fr").await;
    for _ in 0..5 {
        let (st, p) = s
            .post(
                "/api/v1/tokens",
                None,
                json!({"email": "victim@example.fr", "password": "wrong-password-xx"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    }
    let (st, _) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": "victim@example.fr", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    s.clock.advance(jiff::SignedDuration::from_mins(16));
    s.sign_in("victim@example.fr", PASSWORD, None).await;
    // Per IP: many accounts guessed from one address.
    for i in 0..30 {
        let (st, _) = s
            .post(
                "/api/v1/tokens",
                None,
                json!({"email": format!("guess{i}@example.fr"), "password": "wrong-password-xx"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, p) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": "victim@example.fr", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{p}");
});

// TOTP: enrolment needs a current code; then sign-in needs it; a wrong or replayed code fails.
both_dbs!(totp_second_factor, |s: TestServer| async move {
    let sub = s.subscriber("totp@example.fr").await;
    let (st, e) = s
        .call(Method::POST, "/api/v1/me/totp", Some(&sub.token), None)
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(e["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Maocloud:totp%40example.fr?secret="));
    let (st, p) = s
        .post(
            "/api/v1/me/totp/confirm",
            Some(&sub.token),
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code"))
    );
    let (st, _) = s
        .post(
            "/api/v1/me/totp/confirm",
            Some(&sub.token),
            json!({"code": s.totp_code(&secret)}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.clock.advance(jiff::SignedDuration::from_secs(30));
    let (st, p) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": "totp@example.fr", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("totp"))
    );
    let (st, _) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": "totp@example.fr", "password": PASSWORD, "totp": "123456"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let code = s.totp_code(&secret);
    s.sign_in("totp@example.fr", PASSWORD, Some(&code)).await;
    let (st, _) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": "totp@example.fr", "password": PASSWORD, "totp": code}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "a code works once");
});

// Operators must use TOTP outside demo mode.
both_dbs!(operators_need_totp, |s: TestServer| async move {
    let op = s
        .operator("admin@maocloud.test", maocloud_types::OperatorRole::Admin)
        .await;
    let (st, p) = s
        .post(
            "/api/v1/tokens",
            None,
            json!({"email": op.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("totp"))
    );
    let (st, me) = s.get("/api/v1/me", Some(&op.token)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            me["kind"].as_str(),
            me["role"].as_str(),
            me["totp_enabled"].as_bool()
        ),
        (Some("operator"), Some("admin"), Some(true))
    );
    let (st, _) = s
        .post(
            "/api/v1/me/totp/disable",
            Some(&op.token),
            json!({"code": s.totp_code(&op.totp_secret)}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
});

// The reset form cannot flood a mailbox: three links an hour per account.
both_dbs!(
    password_reset_requests_are_limited,
    |s: TestServer| async move {
        s.subscriber("flood@example.fr").await;
        for _ in 0..3 {
            assert_eq!(
                s.post(
                    "/api/v1/password-reset",
                    None,
                    json!({"email": "flood@example.fr"})
                )
                .await
                .0,
                StatusCode::ACCEPTED
            );
        }
        let (st, _) = s
            .post(
                "/api/v1/password-reset",
                None,
                json!({"email": "flood@example.fr"}),
            )
            .await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
        s.clock.advance(jiff::SignedDuration::from_mins(61));
        assert_eq!(
            s.post(
                "/api/v1/password-reset",
                None,
                json!({"email": "flood@example.fr"})
            )
            .await
            .0,
            StatusCode::ACCEPTED
        );
    }
);
