//! Personal data through the HTTP API: consents and their history round-trip and name a
//! bad purpose; the one-click opt-out, as JSON or as a mail client posts it (RFC 8058),
//! and a bad token changes nothing; restriction and objection; the public register of
//! processors that only admins edit; statistics for billing operators only, hiding small
//! groups; the access export requested, built by its job and downloaded as a real ZIP by
//! its subscriber alone.

use crate::both_dbs;
use crate::harness::*;
use maocloud_types::OperatorRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;

async fn put(s: &TestServer, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    s.call(Method::PUT, path, Some(token), Some(body)).await
}

fn granted(v: &Value) -> Vec<String> {
    v["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["granted"] == json!(true))
        .map(|p| p["purpose"].as_str().unwrap().to_string())
        .collect()
}

both_dbs!(
    consents_and_choices_round_trip_with_their_history,
    |s: TestServer| async move {
        let a = s.subscriber("consent@example.fr").await;
        // Opt-in: every purpose listed, none granted, no history.
        let (st, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let purposes: Vec<&str> = v["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["purpose"].as_str().unwrap())
            .collect();
        assert_eq!(
            purposes,
            ["loyalty", "prospecting", "surveys", "promotions"]
        );
        assert!(granted(&v).is_empty());
        assert_eq!(v["history"], json!([]));

        let t1 = s.app.now();
        let (st, v) = put(
            &s,
            "/api/v1/privacy/consents/promotions",
            &a.token,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(granted(&v), ["promotions"]);
        s.clock.advance(jiff::SignedDuration::from_secs(60));
        put(
            &s,
            "/api/v1/privacy/consents/surveys",
            &a.token,
            json!({"granted": true, "source": "cli"}),
        )
        .await;
        s.clock.advance(jiff::SignedDuration::from_secs(60));
        put(
            &s,
            "/api/v1/privacy/consents/surveys",
            &a.token,
            json!({"granted": false}),
        )
        .await;
        let (_, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert_eq!(granted(&v), ["promotions"]);
        let history: Vec<(&str, bool, &str, &str)> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["purpose"].as_str().unwrap(),
                    e["granted"].as_bool().unwrap(),
                    e["source"].as_str().unwrap(),
                    e["ip"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            history,
            [
                ("promotions", true, "api", "127.0.0.1"),
                ("surveys", true, "cli", "127.0.0.1"),
                ("surveys", false, "api", "127.0.0.1"),
            ]
        );
        assert_eq!(v["history"][0]["at"], t1.to_string());

        // Bad input names its field and records nothing.
        let (st, p) = put(
            &s,
            "/api/v1/privacy/consents/profiling",
            &a.token,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("purpose"))
        );
        let (st, p) = put(
            &s,
            "/api/v1/privacy/consents/loyalty",
            &a.token,
            json!({"granted": true, "source": "console"}),
        )
        .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("source"))
        );
        let (st, p) = put(
            &s,
            "/api/v1/privacy/consents/loyalty",
            &a.token,
            json!({"granted": "yes"}),
        )
        .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("granted"))
        );
        let (_, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert_eq!(v["history"].as_array().unwrap().len(), 3);

        // Restriction and objection, with their history.
        let (st, v) = put(
            &s,
            "/api/v1/privacy/choices/restriction",
            &a.token,
            json!({"active": true, "reason": "while my complaint is examined"}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            (v["restricted"].as_bool(), v["objected"].as_bool()),
            (Some(true), Some(false))
        );
        let (_, v) = put(
            &s,
            "/api/v1/privacy/choices/objection",
            &a.token,
            json!({"active": true, "source": "cli"}),
        )
        .await;
        assert_eq!(
            (v["restricted"].as_bool(), v["objected"].as_bool()),
            (Some(true), Some(true))
        );
        let (_, v) = put(
            &s,
            "/api/v1/privacy/choices/restriction",
            &a.token,
            json!({"active": false}),
        )
        .await;
        let (st, got) = s.get("/api/v1/privacy/choices", Some(&a.token)).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(got, v);
        assert_eq!(v["restricted"], json!(false));
        let h: Vec<(&str, bool, &str)> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["choice"].as_str().unwrap(),
                    e["active"].as_bool().unwrap(),
                    e["source"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            h,
            [
                ("restriction", true, "api"),
                ("objection", true, "cli"),
                ("restriction", false, "api"),
            ]
        );
        assert_eq!(v["history"][0]["reason"], "while my complaint is examined");
        let (st, p) = put(
            &s,
            "/api/v1/privacy/choices/profiling",
            &a.token,
            json!({"active": true}),
        )
        .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("choice"))
        );

        // The support desk reads a subscriber's consents and choices, audited; other
        // desks may not, and an operator must say whose.
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let (st, v) = s
            .get(
                &format!("/api/v1/privacy/consents?subscriber_id={}", a.id),
                Some(&support.token),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(granted(&v), ["promotions"]);
        let (st, _) = s
            .get(
                &format!("/api/v1/privacy/choices?subscriber_id={}", a.id),
                Some(&support.token),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = s
            .get(
                &format!("/api/v1/privacy/consents?subscriber_id={}", a.id),
                Some(&billing.token),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, p) = s
            .get("/api/v1/privacy/consents", Some(&support.token))
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("subscriber_id"))
        );
        let (st, p) = s
            .get(
                "/api/v1/privacy/consents?subscriber_id=nobody",
                Some(&support.token),
            )
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("subscriber_id"))
        );
        let (_, log) = s
            .get(
                &format!("/api/v1/audit-log?subscriber_id={}", a.id),
                Some(&admin.token),
            )
            .await;
        let actions: Vec<&str> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == format!("operator:{}", support.id))
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"privacy.consents.read") && actions.contains(&"privacy.choices.read"),
            "{actions:?}"
        );
        // Only the subscriber changes their consent.
        let (st, _) = put(
            &s,
            "/api/v1/privacy/consents/loyalty",
            &support.token,
            json!({"granted": true}),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
);

/// The opt-out token of the newest marketing email to `addr`.
async fn opt_out_token(s: &TestServer, addr: &str) -> String {
    let emails = s.emails_to(addr).await;
    let body = &emails
        .iter()
        .find(|e| e.1.contains("unsubscribe?t="))
        .expect("a marketing email")
        .1;
    body.split("unsubscribe?t=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A one-click opt-out as a mail client posts it (RFC 8058).
async fn one_click(s: &TestServer, token: &str, form: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(format!("{}/api/v1/unsubscribe?t={token}", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

both_dbs!(
    marketing_and_the_one_click_opt_out,
    |s: TestServer| async move {
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let a = s.subscriber("promo@example.fr").await;
        let b = s.subscriber("quiet@example.fr").await;
        s.verify_email(&a.email).await;
        put(
            &s,
            "/api/v1/privacy/consents/promotions",
            &a.token,
            json!({"granted": true}),
        )
        .await;
        let mail = json!({"purpose": "promotions", "subject": "Cloud M -20 %", "body": "This month only."});
        for t in [&a.token, &billing.token] {
            let (st, _) = s
                .post("/api/v1/marketing/emails", Some(t), mail.clone())
                .await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        let (st, p) = s
            .post(
                "/api/v1/marketing/emails",
                Some(&admin.token),
                json!({"purpose": "spam", "subject": "x", "body": "y"}),
            )
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("purpose"))
        );
        let (st, v) = s
            .post("/api/v1/marketing/emails", Some(&admin.token), mail.clone())
            .await;
        assert_eq!(
            (st, v["recipients"].as_i64()),
            (StatusCode::ACCEPTED, Some(1))
        );
        assert!(s
            .emails_to(&b.email)
            .await
            .iter()
            .all(|e| !e.0.contains("Cloud M")));
        let token = opt_out_token(&s, &a.email).await;

        // A bad token is refused, naming it, and changes nothing.
        let mut forged = token.clone();
        forged.replace_range(
            forged.len() - 1..,
            if forged.ends_with('0') { "1" } else { "0" },
        );
        let (st, p) = s
            .post("/api/v1/unsubscribe", None, json!({"token": forged}))
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("token"))
        );
        let (st, _) = one_click(&s, &forged, "List-Unsubscribe=One-Click").await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        // A form post that is not a one-click one does nothing either.
        let (st, p) = one_click(&s, &token, "List-Unsubscribe=Maybe").await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("List-Unsubscribe"))
        );
        let r = s
            .http
            .post(format!("{}/api/v1/unsubscribe?t={token}", s.url))
            .header("content-type", "text/plain")
            .body("unsubscribe me")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (_, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert_eq!(granted(&v), ["promotions"]);
        assert_eq!(v["history"].as_array().unwrap().len(), 1);

        // The mail client's one-click post withdraws the consent, recorded as such.
        let (st, v) = one_click(&s, &token, "List-Unsubscribe=One-Click").await;
        assert_eq!(
            (st, v["purpose"].as_str()),
            (StatusCode::OK, Some("promotions"))
        );
        let (_, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert!(granted(&v).is_empty());
        let last = v["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (
                last["purpose"].as_str(),
                last["granted"].as_bool(),
                last["source"].as_str()
            ),
            (Some("promotions"), Some(false), Some("unsubscribe_link"))
        );
        let (_, v) = s
            .post("/api/v1/marketing/emails", Some(&admin.token), mail.clone())
            .await;
        assert_eq!(v["recipients"], 0);
        // The same link as JSON, after consenting again.
        put(
            &s,
            "/api/v1/privacy/consents/promotions",
            &a.token,
            json!({"granted": true}),
        )
        .await;
        let (st, v) = s
            .post("/api/v1/unsubscribe", None, json!({"token": token}))
            .await;
        assert_eq!(
            (st, v["purpose"].as_str()),
            (StatusCode::OK, Some("promotions"))
        );
        let (_, v) = s.get("/api/v1/privacy/consents", Some(&a.token)).await;
        assert!(granted(&v).is_empty());
    }
);

both_dbs!(
    the_register_of_processors_over_http,
    |s: TestServer| async move {
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let sub = s.subscriber("reader@example.fr").await;
        let (st, v) = s.get("/api/v1/processors", None).await;
        assert_eq!((st, v), (StatusCode::OK, json!([])));
        let entry = json!({
            "kind": "processor",
            "name": "Banque Exemple",
            "purpose": "SEPA direct debits",
            "data_categories": "name, IBAN, amounts",
            "country": "FR",
            "safeguards": "EU",
        });
        for t in [&sub.token, &support.token] {
            let (st, _) = s.post("/api/v1/processors", Some(t), entry.clone()).await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        let (st, _) = s.post("/api/v1/processors", None, entry.clone()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let mut bad = entry.clone();
        bad["country"] = json!("France");
        let (st, p) = s.post("/api/v1/processors", Some(&admin.token), bad).await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("country"))
        );
        let (st, created) = s
            .post("/api/v1/processors", Some(&admin.token), entry.clone())
            .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        // Everyone reads the register, signed in or not.
        let (st, v) = s.get("/api/v1/processors", None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v, json!([created]));
        let mut changed = entry.clone();
        changed["safeguards"] = json!("EU; ISO 27001 certified");
        let (st, _) = put(
            &s,
            &format!("/api/v1/processors/{id}"),
            &sub.token,
            changed.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, v) = put(
            &s,
            &format!("/api/v1/processors/{id}"),
            &admin.token,
            changed,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["safeguards"], "EU; ISO 27001 certified");
        let (_, list) = s.get("/api/v1/processors", Some(&sub.token)).await;
        assert_eq!(list[0]["safeguards"], "EU; ISO 27001 certified");
        let (st, _) = put(
            &s,
            "/api/v1/processors/not-an-id",
            &admin.token,
            entry.clone(),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/processors/{id}"),
                Some(&sub.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/processors/{id}"),
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(s.get("/api/v1/processors", None).await.1, json!([]));
        // A removed entry stays removed.
        let (st, _) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/processors/{id}"),
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = put(&s, &format!("/api/v1/processors/{id}"), &admin.token, entry).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
);

both_dbs!(
    statistics_for_billing_operators_only,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "solo", "Solo", 1000, 0).await;
        let sub = s.subscriber("alone@example.fr").await;
        crate::billing::subscribe(&s, &sub.token, &offer).await;
        let (st, v) = s
            .get("/api/v1/statistics?since=2026-11", Some(&billing.token))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            (v["k"].as_i64(), v["since"].as_str()),
            (Some(5), Some("2026-11"))
        );
        let names: Vec<&str> = v["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "subscribers_per_offer",
                "revenue_per_month_cents",
                "vms_per_size"
            ]
        );
        // One subscriber is fewer than k: the group is listed without numbers.
        let solo = &v["statistics"][0]["groups"][0];
        assert_eq!(solo["key"], "solo");
        assert_eq!(
            (&solo["subscribers"], &solo["total"]),
            (&Value::Null, &Value::Null)
        );
        let revenue = &v["statistics"][1]["groups"][0];
        assert_eq!(revenue["key"], "2026-11 solo");
        assert_eq!(revenue["total"], Value::Null);
        // Admins too; by default the last twelve months.
        let (st, v) = s.get("/api/v1/statistics", Some(&admin.token)).await;
        assert_eq!((st, v["since"].as_str()), (StatusCode::OK, Some("2025-12")));
        for t in [&sub.token, &support.token] {
            let (st, _) = s.get("/api/v1/statistics", Some(t)).await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        assert_eq!(
            s.get("/api/v1/statistics", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (st, p) = s
            .get("/api/v1/statistics?since=11-2026", Some(&billing.token))
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("since"))
        );
    }
);

both_dbs!(
    the_export_over_http_is_its_subscribers_alone,
    |s: TestServer| async move {
        let a = s.subscriber("export@example.fr").await;
        let other = s.subscriber("other@example.fr").await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        put(
            &s,
            "/api/v1/privacy/consents/loyalty",
            &a.token,
            json!({"granted": true}),
        )
        .await;
        let (st, e) = s
            .post("/api/v1/privacy/exports", Some(&a.token), json!({}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{e}");
        assert_eq!(e["status"], "queued");
        assert_eq!(e["requested_at"], s.app.now().to_string());
        assert_eq!(
            (&e["ready_at"], &e["size"], &e["file_name"]),
            (&Value::Null, &Value::Null, &Value::Null)
        );
        let id = e["id"].as_str().unwrap().to_string();
        let download = format!("/api/v1/privacy/exports/{id}/download");
        // One at a time, and not before it is ready.
        let (st, _) = s
            .post("/api/v1/privacy/exports", Some(&a.token), json!({}))
            .await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert_eq!(
            s.get(&download, Some(&a.token)).await.0,
            StatusCode::CONFLICT
        );
        // Operators have no export of their own.
        let (st, _) = s
            .post("/api/v1/privacy/exports", Some(&support.token), json!({}))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        s.run_jobs().await;
        let (st, list) = s.get("/api/v1/privacy/exports", Some(&a.token)).await;
        assert_eq!(st, StatusCode::OK);
        let e = &list[0];
        assert_eq!(
            (e["id"].as_str(), e["status"].as_str()),
            (Some(id.as_str()), Some("ready"))
        );
        assert_eq!(e["file_name"], "maocloud-export-2026-11-26.zip");
        assert!(e["expires_at"].as_str().unwrap() > e["ready_at"].as_str().unwrap());

        let r = s
            .http
            .get(format!("{}{download}", s.url))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let header = |name: &str| r.headers()[name].to_str().unwrap().to_string();
        assert_eq!(header("content-type"), "application/zip");
        assert_eq!(
            header("content-disposition"),
            "attachment; filename=\"maocloud-export-2026-11-26.zip\""
        );
        assert_eq!(header("cache-control"), "no-store");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(Some(bytes.len() as i64), e["size"].as_i64());
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let mut account = String::new();
        zip.by_name("account.json")
            .unwrap()
            .read_to_string(&mut account)
            .unwrap();
        let account: Value = serde_json::from_str(&account).unwrap();
        assert_eq!(account["email"], "export@example.fr");
        let mut consents = String::new();
        zip.by_name("consents.json")
            .unwrap()
            .read_to_string(&mut consents)
            .unwrap();
        let consents: Value = serde_json::from_str(&consents).unwrap();
        assert_eq!(consents[0]["purpose"], "loyalty");
        assert!(zip.by_name("README.txt").is_ok());

        // Another subscriber neither sees nor fetches it; an operator is refused.
        let (_, theirs) = s.get("/api/v1/privacy/exports", Some(&other.token)).await;
        assert_eq!(theirs, json!([]));
        let (st, p) = s.get(&download, Some(&other.token)).await;
        assert_eq!(
            (st, p["status"].as_i64()),
            (StatusCode::NOT_FOUND, Some(404))
        );
        assert_eq!(
            s.get(&download, Some(&support.token)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(s.get(&download, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.get("/api/v1/privacy/exports/not-an-id/download", Some(&a.token))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        // After 7 days it is gone.
        s.clock.advance(jiff::SignedDuration::from_hours(24 * 7));
        s.run_jobs().await;
        let (_, list) = s.get("/api/v1/privacy/exports", Some(&a.token)).await;
        assert_eq!(list[0]["status"], "expired");
        assert_eq!(
            s.get(&download, Some(&a.token)).await.0,
            StatusCode::CONFLICT
        );
    }
);

both_dbs!(
    rectification_and_erasure_over_http,
    |s: TestServer| async move {
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let a = s.subscriber("leaving@example.fr").await;
        // Rectification: checked as sign-up is; the new name shows at once.
        let mut profile = json!({
            "full_name": "Alex Durand-Leroy", "customer_kind": "consumer",
            "address_line1": "1 quai Rambaud", "postal_code": "69002", "city": "Lyon", "country": "FR",
        });
        let (st, v) = put(
            &s,
            "/api/v1/me/profile",
            &a.token,
            json!({"full_name": "x"}),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        profile["country"] = json!("France");
        let (st, v) = put(&s, "/api/v1/me/profile", &a.token, profile.clone()).await;
        assert_eq!(
            (st, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("country"))
        );
        profile["country"] = json!("FR");
        let (st, v) = put(&s, "/api/v1/me/profile", &a.token, profile).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["profile"]["city"], "Lyon");
        assert_eq!(v["display_name"], "Alex Durand-Leroy");

        // Erasure: a code by email, then the code with the address typed again.
        let (st, _) = s
            .post("/api/v1/privacy/erasure", Some(&a.token), json!({}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let body = s
            .emails_to(&a.email)
            .await
            .into_iter()
            .find(|(subject, _, _)| subject.contains("effacement"))
            .expect("the code was emailed")
            .1;
        let code = body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 10 && l.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap()
            .to_string();
        let (st, v) = s
            .post(
                "/api/v1/privacy/erasure/confirm",
                Some(&a.token),
                json!({"code": code, "email": "other@example.fr"}),
            )
            .await;
        assert_eq!(
            (st, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
        );
        // Admins erase only subscribers, and only with their id.
        let (st, _) = s
            .post(
                &format!("/api/v1/subscribers/{}/erasure", admin.id),
                Some(&admin.token),
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, v) = s
            .post(
                "/api/v1/privacy/erasure/confirm",
                Some(&a.token),
                json!({"code": code, "email": a.email}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
        let (st, _) = s.get("/api/v1/me", Some(&a.token)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _) = s
            .call(
                Method::GET,
                &format!("/api/v1/subscribers/{}", a.id),
                Some(&admin.token),
                None,
            )
            .await;
        assert_eq!(
            st,
            StatusCode::OK,
            "the pseudonymous account remains for the records"
        );
    }
);
