//! Billing scenarios through the API with the test clock, each naming the rule it proves:
//! the price list (R-3.6), subscribing (R-3.1), the first prorated month and the monthly
//! advance + arrears invoice (R-6.1a, R-6.1b), changing offer (R-3.2), legal numbering and
//! credit notes (R-6.1e), paper delivery (R-6.1c), 12-month visibility (R-6.1d), payments.

use crate::both_dbs;
use crate::harness::*;
use maocloud_types::OperatorRole;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Creates an offer as a billing operator and returns its id.
pub async fn offer(
    s: &TestServer,
    token: &str,
    code: &str,
    name: &str,
    price_cents: i64,
    commitment: i64,
) -> String {
    let (st, o) = s
        .post(
            "/api/v1/offers",
            Some(token),
            offer_body(code, name, price_cents, commitment),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    o["id"].as_str().unwrap().to_string()
}

fn offer_body(code: &str, name: &str, price_cents: i64, commitment: i64) -> Value {
    json!({
        "code": code, "name": name, "description": format!("{name}: a small cloud"),
        "monthly_price_cents": price_cents, "vat_rate_bp": 2000,
        "includes": {"vcpus": 2, "ram_mib": 4096, "disk_gib": 50, "vms": 2, "storage_gb": 100, "egress_gb": 1000, "public_ips": 1},
        "usage_prices": {"storage_gb_month_cents": 2, "egress_gb_cents": 1, "public_ip_month_cents": 300},
        "commitment_months": commitment,
    })
}

pub async fn subscribe(s: &TestServer, token: &str, offer: &str) -> Value {
    let (st, v) = s
        .post(
            "/api/v1/subscriptions",
            Some(token),
            json!({"offer_id": offer}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn run(s: &TestServer, token: &str, date: &str) -> Value {
    let (st, v) = s
        .post("/api/v1/invoice-runs", Some(token), json!({"date": date}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

pub async fn invoices(s: &TestServer, token: &str) -> Vec<Value> {
    let (st, v) = s.get("/api/v1/invoices?limit=200", Some(token)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

pub fn amounts(inv: &Value) -> Vec<i64> {
    inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount_cents"].as_i64().unwrap())
        .collect()
}

// R-3.6: the price list is public and shows every active offer with its terms; bad offers are
// refused and change nothing.
both_dbs!(price_list_is_public, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
    offer(&s, &billing.token, "cloud-m", "Cloud M", 6000, 12).await;
    let (st, list) = s.get("/api/v1/offers", None).await;
    assert_eq!(st, StatusCode::OK);
    let offers = list["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0]["terms"]["monthly_price_cents"], 3000);
    assert_eq!(offers[0]["terms"]["monthly_price_incl_vat_cents"], 3600);
    assert_eq!(offers[1]["terms"]["commitment_months"], 12);
    assert!(list["billing_terms"].as_str().unwrap().len() > 40);
    assert!(list["termination_terms"].as_str().unwrap().len() > 40);
    for (patch, field) in [
        (json!({"monthly_price_cents": -1}), "monthly_price_cents"),
        (
            json!({"monthly_price_cents": 100_000_000_000i64}),
            "monthly_price_cents",
        ),
        (json!({"vat_rate_bp": 1960}), "vat_rate_bp"),
        (json!({"commitment_months": 6}), "commitment_months"),
        (json!({"code": "cloud-s"}), "code"),
        (json!({"code": "no spaces"}), "code"),
    ] {
        let mut body = offer_body("cloud-x", "Cloud X", 1000, 0);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (st, p) = s.post("/api/v1/offers", Some(&billing.token), body).await;
        assert!(st.is_client_error(), "{patch}: {st}");
        assert_eq!(p["field"], field, "{patch}: {p}");
    }
    let (st, _) = s
        .post(
            &format!("/api/v1/offers/{small}/retire"),
            Some(&billing.token),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list) = s.get("/api/v1/offers", None).await;
    assert_eq!(
        list["offers"].as_array().unwrap().len(),
        1,
        "retired offers leave the price list"
    );
    // A subscriber cannot create offers.
    let sub = s.subscriber("curious@example.fr").await;
    assert_eq!(
        s.post(
            "/api/v1/offers",
            Some(&sub.token),
            offer_body("x", "X", 1, 0)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
});

// R-3.1 + R-6.1a: subscribing on 26 November invoices the 5 remaining days at once, pro rata
// by the day, in advance; the inclusions become the quotas; the notice arrives by email and
// in the inbox (R-6.1c, R-6.2).
both_dbs!(
    first_month_is_prorated_and_invoiced_at_once,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 12).await;
        let sub = s.subscriber("first@example.fr").await;
        let v = subscribe(&s, &sub.token, &small).await;
        assert_eq!(v["subscription"]["start_date"], "2026-11-26");
        assert_eq!(v["subscription"]["commitment_end"], "2027-11-25");
        assert_eq!(v["subscription"]["billed_until"], "2026-11-30");
        let inv = &v["invoice"];
        assert_eq!(inv["number"], "F2026-000001");
        assert_eq!(inv["issue_date"], "2026-11-26");
        assert_eq!(inv["due_date"], "2026-12-11");
        assert_eq!(amounts(inv), [500]); // 30.00 × 5/30
        assert_eq!(inv["lines"][0]["period_start"], "2026-11-26");
        assert_eq!(inv["lines"][0]["period_end"], "2026-11-30");
        assert_eq!(
            (
                inv["total_excl_vat_cents"].as_i64(),
                inv["total_vat_cents"].as_i64(),
                inv["total_incl_vat_cents"].as_i64()
            ),
            (Some(500), Some(100), Some(600))
        );
        assert_eq!(inv["buyer"]["name"], "Alex Durand");
        assert_eq!(inv["seller"]["name"], "Maocloud");
        let (_, q) = s.get("/api/v1/quotas", Some(&sub.token)).await;
        assert_eq!(
            (
                q["vcpus"].as_i64(),
                q["vms"].as_i64(),
                q["storage_gb"].as_i64()
            ),
            (Some(2), Some(2), Some(100))
        );
        s.run_jobs().await;
        let mail = s.last_email_to("first@example.fr").await.unwrap();
        assert!(
            mail.contains("F2026-000001") && mail.contains("6.00 EUR"),
            "{mail}"
        );
        let (_, inbox) = s.get("/api/v1/messages", Some(&sub.token)).await;
        assert!(inbox["items"][0]["body"]
            .as_str()
            .unwrap()
            .contains("F2026-000001"));
        // Bad input: an unknown offer; a second subscription where the offer forbids it.
        let (st, p) = s
            .post(
                "/api/v1/subscriptions",
                Some(&sub.token),
                json!({"offer_id": "01a20000-0000-7000-8000-000000000000"}),
            )
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("offer_id"))
        );
        let (st, p) = s
            .post(
                "/api/v1/subscriptions",
                Some(&sub.token),
                json!({"offer_id": small}),
            )
            .await;
        assert_eq!(
            (st, p["field"].as_str()),
            (StatusCode::CONFLICT, Some("offer_id")),
            "{p}"
        );
        assert_eq!(
            invoices(&s, &sub.token).await.len(),
            1,
            "refusals issued nothing"
        );
    }
);

// R-6.1b: the invoice of 1 December charges December in advance and November's usage beyond
// the inclusion in arrears; the run is idempotent and numbers have no gap (R-6.1e).
both_dbs!(
    monthly_invoice_advance_and_arrears,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
        let a = s.subscriber("a@example.fr").await;
        let b = s.subscriber("b@example.fr").await;
        subscribe(&s, &a.token, &small).await;
        subscribe(&s, &b.token, &small).await;
        // 150 GB stored during A's 5 days of November (120 h) and 1,234.5 GB out.
        let id: maocloud_types::SubscriberId = a.id.parse().unwrap();
        let nov28 = jiff::civil::date(2026, 11, 28);
        maocloud_app::billing::usage_record(
            &s.app,
            id,
            "storage_byte_hours",
            150_000_000_000 * 120,
            nov28,
            "test",
        )
        .await
        .unwrap();
        maocloud_app::billing::usage_record(
            &s.app,
            id,
            "egress_bytes",
            1_234_500_000_000,
            nov28,
            "test",
        )
        .await
        .unwrap();
        // Usage of December is not billed on December's invoice.
        maocloud_app::billing::usage_record(
            &s.app,
            id,
            "egress_bytes",
            9_000_000_000_000,
            jiff::civil::date(2026, 12, 1),
            "test",
        )
        .await
        .unwrap();
        s.clock.set("2026-12-01T05:00:00Z".parse().unwrap());
        let r = run(&s, &billing.token, "2026-12-01").await;
        assert_eq!(r["invoices_issued"], 2);
        let again = run(&s, &billing.token, "2026-12-01").await;
        assert_eq!(
            again["invoices_issued"], 0,
            "a second run bills nothing twice"
        );
        let inv = invoices(&s, &a.token).await;
        assert_eq!(inv.len(), 2);
        let dec = &inv[0];
        assert_eq!(dec["issue_date"], "2026-12-01");
        let kinds: Vec<&str> = dec["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["arrears", "arrears", "advance"]);
        // 50 GB-month over the 100 included at 0.02 = 1.00; 234.5 GB over at 0.01 = 2.35; December 30.00
        assert_eq!(amounts(dec), [100, 235, 3000]);
        assert_eq!(dec["lines"][0]["quantity_milli"], 50_000);
        assert_eq!(dec["lines"][0]["period_start"], "2026-11-26");
        assert_eq!(dec["lines"][2]["period_start"], "2026-12-01");
        assert_eq!(dec["lines"][2]["period_end"], "2026-12-31");
        assert_eq!(
            (
                dec["total_excl_vat_cents"].as_i64(),
                dec["total_vat_cents"].as_i64(),
                dec["total_incl_vat_cents"].as_i64()
            ),
            (Some(3335), Some(667), Some(4002))
        );
        // Numbers: F2026-000001..4 with no gap (two first invoices, two monthly ones).
        let mut numbers: Vec<String> = invoices(&s, &a.token)
            .await
            .iter()
            .chain(invoices(&s, &b.token).await.iter())
            .map(|i| i["number"].as_str().unwrap().to_string())
            .collect();
        numbers.sort();
        assert_eq!(
            numbers,
            [
                "F2026-000001",
                "F2026-000002",
                "F2026-000003",
                "F2026-000004"
            ]
        );
        // January starts a new series year.
        s.clock.set("2027-01-01T06:00:00Z".parse().unwrap());
        run(&s, &billing.token, "2027-01-01").await;
        let jan = &invoices(&s, &a.token).await[0];
        assert!(
            jan["number"].as_str().unwrap().starts_with("F2027-00000"),
            "{}",
            jan["number"]
        );
        assert_eq!(
            amounts(jan)[0],
            9_000 - 1_000,
            "December's 9,000 GB out, 1,000 included, at 0.01"
        );
    }
);

// R-3.2: moving to a bigger offer on 17 December costs no fee; the new price applies from that
// day pro rata (settled on January's invoice); the commitment end date does not move.
both_dbs!(upgrade_mid_month_is_prorated, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 12).await;
    let medium = offer(&s, &billing.token, "cloud-m", "Cloud M", 6000, 12).await;
    let sub = s.subscriber("grow@example.fr").await;
    let v = subscribe(&s, &sub.token, &small).await;
    let sid = v["subscription"]["id"].as_str().unwrap().to_string();
    s.clock.set("2026-12-01T05:00:00Z".parse().unwrap());
    run(&s, &billing.token, "2026-12-01").await;
    s.clock.set("2026-12-17T10:00:00Z".parse().unwrap());
    let (st, changed) = s
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-offer"),
            Some(&sub.token),
            json!({"offer_id": medium}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(changed["terms"]["name"], "Cloud M");
    assert_eq!(
        changed["commitment_end"], "2027-11-25",
        "the commitment end does not move"
    );
    assert_eq!(
        invoices(&s, &sub.token).await.len(),
        2,
        "no fee, no invoice for the change itself"
    );
    let (_, q) = s.get("/api/v1/quotas", Some(&sub.token)).await;
    assert_eq!(q["vcpus"], 2);
    s.clock.set("2027-01-01T05:00:00Z".parse().unwrap());
    run(&s, &billing.token, "2027-01-01").await;
    let jan = &invoices(&s, &sub.token).await[0];
    let kinds: Vec<&str> = jan["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["adjustment", "adjustment", "advance"]);
    // 15 days of December's 31: Cloud S credited 14.52, Cloud M charged 29.03; January at 60.00.
    assert_eq!(amounts(jan), [-1452, 2903, 6000]);
    assert_eq!(jan["lines"][0]["period_start"], "2026-12-17");
    // Bad input: the same offer again, an unknown offer, another subscriber's subscription.
    let (st, _) = s
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-offer"),
            Some(&sub.token),
            json!({"offer_id": medium}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let other = s.subscriber("other@example.fr").await;
    let (st, _) = s
        .post(
            &format!("/api/v1/subscriptions/{sid}/change-offer"),
            Some(&other.token),
            json!({"offer_id": small}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get(&format!("/api/v1/subscriptions/{sid}"), Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
});

// R-6.1e: an issued invoice is corrected by a credit note in its own series citing it, never
// edited; payments are allocated and a payment larger than what is due is refused.
both_dbs!(credit_notes_and_payments, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let support = s
        .operator("support@maocloud.test", OperatorRole::Support)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
    let sub = s.subscriber("pay@example.fr").await;
    let v = subscribe(&s, &sub.token, &small).await;
    let inv_id = v["invoice"]["id"].as_str().unwrap().to_string();
    let (_, bal) = s.get("/api/v1/payments", Some(&sub.token)).await;
    assert_eq!(bal["due_cents"], 600);
    let pay = |amount: i64| json!({"subscriber_id": sub.id, "amount_cents": amount, "method": "bank_transfer", "reference": "VIR 123"});
    let (st, p) = s
        .post("/api/v1/payments", Some(&billing.token), pay(601))
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_cents")),
        "{p}"
    );
    for bad in [
        json!({"amount_cents": 0}),
        json!({"amount_cents": -5}),
        json!({"method": "bitcoin"}),
    ] {
        let mut body = pay(100);
        for (k, val) in bad.as_object().unwrap() {
            body[k] = val.clone();
        }
        assert_eq!(
            s.post("/api/v1/payments", Some(&billing.token), body)
                .await
                .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        s.post("/api/v1/payments", Some(&support.token), pay(100))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/api/v1/payments", Some(&sub.token), pay(100))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (st, _) = s
        .post("/api/v1/payments", Some(&billing.token), pay(200))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // A partial credit of 1.00 excl. VAT: 1.20 incl.
    let (st, cn) = s.post("/api/v1/credit-notes", Some(&billing.token), json!({"invoice_id": inv_id, "amount_excl_vat_cents": 100, "reason": "Geste commercial"})).await;
    assert_eq!(st, StatusCode::CREATED, "{cn}");
    assert_eq!(cn["number"], "A2026-000001");
    assert_eq!(cn["credited_invoice_id"], inv_id.as_str());
    assert_eq!(cn["total_incl_vat_cents"], 120);
    let (_, bal) = s.get("/api/v1/payments", Some(&sub.token)).await;
    assert_eq!(bal["due_cents"], 600 - 200 - 120);
    // Crediting more than is left is refused.
    let (st, p) = s
        .post(
            "/api/v1/credit-notes",
            Some(&billing.token),
            json!({"invoice_id": inv_id, "amount_excl_vat_cents": 500, "reason": "Trop"}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_excl_cents")),
        "{p}"
    );
    let (st, _) = s
        .post(
            "/api/v1/credit-notes",
            Some(&billing.token),
            json!({"invoice_id": inv_id, "reason": "Tout"}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a full credit would exceed what is left"
    );
    // The invoice itself is unchanged.
    let (_, again) = s
        .get(&format!("/api/v1/invoices/{inv_id}"), Some(&sub.token))
        .await;
    assert_eq!(again, v["invoice"]);
    let (_, cns) = s.get("/api/v1/credit-notes", Some(&sub.token)).await;
    assert_eq!(cns["items"].as_array().unwrap().len(), 1);
    let (st, _) = s
        .post("/api/v1/payments", Some(&billing.token), pay(280))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, bal) = s.get("/api/v1/payments", Some(&sub.token)).await;
    assert_eq!(
        (
            bal["due_cents"].as_i64(),
            bal["payments"].as_array().unwrap().len()
        ),
        (Some(0), 2)
    );
});

// R-6.1c: a subscriber who asks for paper gets each new invoice queued for print and mail;
// R-6.1d: invoices stay visible to the subscriber for 12 months, to operators for good.
both_dbs!(
    paper_delivery_and_twelve_month_visibility,
    |s: TestServer| async move {
        let billing = s
            .operator("billing@maocloud.test", OperatorRole::Billing)
            .await;
        let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
        let sub = s.subscriber("paper@example.fr").await;
        let (st, me) = s
            .call(
                reqwest::Method::PATCH,
                "/api/v1/me",
                Some(&sub.token),
                Some(json!({"invoice_delivery": "paper"})),
            )
            .await;
        assert_eq!(
            (st, me["invoice_delivery"].as_str()),
            (StatusCode::OK, Some("paper"))
        );
        let (st, _) = s
            .call(
                reqwest::Method::PATCH,
                "/api/v1/me",
                Some(&sub.token),
                Some(json!({"invoice_delivery": "pigeon"})),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
        let v = subscribe(&s, &sub.token, &small).await;
        let first = v["invoice"]["id"].as_str().unwrap().to_string();
        let (_, q) = s.get("/api/v1/print-queue", Some(&billing.token)).await;
        assert_eq!(q.as_array().unwrap().len(), 1);
        assert_eq!(q[0]["invoice_id"], first.as_str());
        assert!(q[0]["mailed_at"].is_null());
        let (st, _) = s
            .post(
                &format!("/api/v1/print-queue/{first}/mailed"),
                Some(&billing.token),
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(
            s.post(
                &format!("/api/v1/print-queue/{first}/mailed"),
                Some(&billing.token),
                json!({})
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        // Still readable electronically.
        assert_eq!(
            s.get(&format!("/api/v1/invoices/{first}"), Some(&sub.token))
                .await
                .0,
            StatusCode::OK
        );
        // Thirteen months later the first invoice is out of the subscriber's area, not the operator's.
        s.clock.set("2027-12-27T09:00:00Z".parse().unwrap());
        let token = s.sign_in("paper@example.fr", PASSWORD, None).await;
        assert_eq!(
            s.get(&format!("/api/v1/invoices/{first}"), Some(&token))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert!(invoices(&s, &token).await.is_empty());
        let op_token = s
            .sign_in(
                "billing@maocloud.test",
                PASSWORD,
                Some(&s.totp_code(&billing.totp_secret)),
            )
            .await;
        let (st, _) = s
            .get(&format!("/api/v1/invoices/{first}"), Some(&op_token))
            .await;
        assert_eq!(st, StatusCode::OK);
    }
);

/// A Python with the `factur-x` package (installed by scripts/test), for an independent check.
fn facturx_python() -> String {
    std::env::var("MAOCLOUD_TEST_PYTHON").expect("MAOCLOUD_TEST_PYTHON must name a Python with the factur-x package: run the tests with ./scripts/test")
}

fn run_tool(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// R-6.1c, R-6.1e: each invoice and credit note is a PDF/A-3b carrying its Factur-X (EN 16931)
// XML, checked with independent tools: poppler (pdfinfo, pdfdetach) and the factur-x package,
// which validates the XML against the official XSD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_facturx_pdfs() {
    let s = TestServer::start().await;
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 2999, 12).await;
    let mut form = s.signup_form("pro@example.fr").await;
    form["customer_kind"] = json!("professional");
    form["company_name"] = json!("Alouettes SAS");
    form["company_id"] = json!("73282932000074");
    form["vat_number"] = json!("FR44732829320");
    assert_eq!(
        s.post("/api/v1/signup", None, form).await.0,
        StatusCode::CREATED
    );
    let token = s.sign_in("pro@example.fr", PASSWORD, None).await;
    let v = subscribe(&s, &token, &small).await;
    let id = v["invoice"]["id"].as_str().unwrap().to_string();
    let r = s
        .http
        .get(format!("{}/api/v1/invoices/{id}/pdf", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("F2026-000001.pdf"));
    let pdf = r.bytes().await.unwrap();
    let again = s
        .http
        .get(format!("{}/api/v1/invoices/{id}/pdf", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        pdf, again,
        "the same invoice always renders to the same bytes"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let p = path.to_str().unwrap();
    let info = run_tool("pdfinfo", &[p]);
    assert!(
        info.contains("Title:           Facture F2026-000001"),
        "{info}"
    );
    assert!(info.contains("Pages:           1"), "{info}");
    assert!(run_tool("pdfdetach", &["-list", p]).contains("factur-x.xml"));
    let xml_path = dir.path().join("factur-x.xml");
    run_tool(
        "pdfdetach",
        &["-save", "1", "-o", xml_path.to_str().unwrap(), p],
    );
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    // The mandatory mentions (R-6.1e): both parties with their ids, dates, lines, VAT, totals.
    for needle in [
        "<ram:ID>F2026-000001</ram:ID>",
        "<ram:TypeCode>380</ram:TypeCode>",
        "20261126",
        "20261211",
        "schemeID=\"VA\">FR44732829320",
        "73282932000074",
        "<ram:RateApplicablePercent>20.00</ram:RateApplicablePercent>",
        "<ram:GrandTotalAmount>6.00</ram:GrandTotalAmount>",
        "frais de recouvrement de 40 €",
    ] {
        assert!(xml.contains(needle), "factur-x.xml lacks {needle}");
    }
    let (st, api_xml) = s
        .get(&format!("/api/v1/invoices/{id}/facturx"), Some(&token))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        api_xml.as_str().unwrap(),
        xml,
        "the attached XML is the one the API serves"
    );
    let check = r#"
import sys, facturx
from lxml import etree
pdf = open(sys.argv[1], 'rb').read()
name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
assert name == 'factur-x.xml', name
assert facturx.xml_check_xsd(xml, flavor='factur-x', level='en16931')
tree = etree.fromstring(xml)
assert facturx.get_flavor(tree) == 'factur-x' and facturx.get_level(tree) == 'en16931'
meta = pdf[pdf.find(b'<x:xmpmeta'):pdf.find(b'</x:xmpmeta>')]
assert b'<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>' in meta and b'pdfaid:part' in meta, meta[:400]
print('ok')
"#;
    assert_eq!(run_tool(&facturx_python(), &["-c", check, p]).trim(), "ok");
    // A credit note is a Factur-X 381 citing the invoice.
    let (st, cn) = s
        .post(
            "/api/v1/credit-notes",
            Some(&billing.token),
            json!({"invoice_id": id, "reason": "Erreur de tarif"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cn}");
    let cn_id = cn["id"].as_str().unwrap();
    let r = s
        .http
        .get(format!("{}/api/v1/credit-notes/{cn_id}/pdf", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
    let check_cn = r#"
import sys, facturx
name, xml = facturx.get_xml_from_pdf(open(sys.argv[1], 'rb').read(), check_xsd=True)
assert b'<ram:TypeCode>381</ram:TypeCode>' in xml and b'<ram:IssuerAssignedID>F2026-000001</ram:IssuerAssignedID>' in xml
print('ok')
"#;
    assert_eq!(
        run_tool(&facturx_python(), &["-c", check_cn, p]).trim(),
        "ok"
    );
    // Another subscriber gets 404 for the documents.
    let other = s.subscriber("other@example.fr").await;
    assert_eq!(
        s.get(&format!("/api/v1/invoices/{id}/pdf"), Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(
            &format!("/api/v1/invoices/{id}/facturx"),
            Some(&other.token)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

// Test clocks (billing item 8): a sandbox subscriber on a clock subscribes at the clock's time,
// and advancing the clock fires the monthly run on every 1st it passes; live subscribers and
// the live run never mix with the sandbox.
both_dbs!(test_clock_previews_a_contract, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3100, 0).await;
    let (st, clock) = s
        .post(
            "/api/v1/test-clocks",
            Some(&billing.token),
            json!({"name": "Aperçu 2027", "now": "2027-01-15T10:00:00Z"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{clock}");
    let cid = clock["id"].as_str().unwrap().to_string();
    let form = s.signup_form("sandbox@example.fr").await;
    let (st, sb) = s
        .post(
            &format!("/api/v1/test-clocks/{cid}/subscribers"),
            Some(&billing.token),
            form,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{sb}");
    let token = s.sign_in("sandbox@example.fr", PASSWORD, None).await;
    let v = subscribe(&s, &token, &small).await;
    assert_eq!(
        v["subscription"]["start_date"], "2027-01-15",
        "the sandbox lives on its clock"
    );
    assert_eq!(v["invoice"]["issue_date"], "2027-01-15");
    assert_eq!(amounts(&v["invoice"]), [1700]); // 31.00 × 17/31
                                                // A live subscriber on the platform's own time.
    let live = s.subscriber("live@example.fr").await;
    subscribe(&s, &live.token, &small).await;
    // The live run of 1 December bills the live subscriber only.
    let r = run(&s, &billing.token, "2026-12-01").await;
    assert_eq!(r["invoices_issued"], 1);
    // Advancing the clock to 2 March fires the runs of 1 February and 1 March.
    let (st, adv) = s
        .post(
            &format!("/api/v1/test-clocks/{cid}/advance"),
            Some(&billing.token),
            json!({"to": "2027-03-02T08:00:00Z"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{adv}");
    assert_eq!(
        adv["runs"],
        json!([{"date": "2027-02-01", "invoices_issued": 1}, {"date": "2027-03-01", "invoices_issued": 1}])
    );
    assert_eq!(adv["clock"]["now"], "2027-03-02T08:00:00Z");
    let inv = invoices(&s, &token).await;
    let dates: Vec<&str> = inv
        .iter()
        .map(|i| i["issue_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2027-03-01", "2027-02-01", "2027-01-15"]);
    assert_eq!(amounts(&inv[0]), [3100]);
    assert_eq!(
        invoices(&s, &live.token).await.len(),
        2,
        "the clock never bills live subscribers"
    );
    // Bad input: backwards, too far, unknown clock, a subscriber asking.
    let (st, p) = s
        .post(
            &format!("/api/v1/test-clocks/{cid}/advance"),
            Some(&billing.token),
            json!({"to": "2027-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );
    let (st, _) = s
        .post(
            &format!("/api/v1/test-clocks/{cid}/advance"),
            Some(&billing.token),
            json!({"to": "2035-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s
        .post(
            &format!("/api/v1/test-clocks/{cid}/advance"),
            Some(&billing.token),
            json!({"to": "tomorrow"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.post(
            "/api/v1/test-clocks/nope/advance",
            Some(&billing.token),
            json!({"to": "2028-01-01T00:00:00Z"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/test-clocks/{cid}/advance"),
            Some(&token),
            json!({"to": "2028-01-01T00:00:00Z"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
});

// SEPA Core direct debit (billing item 7): a mandate signed online (IBAN checked, acceptance
// recorded), a pre-notification at least 14 days before each collection, a pain.008 batch valid
// against its XSD, and a reject (pain.002) that reopens the invoice.
both_dbs!(sepa_direct_debit, |s: TestServer| async move {
    let billing = s
        .operator("billing@maocloud.test", OperatorRole::Billing)
        .await;
    let small = offer(&s, &billing.token, "cloud-s", "Cloud S", 3000, 0).await;
    let sub = s.subscriber("sepa@example.fr").await;
    let mandate =
        |iban: &str, accept: bool| json!({"iban": iban, "holder": "Alex Durand", "accept": accept});
    let (st, p) = s
        .post(
            "/api/v1/mandates",
            Some(&sub.token),
            mandate("FR7630006000011234567890188", true),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("iban")),
        "{p}"
    );
    let (st, p) = s
        .post(
            "/api/v1/mandates",
            Some(&sub.token),
            mandate("FR76 3000 6000 0112 3456 7890 189", false),
        )
        .await;
    assert_eq!(
        (st, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("accept")),
        "{p}"
    );
    let (st, m) = s
        .post(
            "/api/v1/mandates",
            Some(&sub.token),
            mandate("FR76 3000 6000 0112 3456 7890 189", true),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(
        m["iban"], "FR76*******************0189",
        "the IBAN is never shown whole"
    );
    assert_eq!(
        (m["signed_on"].as_str(), m["status"].as_str()),
        (Some("2026-11-26"), Some("active"))
    );
    assert!(m["acceptance"].as_str().unwrap().starts_with("online, ip="));
    let other = s.subscriber("nosy@example.fr").await;
    let (_, theirs) = s.get("/api/v1/mandates", Some(&other.token)).await;
    assert!(theirs.as_array().unwrap().is_empty());
    assert_eq!(
        s.post(
            &format!("/api/v1/mandates/{}/revoke", m["id"].as_str().unwrap()),
            Some(&other.token),
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    let v = subscribe(&s, &sub.token, &small).await;
    assert_eq!(v["invoice"]["total_incl_vat_cents"], 600);
    s.run_jobs().await;
    let notice = s
        .emails_to("sepa@example.fr")
        .await
        .into_iter()
        .find(|e| e.1.contains("prélèverons"))
        .expect("a pre-notification");
    // Issued 26 November, due 11 December: collected on the due date, 15 days after the notice.
    assert!(
        notice.1.contains("6.00 EUR le 2026-12-11")
            && notice.1.contains(m["reference"].as_str().unwrap()),
        "{}",
        notice.1
    );
    let (st, _) = s
        .post(
            "/api/v1/sepa/batches",
            Some(&billing.token),
            json!({"through": "2026-12-10"}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NO_CONTENT,
        "nothing is due before the collection date"
    );
    let (st, batch) = s
        .post(
            "/api/v1/sepa/batches",
            Some(&billing.token),
            json!({"through": "2026-12-11"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{batch}");
    assert_eq!(
        (
            batch["transactions"].as_i64(),
            batch["total_cents"].as_i64()
        ),
        (Some(1), Some(600))
    );
    let r = s
        .http
        .get(format!(
            "{}/api/v1/sepa/batches/{}/xml",
            s.url,
            batch["id"].as_str().unwrap()
        ))
        .bearer_auth(&billing.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    for needle in [
        "<SeqTp>FRST</SeqTp>",
        "<ReqdColltnDt>2026-12-11</ReqdColltnDt>",
        "<InstdAmt Ccy=\"EUR\">6.00</InstdAmt>",
        "<IBAN>FR7630006000011234567890189</IBAN>",
        "<EndToEndId>F2026-000001</EndToEndId>",
    ] {
        assert!(xml.contains(needle), "pain.008 lacks {needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.xml");
    std::fs::write(&path, &xml).unwrap();
    let validate = r#"
import os, sys, sepaxml
from lxml import etree
xsd = os.path.join(os.path.dirname(sepaxml.__file__), 'schemas', 'pain.008.001.02.xsd')
etree.XMLSchema(etree.parse(xsd)).assertValid(etree.parse(sys.argv[1]))
print('ok')
"#;
    assert_eq!(
        run_tool(&facturx_python(), &["-c", validate, path.to_str().unwrap()]).trim(),
        "ok"
    );
    let (_, bal) = s.get("/api/v1/payments", Some(&sub.token)).await;
    assert_eq!(
        (
            bal["due_cents"].as_i64(),
            bal["payments"][0]["method"].as_str()
        ),
        (Some(0), Some("sepa_direct_debit"))
    );
    assert_eq!(
        s.post(
            "/api/v1/sepa/batches",
            Some(&billing.token),
            json!({"through": "2026-12-31"})
        )
        .await
        .0,
        StatusCode::NO_CONTENT,
        "exported once"
    );
    // The bank rejects it: the invoice is open again and the subscriber is told.
    let pain002 = "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\"><CstmrPmtStsRpt><OrgnlPmtInfAndSts>\
        <TxInfAndSts><OrgnlEndToEndId>F2026-000001</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>\
        <TxInfAndSts><OrgnlEndToEndId>F2099-999999</OrgnlEndToEndId><TxSts>RJCT</TxSts></TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>";
    let (st, rep) = s
        .post(
            "/api/v1/sepa/returns",
            Some(&billing.token),
            json!({"xml": pain002}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{rep}");
    assert_eq!(
        rep,
        json!({"rejected": ["F2026-000001"], "unknown": ["F2099-999999"]})
    );
    let (_, bal) = s.get("/api/v1/payments", Some(&sub.token)).await;
    assert_eq!(bal["due_cents"], 600, "the reject reopened the invoice");
    s.run_jobs().await;
    assert!(s
        .last_email_to("sepa@example.fr")
        .await
        .unwrap()
        .contains("AM04"));
    let (st, again) = s
        .post(
            "/api/v1/sepa/returns",
            Some(&billing.token),
            json!({"xml": pain002}),
        )
        .await;
    assert_eq!(
        (st, again["rejected"].as_array().unwrap().len()),
        (StatusCode::OK, 0),
        "importing twice changes nothing"
    );
    assert_eq!(
        s.post(
            "/api/v1/sepa/returns",
            Some(&billing.token),
            json!({"xml": "<hello/>"})
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        s.post(
            "/api/v1/sepa/returns",
            Some(&sub.token),
            json!({"xml": pain002})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
});
