//! R-6.1e under failure: the real `maocloud serve` process is killed (SIGKILL) in the middle
//! of a monthly run; after a restart the run is resumed. Every invoice is whole, numbers have no
//! gap, nobody is billed twice and nobody is skipped.

use maocloud::config::ServeArgs;
use maocloud::serve::Platform;
use maocloud_app::{accounts, billing, demo, Ctx};
use maocloud_billing::{Inclusions, OfferTerms, UsagePrices};
use maocloud_types::{Cents, OperatorRole, PageRequest, SystemClock};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: u64 = 3000;

async fn local_app(data: &std::path::Path) -> maocloud_app::App {
    let config = ServeArgs {
        data_dir: Some(data.to_path_buf()),
        compute: Some("off".into()),
        s3_listen: Some("off".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    Platform::build(config, Arc::new(SystemClock))
        .await
        .unwrap()
        .app
}

fn serve(data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_maocloud"))
        .args([
            "serve",
            "--compute",
            "off",
            "--s3-listen",
            "off",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("MAOCLOUD_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("maocloud serve starts")
}

async fn wait_healthy(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become healthy");
}

async fn sign_in(http: &reqwest::Client, url: &str, secret: &str) -> String {
    // A TOTP code is good once per 30-second step: wait for a fresh step if needed.
    let code = maocloud_app::auth::totp_code(secret, jiff::Timestamp::now()).unwrap();
    let body = serde_json::json!({"email": "billing@maocloud.test", "password": crate::harness::PASSWORD, "totp": code});
    let r = http
        .post(format!("{url}/api/v1/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_half_way_resumes_without_gaps_or_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let sys = Ctx::system();
    // The population: a billing operator, an offer, N subscriptions started this month.
    let (secret, start) = {
        let app = local_app(data.path()).await;
        let op = accounts::operator_create(
            &app,
            &sys,
            "billing@maocloud.test",
            OperatorRole::Billing,
            crate::harness::PASSWORD,
            "Billing",
            true,
        )
        .await
        .unwrap();
        let terms = OfferTerms {
            name: "Cloud S".into(),
            monthly_price: Cents(1999),
            vat_rate_bp: 2000,
            includes: Inclusions {
                vcpus: 1,
                ram_mib: 1024,
                disk_gib: 10,
                vms: 1,
                storage_gb: 10,
                egress_gb: 100,
                public_ips: 1,
            },
            usage: UsagePrices::default(),
            commitment_months: 0,
        };
        let offer = billing::offer_create(
            &app,
            &sys,
            billing::OfferInput {
                code: "cloud-s".into(),
                description: "S".into(),
                terms,
                multiple_allowed: false,
            },
        )
        .await
        .unwrap();
        let start = maocloud_billing::paris_date(app.now()).first_of_month();
        demo::seed_subscriptions(&app, N, offer.id, start)
            .await
            .unwrap();
        app.db().close().await;
        (op.totp_secret.unwrap(), start)
    };
    let run_on = maocloud_billing::calendar::next_month(start);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut server = serve(data.path(), port);
    wait_healthy(&http, &url).await;
    let token = sign_in(&http, &url, &secret).await;
    let run = {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/api/v1/invoice-runs"))
                .bearer_auth(token)
                .json(&serde_json::json!({"date": run_on.to_string()}))
                .send()
                .await
        })
    };
    // Watch the database from this process and kill the server once the run is under way.
    let watcher = local_app(data.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut before_kill;
    loop {
        before_kill = billing::document_count(&watcher, &sys, "invoice")
            .await
            .unwrap();
        if before_kill >= 50 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    assert!(run.await.unwrap().is_err(), "the killed run never answered");
    let at_kill = billing::document_count(&watcher, &sys, "invoice")
        .await
        .unwrap();
    assert!(
        at_kill > 0 && (at_kill as u64) < N,
        "the kill landed half-way ({at_kill} of {N})"
    );

    // Restart and run again: only what is left gets billed.
    let mut server = serve(data.path(), port);
    wait_healthy(&http, &url).await;
    let r = http
        .post(format!("{url}/api/v1/invoice-runs"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"date": run_on.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        report["invoices_issued"].as_u64().unwrap(),
        N - at_kill as u64,
        "{report}"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // Every subscription billed exactly once; numbers 1..=N without a gap; every invoice whole.
    let mut numbers = vec![];
    let mut subscriptions = HashSet::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = billing::document_list(&watcher, &sys, "invoice", None, &page)
            .await
            .unwrap();
        for inv in &p.items {
            numbers.push(inv.number.clone());
            assert!(
                subscriptions.insert(inv.subscription_id.unwrap()),
                "{} billed twice",
                inv.subscription_id.unwrap()
            );
            let lines = inv.lines.as_array().unwrap();
            assert_eq!(lines.len(), 1, "{}", inv.number);
            let sum: i64 = lines
                .iter()
                .map(|l| l["amount_cents"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, inv.total_excl.0);
            assert_eq!(inv.total_excl.0, 1999);
            assert_eq!(inv.total_vat.0, 400);
            assert_eq!(inv.total_incl.0, inv.total_excl.0 + inv.total_vat.0);
        }
        match p.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    assert_eq!(subscriptions.len() as u64, N, "nobody skipped");
    numbers.sort();
    let expected: Vec<String> = (1..=N as i64)
        .map(|i| maocloud_billing::invoice::number("F", run_on.year(), i))
        .collect();
    assert_eq!(numbers, expected, "numbers are sequential without gaps");
}
