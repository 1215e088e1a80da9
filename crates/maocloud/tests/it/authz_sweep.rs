//! The authorisation sweep: every operation of the OpenAPI document is called without
//! credentials and as a second subscriber aiming at the first subscriber's resources. The
//! outcome of every route is kept in a golden file (`golden/authz.txt`), so a new route cannot
//! skip the sweep: it changes the table and the test fails until the table is reviewed
//! (`UPDATE_GOLDEN=1` rewrites it). Invariants are also checked outright: a route that declares
//! bearer security answers 401 without it, and another subscriber's resource is never 200.

use crate::both_dbs;
use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/golden/authz.txt");

both_dbs!(every_route_is_guarded, |s: TestServer| async move {
    let a = s.subscriber("owner@example.fr").await;
    let b = s.subscriber("intruder@example.fr").await;
    // The owner's resources, one per kind of path parameter.
    let (_, tokens) = s.get("/api/v1/tokens", Some(&a.token)).await;
    let token_id = tokens[0]["id"].as_str().unwrap().to_string();
    let (_, inbox) = s.get("/api/v1/messages", Some(&a.token)).await;
    let message_id = inbox["items"][0]["id"].as_str().unwrap().to_string();
    // Billing: an offer, the owner's subscription, its first invoice and a credit note.
    let billing = s
        .operator(
            "billing@maocloud.test",
            maocloud_types::OperatorRole::Billing,
        )
        .await;
    let offer_id = crate::billing::offer(&s, &billing.token, "sweep", "Sweep", 1000, 0).await;
    let (_, subscribed) = s
        .post(
            "/api/v1/subscriptions",
            Some(&a.token),
            json!({"offer_id": offer_id}),
        )
        .await;
    let subscription_id = subscribed["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let invoice_id = subscribed["invoice"]["id"].as_str().unwrap().to_string();
    let (_, cn) = s
        .post(
            "/api/v1/credit-notes",
            Some(&billing.token),
            json!({"invoice_id": invoice_id, "amount_excl_vat_cents": 10, "reason": "sweep"}),
        )
        .await;
    let credit_note_id = cn["id"].as_str().unwrap().to_string();
    let (_, clock) = s
        .post(
            "/api/v1/test-clocks",
            Some(&billing.token),
            json!({"name": "sweep"}),
        )
        .await;
    let clock_id = clock["id"].as_str().unwrap().to_string();
    let (_, mandate) = s
        .post(
            "/api/v1/mandates",
            Some(&a.token),
            json!({"iban": "FR7630006000011234567890189", "holder": "Owner", "accept": true}),
        )
        .await;
    let mandate_id = mandate["id"].as_str().unwrap().to_string();
    let (_, batch) = s
        .post(
            "/api/v1/sepa/batches",
            Some(&billing.token),
            json!({"through": "2027-12-31"}),
        )
        .await;
    let batch_id = batch["id"]
        .as_str()
        .unwrap_or("01a20000-0000-7000-8000-000000000000")
        .to_string();
    // Compute: a simulated host, an image, the owner's SSH key and VM (before the suspension
    // below, which would refuse the VM).
    let sim = std::sync::Arc::new(maocloud_hypervisor::sim::SimAgent::new(Default::default()));
    let host = maocloud_app::compute::hosts::attach(&s.app, sim, None)
        .await
        .unwrap();
    let host_id = host.id.to_string();
    let image = crate::compute::kernel_image(&s, "sweep").await;
    let image_id = image.id.to_string();
    let (_, key) = s
        .post(
            "/api/v1/ssh-keys",
            Some(&a.token),
            json!({"name": "k", "public_key": crate::compute::KEY}),
        )
        .await;
    let key_id = key["id"].as_str().unwrap().to_string();
    let (_, vm) = s
        .post(
            "/api/v1/vms",
            Some(&a.token),
            json!({"name": "sweep", "image": "sweep", "size": "xs"}),
        )
        .await;
    let vm_id = vm["id"].as_str().unwrap().to_string();
    // Personal data: the owner's export (made ready by the jobs below) and a register entry.
    let (_, export) = s
        .post("/api/v1/privacy/exports", Some(&a.token), json!({}))
        .await;
    let export_id = export["id"].as_str().unwrap().to_string();
    let admin = s
        .operator("admin@maocloud.test", maocloud_types::OperatorRole::Admin)
        .await;
    let (_, processor) = s
        .post(
            "/api/v1/processors",
            Some(&admin.token),
            json!({"kind": "processor", "name": "Sweep", "purpose": "sweep",
                   "data_categories": "sweep", "country": "FR", "safeguards": "EU"}),
        )
        .await;
    let processor_id = processor["id"].as_str().unwrap().to_string();
    s.run_jobs().await;
    let (st, _) = s
        .get(
            &format!("/api/v1/privacy/exports/{export_id}/download"),
            Some(&a.token),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the owner's export is ready");
    // Object storage: the owner's access key and bucket.
    let (_, skey) = s
        .post(
            "/api/v1/storage/keys",
            Some(&a.token),
            json!({"name": "sweep"}),
        )
        .await;
    let storage_key_id = skey["id"].as_str().unwrap().to_string();
    s.post(
        "/api/v1/storage/buckets",
        Some(&a.token),
        json!({"name": "sweep-bucket"}),
    )
    .await;
    // Support: the owner's ticket with a file, and a canned reply.
    let (_, ticket) = s
        .post(
            "/api/v1/tickets",
            Some(&a.token),
            json!({
                "subject": "sweep", "category": "technical", "priority": "normal",
                "message": "sweep",
                "attachments": [{"file_name": "sweep.txt", "content_type": "text/plain", "data_base64": "c3dlZXA="}],
            }),
        )
        .await;
    let ticket_id = ticket["id"].as_str().unwrap().to_string();
    let attachment_id = ticket["messages"][0]["attachments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let support = s
        .operator(
            "support@maocloud.test",
            maocloud_types::OperatorRole::Support,
        )
        .await;
    let (_, canned) = s
        .post(
            "/api/v1/support/canned-replies",
            Some(&support.token),
            json!({"title": "sweep", "body": "sweep"}),
        )
        .await;
    let canned_id = canned["id"].as_str().unwrap().to_string();
    // Contract lifecycle: a suspension, a proof request and an incident about the owner.
    let abuse = s
        .operator("abuse@maocloud.test", maocloud_types::OperatorRole::Abuse)
        .await;
    let (_, susp) = s
        .post(
            "/api/v1/suspensions",
            Some(&abuse.token),
            json!({"subscriber_id": a.id, "cause": "network", "reason": "sweep"}),
        )
        .await;
    let suspension_id = susp["id"].as_str().unwrap().to_string();
    let (_, proof) = s
        .post(
            "/api/v1/proof-requests",
            Some(&billing.token),
            json!({"subscriber_id": a.id, "kind": "identity", "note": "sweep"}),
        )
        .await;
    let proof_id = proof["id"].as_str().unwrap().to_string();
    let (_, incident) = s
        .post(
            "/api/v1/incidents",
            Some(&billing.token),
            json!({"title": "sweep", "resources": "all", "started_at": "2026-11-20T00:00:00Z"}),
        )
        .await;
    let incident_id = incident["id"].as_str().unwrap().to_string();
    let resource_for = |path: &str, param: &str| -> String {
        if param == "attachment_id" {
            attachment_id.clone()
        } else if path.starts_with("/api/v1/tickets/") {
            ticket_id.clone()
        } else if path.starts_with("/api/v1/support/canned-replies/") {
            canned_id.clone()
        } else if path.starts_with("/api/v1/support/targets/") {
            "normal".to_string()
        } else if path.starts_with("/api/v1/tokens/") {
            token_id.clone()
        } else if path.starts_with("/api/v1/messages/") {
            message_id.clone()
        } else if path.starts_with("/api/v1/subscribers/") {
            a.id.clone()
        } else if path.starts_with("/api/v1/offers/") {
            offer_id.clone()
        } else if path.starts_with("/api/v1/subscriptions/") {
            subscription_id.clone()
        } else if path.starts_with("/api/v1/invoices/") || path.starts_with("/api/v1/print-queue/")
        {
            invoice_id.clone()
        } else if path.starts_with("/api/v1/credit-notes/") {
            credit_note_id.clone()
        } else if path.starts_with("/api/v1/test-clocks/") {
            clock_id.clone()
        } else if path.starts_with("/api/v1/mandates/") {
            mandate_id.clone()
        } else if path.starts_with("/api/v1/sepa/batches/") {
            batch_id.clone()
        } else if path.starts_with("/api/v1/suspensions/") {
            suspension_id.clone()
        } else if path.starts_with("/api/v1/proof-requests/") {
            proof_id.clone()
        } else if path.starts_with("/api/v1/incidents/") {
            incident_id.clone()
        } else if path.starts_with("/api/v1/vms/") {
            vm_id.clone()
        } else if path.starts_with("/api/v1/ssh-keys/") {
            key_id.clone()
        } else if path.starts_with("/api/v1/images/") {
            image_id.clone()
        } else if path.starts_with("/api/v1/hosts/") {
            host_id.clone()
        } else if path.starts_with("/api/v1/storage/keys/") {
            storage_key_id.clone()
        } else if path.starts_with("/api/v1/storage/buckets/") {
            "sweep-bucket".to_string()
        } else if path.starts_with("/api/v1/privacy/exports/") {
            export_id.clone()
        } else if path.starts_with("/api/v1/processors/") {
            processor_id.clone()
        } else if path.starts_with("/api/v1/privacy/consents/") {
            "loyalty".to_string()
        } else if path.starts_with("/api/v1/privacy/choices/") {
            "restriction".to_string()
        } else {
            panic!("the sweep does not know whose resource {path} names: teach it")
        }
    };

    let (_, doc) = s.get("/api/openapi.json", None).await;
    let mut table = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Every path parameter names one of the owner's resources.
            let mut concrete = path.clone();
            while let (Some(start), Some(end)) = (concrete.find('{'), concrete.find('}')) {
                let id = resource_for(path, &concrete[start + 1..end]);
                concrete.replace_range(start..=end, &id);
            }
            // A body valid in form where a route takes one, so that a refusal comes from
            // ownership, not from parsing.
            let body = (m == Method::POST || m == Method::PATCH).then(|| {
                if path.ends_with("/change-offer") {
                    json!({"offer_id": offer_id})
                } else if path.ends_with("/termination") {
                    json!({"end": "month_end"})
                } else if path.ends_with("/resize") {
                    json!({"size": "s"})
                } else if path.ends_with("/console") {
                    json!({"input": "ls\n"})
                } else if path.ends_with("/messages") {
                    json!({"message": "sweep"})
                } else {
                    json!({})
                }
            });
            let (anon, _) = s.call(m.clone(), &concrete, None, body.clone()).await;
            let (other, other_body) = s.call(m.clone(), &concrete, Some(&b.token), body).await;
            let secured = op.get("security").is_some();
            if secured {
                assert_eq!(
                    anon,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} declares security but answered {anon} without credentials"
                );
            }
            // The image catalogue is public to every signed-in user: reading an image is not
            // reading someone's resource.
            let public = m == Method::GET && path == "/api/v1/images/{id}";
            // A purpose or a choice names a setting of the caller's own, not someone's resource.
            let own = path.starts_with("/api/v1/privacy/consents/")
                || path.starts_with("/api/v1/privacy/choices/");
            if path.contains('{') && !public && !own {
                assert!(
                    other == StatusCode::NOT_FOUND || other == StatusCode::FORBIDDEN,
                    "{method} {path} gave {other} to another subscriber: {other_body}"
                );
            }
            table.push(format!(
                "{:<6} {:<42} anonymous={} other-subscriber={}",
                method.to_uppercase(),
                path,
                anon.as_u16(),
                other.as_u16()
            ));
        }
    }
    table.sort();
    let text = table.join("\n") + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok() && s.db == Db::Sqlite {
        std::fs::write(GOLDEN, &text).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    assert_eq!(
        text, golden,
        "the routes or their guards changed: review, then run with UPDATE_GOLDEN=1 to accept"
    );
    // And what the operator routes give a subscriber is a refusal, not data.
    let (st, _) = s.get("/api/v1/subscribers", Some(&b.token)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let _: Value = Value::Null;
});

// Operators act through their role: support reads subscribers (audited); only admins read the
// audit log and the outbox or create operators.
both_dbs!(operator_roles_and_audit, |s: TestServer| async move {
    use maocloud_types::OperatorRole::*;
    let sub = s.subscriber("client@example.fr").await;
    let admin = s.operator("admin@maocloud.test", Admin).await;
    let support = s.operator("support@maocloud.test", Support).await;
    let billing = s.operator("billing@maocloud.test", Billing).await;
    let (st, _) = s
        .get(
            &format!("/api/v1/subscribers/{}", sub.id),
            Some(&support.token),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    for op in [&support, &billing] {
        assert_eq!(
            s.get("/api/v1/audit-log", Some(&op.token)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            s.get("/api/v1/outbox", Some(&op.token)).await.0,
            StatusCode::FORBIDDEN
        );
        let (st, _) = s.post("/api/v1/operators", Some(&op.token), json!({"email": "x@maocloud.test", "name": "X", "role": "admin", "password": PASSWORD})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    let (st, log) = s
        .get(
            &format!("/api/v1/audit-log?subscriber_id={}", sub.id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let entry = &log["items"][0];
    assert_eq!(entry["action"], "subscriber.read");
    assert_eq!(entry["actor"], format!("operator:{}", support.id));
    assert_eq!(entry["subscriber_id"], sub.id.as_str());
    // An admin creates an operator, who gets a TOTP secret once.
    let (st, created) = s.post("/api/v1/operators", Some(&admin.token), json!({"email": "abuse@maocloud.test", "name": "Abuse desk", "role": "abuse", "password": PASSWORD})).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    assert!(created["totp_secret"].as_str().unwrap().len() >= 16);
    let (st, p) = s.post("/api/v1/operators", Some(&admin.token), json!({"email": "z@maocloud.test", "name": "Z", "role": "janitor", "password": PASSWORD})).await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("role"))
    );
    let (_, log) = s.get("/api/v1/audit-log", Some(&admin.token)).await;
    assert!(log["items"].as_array().unwrap().iter().any(
        |e| e["action"] == "operator.create" && e["actor"] == format!("operator:{}", admin.id)
    ));
    // A subscriber is never let into the back office.
    assert_eq!(
        s.get(&format!("/api/v1/subscribers/{}", sub.id), Some(&sub.token))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
});

// No input crashes the server: every route answers hostile bodies and parameters with a 4xx
// problem (never 5xx), authenticated or not, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_breaks_a_route() {
    let s = TestServer::start().await;
    let a = s.subscriber("hostile@example.fr").await;
    let (_, doc) = s.get("/api/openapi.json", None).await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"\x00\xff\xfe{".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"null".to_vec()),
        (
            "application/json",
            b"{\"email\": {\"$ne\": 1}, \"password\": [1,2]}".to_vec(),
        ),
        (
            "application/json",
            format!("{{\"name\": \"{}\"}}", "\u{202e}'; DROP TABLE accounts; --").into_bytes(),
        ),
        ("application/json", b"{\"expires_in_days\": 1e400}".to_vec()),
        ("application/json", "[".repeat(10_000).into_bytes()),
        ("application/x-www-form-urlencoded", b"a=1&b=2".to_vec()),
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        let path = path.replace("{id}", "00000000-0000-0000-0000-000000000000' OR '1'='1");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some(a.token.as_str())] {
                for (ct, body) in &bodies {
                    let mut req = s
                        .http
                        .request(m.clone(), format!("{}{path}?limit=-1&cursor=%00", s.url))
                        .header("content-type", *ct)
                        .body(body.clone());
                    if let Some(t) = token {
                        req = req.bearer_auth(t);
                    }
                    let r = req.send().await.unwrap();
                    assert!(
                        !r.status().is_server_error(),
                        "{method} {path} → {}",
                        r.status()
                    );
                }
            }
        }
    }
    assert_eq!(
        s.get("/api/v1/me", Some(&a.token)).await.0,
        StatusCode::OK,
        "still serving"
    );
}
