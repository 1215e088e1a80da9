//! Contract-lifecycle scenarios through the public API with test clocks, each naming its rule:
//! termination dates (R-7.2b) and commitment dues (R-7.2c, R-7.3a–c), dunning (R-7.1b),
//! suspension (R-7.1a, c, d), proof requests, terms versions and notices (R-6.3, R-3.4,
//! ), compensation caps and force majeure. Dates are Paris dates.

use crate::billing::{amounts, invoices};
use crate::both_dbs;
use crate::harness::*;
use maocloud_types::OperatorRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Sandbox {
    clock: String,
    id: String,
    token: String,
}

/// A test clock at `now` (or an existing one) with a sandbox subscriber on it.
async fn sandbox(
    s: &TestServer,
    billing: &str,
    clock: Option<&str>,
    now: &str,
    email: &str,
    professional: bool,
) -> Sandbox {
    let clock = match clock {
        Some(c) => c.to_string(),
        None => {
            let (st, c) = s
                .post(
                    "/api/v1/test-clocks",
                    Some(billing),
                    json!({"name": email, "now": now}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{c}");
            c["id"].as_str().unwrap().to_string()
        }
    };
    let mut form = s.signup_form(email).await;
    if professional {
        form["customer_kind"] = json!("professional");
        form["company_name"] = json!("Alouettes SAS");
        form["company_id"] = json!("73282932000074");
        form["vat_number"] = json!("FR44732829320");
    }
    let (st, v) = s
        .post(
            &format!("/api/v1/test-clocks/{clock}/subscribers"),
            Some(billing),
            form,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    Sandbox {
        clock,
        id: v["subscriber_id"].as_str().unwrap().to_string(),
        token: s.sign_in(email, PASSWORD, None).await,
    }
}

async fn advance(s: &TestServer, billing: &str, clock: &str, to: &str) {
    let (st, v) = s
        .post(
            &format!("/api/v1/test-clocks/{clock}/advance"),
            Some(billing),
            json!({ "to": to }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

async fn subscribe(s: &TestServer, token: &str, offer: &str) -> (String, Value) {
    let (st, v) = s
        .post(
            "/api/v1/subscriptions",
            Some(token),
            json!({ "offer_id": offer }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["subscription"]["id"].as_str().unwrap().to_string(),
        v["invoice"].clone(),
    )
}

async fn terminate(s: &TestServer, token: &str, sub: &str, body: Value) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/subscriptions/{sub}/termination"),
        Some(token),
        body,
    )
    .await
}

fn field(v: &Value) -> Option<&str> {
    v["field"].as_str()
}

async fn active_suspensions(s: &TestServer, token: &str) -> Vec<Value> {
    let (st, v) = s.get("/api/v1/suspensions", Some(token)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == "active")
        .cloned()
        .collect()
}

/// The newest email to `addr` (subject and body), once the outbox is delivered.
async fn last_mail(s: &TestServer, addr: &str) -> String {
    s.run_jobs().await;
    s.emails_to(addr)
        .await
        .into_iter()
        .next()
        .map(|e| format!("{}\n{}", e.0, e.1))
        .unwrap_or_default()
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

async fn upload(
    s: &TestServer,
    token: &str,
    proof: &str,
    ct: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{}/api/v1/proof-requests/{proof}/document", s.url))
        .bearer_auth(token)
        .header("content-type", ct)
        .header("x-file-name", "piece.pdf")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

// R-7.2b: the contract ends on a chosen date no later than 10 days after receipt, or on the
// last day of the month of receipt; a termination can be withdrawn before its end; at the end
// date services stop and nothing more is billed in advance. Receipt dates are Paris dates.
both_dbs!(r_7_2b_termination_end_dates, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let offer = crate::billing::offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
    let a = sandbox(
        &s,
        &billing.token,
        None,
        "2027-04-20T10:00:00Z",
        "a@example.fr",
        false,
    )
    .await;
    let (sub, _) = subscribe(&s, &a.token, &offer).await;
    // 12 days out: refused, naming the field; a date in the past too; nothing recorded.
    let (st, p) = terminate(
        &s,
        &a.token,
        &sub,
        json!({"end": "date", "date": "2027-05-02"}),
    )
    .await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("date")),
        "{p}"
    );
    let (st, p) = terminate(
        &s,
        &a.token,
        &sub,
        json!({"end": "date", "date": "2027-04-19"}),
    )
    .await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("date")),
        "{p}"
    );
    let (st, p) = terminate(&s, &a.token, &sub, json!({"end": "soon"})).await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("end")),
        "{p}"
    );
    let (st, _) = s
        .get(
            &format!("/api/v1/subscriptions/{sub}/termination"),
            Some(&a.token),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // On the 20th choosing month end: ends on the 30th (April has 30 days).
    let (st, t) = terminate(&s, &a.token, &sub, json!({"end": "month_end"})).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    assert_eq!(
        (t["end_date"].as_str(), t["received_on"].as_str()),
        (Some("2027-04-30"), Some("2027-04-20"))
    );
    assert_eq!(
        (t["channel"].as_str(), t["dues"].as_str()),
        (Some("online"), Some("none"))
    );
    let (st, _) = terminate(&s, &a.token, &sub, json!({"end": "month_end"})).await;
    assert_eq!(st, StatusCode::CONFLICT, "one termination at a time");
    // Withdrawn, then 10 days out exactly: accepted.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/subscriptions/{sub}/termination"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, t) = terminate(
        &s,
        &a.token,
        &sub,
        json!({"end": "date", "date": "2027-04-30"}),
    )
    .await;
    assert_eq!(
        (st, t["end_date"].as_str()),
        (StatusCode::CREATED, Some("2027-04-30")),
        "{t}"
    );
    assert!(last_mail(&s, "a@example.fr").await.contains("2027-04-30"));
    // The end passes: the subscription ends, May is not billed in advance, and with nothing
    // prepaid beyond the end nor any commitment left there is no final invoice (R-7.3a).
    advance(&s, &billing.token, &a.clock, "2027-05-03T08:00:00Z").await;
    let (_, sv) = s
        .get(&format!("/api/v1/subscriptions/{sub}"), Some(&a.token))
        .await;
    assert_eq!(sv["status"], "terminated", "{sv}");
    let (_, t) = s
        .get(
            &format!("/api/v1/subscriptions/{sub}/termination"),
            Some(&a.token),
        )
        .await;
    assert_eq!(
        (t["status"].as_str(), t["erase_on"].as_str()),
        (Some("ended"), Some("2027-05-30")),
        "{t}"
    );
    assert_eq!(
        invoices(&s, &a.token).await.len(),
        1,
        "only the first invoice"
    );
    // Withdrawing after the end: refused. The terminated subscriber still reads invoices (R-6.1d).
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/subscriptions/{sub}/termination"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // Europe/Paris: 22:30 UTC on 30 April is already 1 May in Paris, so month end is 31 May.
    let b = sandbox(
        &s,
        &billing.token,
        None,
        "2027-04-30T22:30:00Z",
        "b@example.fr",
        false,
    )
    .await;
    let (sub, _) = subscribe(&s, &b.token, &offer).await;
    let (_, t) = terminate(&s, &b.token, &sub, json!({"end": "month_end"})).await;
    assert_eq!(
        (t["received_on"].as_str(), t["end_date"].as_str()),
        (Some("2027-05-01"), Some("2027-05-31")),
        "{t}"
    );
    // A leap year: received 20 February 2028, month end is the 29th.
    let c = sandbox(
        &s,
        &billing.token,
        None,
        "2028-02-20T09:00:00Z",
        "c@example.fr",
        false,
    )
    .await;
    let (sub, _) = subscribe(&s, &c.token, &offer).await;
    let (_, t) = terminate(&s, &c.token, &sub, json!({"end": "month_end"})).await;
    assert_eq!(t["end_date"], "2028-02-29");
    // An operator records a registered letter received on the 18th: 10 days run from receipt.
    let support = s
        .operator("support@maocloud.test", OperatorRole::Support)
        .await;
    let d = sandbox(
        &s,
        &billing.token,
        Some(&c.clock),
        "",
        "d@example.fr",
        false,
    )
    .await;
    let (sub, _) = subscribe(&s, &d.token, &offer).await;
    let (st, p) = terminate(
        &s,
        &support.token,
        &sub,
        json!({"end": "date", "date": "2028-03-01"}),
    )
    .await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("received_on")),
        "{p}"
    );
    let (st, p) = terminate(
        &s,
        &support.token,
        &sub,
        json!({"end": "date", "date": "2028-02-29", "received_on": "2028-02-18"}),
    )
    .await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("date")),
        "11 days after receipt: {p}"
    );
    let (st, t) = terminate(
        &s,
        &support.token,
        &sub,
        json!({"end": "date", "date": "2028-02-28", "received_on": "2028-02-18"}),
    )
    .await;
    assert_eq!(
        (st, t["channel"].as_str()),
        (StatusCode::CREATED, Some("letter")),
        "{t}"
    );
    // Another subscriber cannot see or terminate it.
    let (st, _) = s
        .get(
            &format!("/api/v1/subscriptions/{sub}/termination"),
            Some(&c.token),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
});

// R-7.2c: terminating in month 4 of a 12-month commitment makes the remaining 8 monthly fees
// due in one final invoice; R-7.3b: an accepted legitimate reason (dismissal) waives them;
// so does termination within 4 months of a terms change of class "other".
both_dbs!(
    r_7_2c_commitment_dues_and_their_waivers,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let offer = crate::billing::offer(&s, &billing.token, "cloud-m", "Cloud M", 2000, 12).await;
        let a = sandbox(
            &s,
            &billing.token,
            None,
            "2027-01-01T09:00:00Z",
            "a@example.fr",
            false,
        )
        .await;
        let b = sandbox(
            &s,
            &billing.token,
            Some(&a.clock),
            "",
            "b@example.fr",
            false,
        )
        .await;
        let c = sandbox(
            &s,
            &billing.token,
            Some(&a.clock),
            "",
            "c@example.fr",
            false,
        )
        .await;
        let mut subs = vec![];
        for x in [&a, &b, &c] {
            subs.push(subscribe(&s, &x.token, &offer).await.0);
        }
        let (_, sv) = s
            .get(
                &format!("/api/v1/subscriptions/{}", subs[0]),
                Some(&a.token),
            )
            .await;
        assert_eq!(sv["commitment_end"], "2027-12-31", "{sv}");
        advance(&s, &billing.token, &a.clock, "2027-04-20T09:00:00Z").await;
        // Plain: 8 monthly fees due (May to December).
        let (st, t) = terminate(&s, &a.token, &subs[0], json!({"end": "month_end"})).await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        assert_eq!(
            (t["dues"].as_str(), t["dues_excl_cents"].as_i64()),
            (Some("due"), Some(16_000))
        );
        // With a legitimate reason: pending until its proof is accepted.
        let (st, p) = terminate(
            &s,
            &b.token,
            &subs[1],
            json!({"end": "month_end", "reason": "burnout"}),
        )
        .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
        );
        let (_, t) = terminate(
            &s,
            &b.token,
            &subs[1],
            json!({"end": "month_end", "reason": "dismissal"}),
        )
        .await;
        assert_eq!(t["dues"], "pending_reason", "{t}");
        let proof = t["proof_request_id"].as_str().unwrap().to_string();
        let (st, _) = upload(&s, &b.token, &proof, "application/pdf", PDF).await;
        assert_eq!(st, StatusCode::OK);
        let (st, p) = s
            .post(
                &format!("/api/v1/proof-requests/{proof}/decision"),
                Some(&support.token),
                json!({"approve": true, "reason": "lettre de licenciement (CDI)"}),
            )
            .await;
        assert_eq!(
            (st, p["status"].as_str()),
            (StatusCode::OK, Some("approved")),
            "{p}"
        );
        let (_, t) = s
            .get(
                &format!("/api/v1/subscriptions/{}/termination", subs[1]),
                Some(&b.token),
            )
            .await;
        assert_eq!(t["dues"], "waived_reason");
        // A terms change of class "other" opens a 4-month window.
        let (st, v) = s.post("/api/v1/terms", Some(&admin.token), json!({
        "version": "2027-06", "title": "CGV 2027", "body": "Nouveau texte.", "summary": "Hausse des prix de l'IPv4.",
        "effective_on": "2027-06-01", "class": "other"})).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (_, t) = terminate(&s, &c.token, &subs[2], json!({"end": "month_end"})).await;
        assert_eq!(
            (t["dues"].as_str(), t["penalty_free_terms"].as_str()),
            (Some("waived_terms_change"), Some("2027-06")),
            "{t}"
        );
        // The end passes: the final invoices.
        advance(&s, &billing.token, &a.clock, "2027-05-02T09:00:00Z").await;
        let inv = invoices(&s, &a.token).await;
        assert_eq!(
            amounts(&inv[0]),
            [2000; 8],
            "8 remaining monthly fees: {}",
            inv[0]
        );
        assert_eq!(inv[0]["total_incl_vat_cents"], 19_200);
        assert!(inv[0]["lines"][0]["description"]
            .as_str()
            .unwrap()
            .contains("engagement"));
        for x in [&b, &c] {
            let inv = invoices(&s, &x.token).await;
            assert!(
                inv.iter()
                    .all(|i| i["issue_date"] != "2027-05-01" && i["issue_date"] != "2027-05-02"),
                "no dues, no May invoice: {inv:?}"
            );
        }
        let (_, t) = s
            .get(
                &format!("/api/v1/subscriptions/{}/termination", subs[1]),
                Some(&b.token),
            )
            .await;
        assert_eq!(t["status"], "ended");
    }
);

// R-7.1b: an invoice unpaid at its due date brings a reminder; 15 days after it the services
// are still on, on the 16th they are suspended; paying every overdue amount lifts it at once.
both_dbs!(
    r_7_1b_dunning_reminder_then_suspension_then_payment,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "cloud-s", "Cloud S", 3100, 0).await;
        let a = sandbox(
            &s,
            &billing.token,
            None,
            "2027-01-10T09:00:00Z",
            "a@example.fr",
            false,
        )
        .await;
        let (sub, first) = subscribe(&s, &a.token, &offer).await;
        assert_eq!(first["due_date"], "2027-01-25");
        advance(&s, &billing.token, &a.clock, "2027-01-25T12:00:00Z").await;
        assert!(
            !last_mail(&s, "a@example.fr").await.contains("rappel"),
            "not before the due date has passed"
        );
        advance(&s, &billing.token, &a.clock, "2027-01-26T09:00:00Z").await;
        let reminder = last_mail(&s, "a@example.fr").await;
        assert!(
            reminder.contains(first["number"].as_str().unwrap()) && reminder.contains("2027-02-11"),
            "{reminder}"
        );
        advance(&s, &billing.token, &a.clock, "2027-02-10T09:00:00Z").await;
        assert!(
            active_suspensions(&s, &a.token).await.is_empty(),
            "day 15 after the reminder: still active"
        );
        advance(&s, &billing.token, &a.clock, "2027-02-11T09:00:00Z").await;
        let susp = active_suspensions(&s, &a.token).await;
        assert_eq!(susp.len(), 1, "day 16: suspended");
        assert_eq!(susp[0]["cause"], "non_payment");
        assert!(susp[0]["lifted_by_what"]
            .as_str()
            .unwrap()
            .contains("paying"));
        // R-7.1c: read-only — changing the subscription is refused, the invoices stay readable.
        let other = crate::billing::offer(&s, &billing.token, "cloud-m", "Cloud M", 5000, 0).await;
        let (st, p) = s
            .post(
                &format!("/api/v1/subscriptions/{sub}/change-offer"),
                Some(&a.token),
                json!({"offer_id": other}),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{p}");
        assert!(p["detail"].as_str().unwrap().contains("suspended"), "{p}");
        assert_eq!(invoices(&s, &a.token).await.len(), 2);
        // Paying what is overdue (the January invoice) lifts it at once.
        let (st, p) = s.post("/api/v1/payments", Some(&billing.token), json!({
        "subscriber_id": a.id, "amount_cents": first["total_incl_vat_cents"], "method": "bank_transfer",
        "reference": "VIR 123", "invoice_id": first["id"]})).await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        assert!(
            active_suspensions(&s, &a.token).await.is_empty(),
            "lifted by the payment"
        );
        let (st, _) = s
            .post(
                &format!("/api/v1/subscriptions/{sub}/change-offer"),
                Some(&a.token),
                json!({"offer_id": other}),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
);

// R-7.1a, R-7.1c: an abuse operator suspends at once for an authority request, with the reason
// recorded; data stays intact and readable; the subscriber sees why; lifting restores access.
// (Compute does not exist yet: stopping VMs is the compute issue's hook on `is_suspended`.)
both_dbs!(r_7_1a_operator_suspension, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let abuse = s.operator("abuse@maocloud.test", OperatorRole::Abuse).await;
    let offer = crate::billing::offer(&s, &billing.token, "cloud-s", "Cloud S", 3100, 0).await;
    let a = s.subscriber("a@example.fr").await;
    subscribe(&s, &a.token, &offer).await;
    let body = json!({"subscriber_id": a.id, "cause": "authority", "reason": "réquisition judiciaire n° 42"});
    let (st, _) = s
        .post("/api/v1/suspensions", Some(&billing.token), body.clone())
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "billing may not suspend for abuse"
    );
    let (st, p) = s
        .post(
            "/api/v1/suspensions",
            Some(&abuse.token),
            json!({"subscriber_id": a.id, "cause": "dislike", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (st, field(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cause"))
    );
    let (st, susp) = s
        .post("/api/v1/suspensions", Some(&abuse.token), body)
        .await;
    assert_eq!(
        (st, susp["status"].as_str()),
        (StatusCode::CREATED, Some("active")),
        "{susp}"
    );
    let mine = active_suspensions(&s, &a.token).await;
    assert_eq!(mine[0]["reason"], "réquisition judiciaire n° 42");
    assert!(last_mail(&s, "a@example.fr")
        .await
        .contains("réquisition judiciaire"));
    assert_eq!(
        invoices(&s, &a.token).await.len(),
        1,
        "data intact and readable"
    );
    let (st, _) = s
        .post(
            "/api/v1/subscriptions",
            Some(&a.token),
            json!({"offer_id": offer}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "no new resources while suspended");
    let b = s.subscriber("b@example.fr").await;
    let id = susp["id"].as_str().unwrap();
    let (st, _) = s
        .get(&format!("/api/v1/suspensions/{id}"), Some(&b.token))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, l) = s
        .post(
            &format!("/api/v1/suspensions/{id}/lift"),
            Some(&abuse.token),
            json!({"reason": "levée par le parquet"}),
        )
        .await;
    assert_eq!(
        (st, l["status"].as_str()),
        (StatusCode::OK, Some("lifted")),
        "{l}"
    );
    assert!(active_suspensions(&s, &a.token).await.is_empty());
    let (st, _) = s
        .post(
            &format!("/api/v1/suspensions/{id}/lift"),
            Some(&abuse.token),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
});

// R-7.1d: an operator asks for an identity document; the upload is checked (type, size)
// and sealed at rest; unanswered, day 15 is still active and day 16 suspended; providing the
// document lifts it; the operator approves or rejects with a reason.
both_dbs!(
    r_3_3_proof_requests_and_r_7_1d_incomplete_file,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let support = s
            .operator("support@maocloud.test", OperatorRole::Support)
            .await;
        let a = sandbox(
            &s,
            &billing.token,
            None,
            "2027-03-01T09:00:00Z",
            "a@example.fr",
            false,
        )
        .await;
        let (st, p) = s
            .post(
                "/api/v1/proof-requests",
                Some(&support.token),
                json!({"subscriber_id": a.id, "kind": "dna", "note": "x"}),
            )
            .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("kind"))
        );
        let (st, p) = s.post("/api/v1/proof-requests", Some(&support.token), json!({"subscriber_id": a.id, "kind": "identity", "note": "Carte d'identité recto verso"})).await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        let proof = p["id"].as_str().unwrap().to_string();
        assert!(last_mail(&s, "a@example.fr")
            .await
            .contains("Carte d'identité"));
        // Wrong type, a type that does not match the bytes, too large: refused, naming the field.
        let (st, e) = upload(&s, &a.token, &proof, "text/plain", b"hello").await;
        assert_eq!(
            (st, field(&e)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("content_type")),
            "{e}"
        );
        let (st, e) = upload(&s, &a.token, &proof, "image/png", PDF).await;
        assert_eq!(
            (st, field(&e)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("content_type")),
            "{e}"
        );
        let big = [PDF, &vec![b' '; 5 * 1024 * 1024][..]].concat();
        let (st, _) = upload(&s, &a.token, &proof, "application/pdf", &big).await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::PAYLOAD_TOO_LARGE,
            "{st}"
        );
        advance(&s, &billing.token, &a.clock, "2027-03-16T09:00:00Z").await;
        assert!(
            active_suspensions(&s, &a.token).await.is_empty(),
            "day 15: still active"
        );
        advance(&s, &billing.token, &a.clock, "2027-03-17T09:00:00Z").await;
        let susp = active_suspensions(&s, &a.token).await;
        assert_eq!(
            (susp.len(), susp[0]["cause"].as_str()),
            (1, Some("incomplete_file"))
        );
        // The document arrives: the file is complete again and the suspension lifts.
        let (st, p) = upload(&s, &a.token, &proof, "application/pdf", PDF).await;
        assert_eq!(
            (st, p["status"].as_str()),
            (StatusCode::OK, Some("submitted")),
            "{p}"
        );
        assert!(active_suspensions(&s, &a.token).await.is_empty());
        // Sealed at rest: the stored value is not the document.
        let b = s.subscriber("b@example.fr").await;
        let (st, _) = s
            .get(&format!("/api/v1/proof-requests/{proof}"), Some(&b.token))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/proof-requests/{proof}/document", s.url))
            .bearer_auth(&support.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/pdf");
        assert_eq!(&r.bytes().await.unwrap()[..], PDF);
        let (st, p) = s
            .post(
                &format!("/api/v1/proof-requests/{proof}/decision"),
                Some(&support.token),
                json!({"approve": false, "reason": "illisible"}),
            )
            .await;
        assert_eq!(
            (st, p["status"].as_str()),
            (StatusCode::OK, Some("rejected"))
        );
        assert!(last_mail(&s, "a@example.fr").await.contains("illisible"));
        let (st, _) = s
            .post(
                &format!("/api/v1/proof-requests/{proof}/decision"),
                Some(&support.token),
                json!({"approve": true, "reason": "x"}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::CONFLICT,
            "a rejected document cannot be approved until a new one comes"
        );
    }
);

// an effective date too close is refused (1 month; 6 for a substantial
// change); a valid version is announced to every subscriber under contract, each notice is
// recorded, and subscribers see current and past versions.
both_dbs!(
    r_6_3_terms_versions_and_notices,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let admin = s.operator("admin@maocloud.test", OperatorRole::Admin).await;
        let offer = crate::billing::offer(&s, &billing.token, "cloud-s", "Cloud S", 3100, 0).await;
        let a = s.subscriber("a@example.fr").await;
        subscribe(&s, &a.token, &offer).await;
        let _idle = s.subscriber("idle@example.fr").await;
        let v = |effective: &str, class: &str, substantial: bool| {
            json!({
        "version": format!("v-{effective}-{class}"), "title": "CGV", "body": "Texte.", "summary": "Ce qui change.",
        "effective_on": effective, "class": class, "substantial": substantial})
        };
        // Today is 2026-11-26 (Paris): one month ahead is 2026-12-26.
        let (st, p) = s
            .post(
                "/api/v1/terms",
                Some(&admin.token),
                v("2026-12-25", "administrative", false),
            )
            .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("effective_on")),
            "{p}"
        );
        let (st, p) = s
            .post(
                "/api/v1/terms",
                Some(&admin.token),
                v("2027-03-01", "other", true),
            )
            .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("effective_on")),
            "substantial needs 6 months: {p}"
        );
        let (st, p) = s
            .post(
                "/api/v1/terms",
                Some(&admin.token),
                v("2027-01-01", "marketing", false),
            )
            .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("class"))
        );
        let (st, _) = s
            .post(
                "/api/v1/terms",
                Some(&billing.token),
                v("2027-01-01", "other", false),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, r) = s
            .post(
                "/api/v1/terms",
                Some(&admin.token),
                v("2026-12-26", "beneficial", false),
            )
            .await;
        assert_eq!(
            (st, r["notified"].as_i64()),
            (StatusCode::CREATED, Some(1)),
            "{r}"
        );
        let (st, r) = s
            .post(
                "/api/v1/terms",
                Some(&admin.token),
                v("2027-05-26", "other", true),
            )
            .await;
        assert_eq!(
            (st, r["notified"].as_i64()),
            (StatusCode::CREATED, Some(1)),
            "{r}"
        );
        let mail = last_mail(&s, "a@example.fr").await;
        assert!(
            mail.contains("2027-05-26") && mail.contains("2027-03-26"),
            "names the effective date and the window's end: {mail}"
        );
        let (_, notices) = s.get("/api/v1/terms/notices", Some(&a.token)).await;
        let windows: Vec<&Value> = notices
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["window_end"])
            .collect();
        assert_eq!(windows, [&Value::Null, &json!("2027-03-26")]);
        let (st, list) = s.get("/api/v1/terms", None).await;
        assert_eq!(st, StatusCode::OK);
        let versions: Vec<(&str, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["class"].as_str().unwrap(),
                    v["current"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            versions,
            [("other", false), ("beneficial", false), ("initial", true)]
        );
    }
);

// for a professional, compensation for one incident is capped at the flat fees paid for
// the two most recent months (VAT included); a consumer has no cap.: force majeure, none.
both_dbs!(
    r_8_1_compensation_cap_and_r_8_2_force_majeure,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let offer = crate::billing::offer(&s, &billing.token, "cloud-m", "Cloud M", 2000, 0).await;
        let pro = sandbox(
            &s,
            &billing.token,
            None,
            "2027-01-01T09:00:00Z",
            "pro@example.fr",
            true,
        )
        .await;
        let (_, jan) = subscribe(&s, &pro.token, &offer).await;
        advance(&s, &billing.token, &pro.clock, "2027-02-02T09:00:00Z").await;
        let inv = invoices(&s, &pro.token).await;
        for i in &inv {
            let (st, p) = s.post("/api/v1/payments", Some(&billing.token), json!({
            "subscriber_id": pro.id, "amount_cents": i["total_incl_vat_cents"], "method": "bank_transfer", "reference": "VIR", "invoice_id": i["id"]})).await;
            assert_eq!(st, StatusCode::CREATED, "{p}");
        }
        let (st, inc) = s.post("/api/v1/incidents", Some(&billing.token), json!({
        "title": "Panne baie 3", "resources": "zone par1", "started_at": "2027-02-10T08:00:00Z", "ended_at": "2027-02-10T14:00:00Z"})).await;
        assert_eq!(st, StatusCode::CREATED, "{inc}");
        let id = inc["id"].as_str().unwrap().to_string();
        let (_, cap) = s
            .get(
                &format!("/api/v1/incidents/{id}/cap?subscriber_id={}", pro.id),
                Some(&billing.token),
            )
            .await;
        assert_eq!(
            (
                cap["cap_cents"].as_i64(),
                cap["periods"].as_array().unwrap().len()
            ),
            (Some(4800), 2),
            "two months of 24.00 paid: {cap}"
        );
        let grant = |amount: i64, invoice: &Value| json!({"subscriber_id": pro.id, "amount_excl_cents": amount, "invoice_id": invoice["id"]});
        let (st, p) = s
            .post(
                &format!("/api/v1/incidents/{id}/compensations"),
                Some(&billing.token),
                grant(4001, &inv[0]),
            )
            .await;
        assert_eq!(
            (st, field(&p)),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_excl_cents")),
            "{p}"
        );
        assert!(
            p["detail"].as_str().unwrap().contains("48.00"),
            "says why: {p}"
        );
        let (st, g) = s
            .post(
                &format!("/api/v1/incidents/{id}/compensations"),
                Some(&billing.token),
                grant(2000, &inv[0]),
            )
            .await;
        assert_eq!(
            (st, g["cap"]["remaining_cents"].as_i64()),
            (StatusCode::CREATED, Some(2400)),
            "{g}"
        );
        let (st, _) = s
            .post(
                &format!("/api/v1/incidents/{id}/compensations"),
                Some(&billing.token),
                grant(2001, &jan),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "24.01 incl. VAT is over what is left"
        );
        let (st, g) = s
            .post(
                &format!("/api/v1/incidents/{id}/compensations"),
                Some(&billing.token),
                grant(2000, &jan),
            )
            .await;
        assert_eq!(
            (st, g["cap"]["remaining_cents"].as_i64()),
            (StatusCode::CREATED, Some(0)),
            "{g}"
        );
        let notes = s.get("/api/v1/credit-notes", Some(&pro.token)).await.1;
        assert_eq!(
            notes["items"].as_array().unwrap().len(),
            2,
            "compensation comes as credit notes"
        );
        // A consumer: no cap.
        let con = sandbox(
            &s,
            &billing.token,
            Some(&pro.clock),
            "",
            "con@example.fr",
            false,
        )
        .await;
        let (_, ci) = subscribe(&s, &con.token, &offer).await;
        let (_, cap) = s
            .get(
                &format!("/api/v1/incidents/{id}/cap?subscriber_id={}", con.id),
                Some(&billing.token),
            )
            .await;
        assert_eq!(
            (cap["professional"].as_bool(), cap["cap_cents"].clone()),
            (Some(false), Value::Null)
        );
        let (st, _) = s
            .post(
                &format!("/api/v1/incidents/{id}/compensations"),
                Some(&billing.token),
                json!({"subscriber_id": con.id, "amount_excl_cents": 500, "invoice_id": ci["id"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        // Force majeure: none.
        let (_, fm) = s.post("/api/v1/incidents", Some(&billing.token), json!({
        "title": "Inondation", "resources": "zone par1", "started_at": "2027-02-11T08:00:00Z", "force_majeure": true})).await;
        let (st, p) = s
            .post(
                &format!(
                    "/api/v1/incidents/{}/compensations",
                    fm["id"].as_str().unwrap()
                ),
                Some(&billing.token),
                grant(100, &inv[0]),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{p}");
        assert!(p["detail"].as_str().unwrap().contains("force majeure"));
        let (st, _) = s.get("/api/v1/incidents", Some(&pro.token)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "incidents are for operators");
    }
);

// The live scheduler's sweep does what a test clock does, on the platform's own time.
#[tokio::test]
async fn live_sweep_sends_reminders_on_the_platform_clock() {
    let s = TestServer::start().await;
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let offer = crate::billing::offer(&s, &billing.token, "cloud-s", "Cloud S", 3100, 0).await;
    let a = s.subscriber("a@example.fr").await;
    let (_, first) = subscribe(&s, &a.token, &offer).await;
    assert_eq!(first["due_date"], "2026-12-11");
    s.clock.advance(jiff::SignedDuration::from_hours(24 * 16));
    let r = maocloud_app::daily::sweep_live(&s.app).await.unwrap();
    assert_eq!((r.reminders, r.run.invoices_issued), (1, 1), "{r:?}");
    let again = maocloud_app::daily::sweep_live(&s.app).await.unwrap();
    assert_eq!(
        again,
        Default::default(),
        "a second sweep of the same day does nothing"
    );
}
