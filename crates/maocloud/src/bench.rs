//! `maocloud bench …`: measurements that need the platform's internals (seeding 100,000
//! subscriptions through the HTTP API would measure Argon2, not billing). Prints numbers.

pub use crate::bench_s3::s3;

use crate::config::ServeConfig;
use crate::serve::Platform;
use maocloud_app::{billing, demo, Ctx};
use maocloud_billing::{Inclusions, OfferTerms, UsagePrices};
use maocloud_types::{Cents, SystemClock};
use std::sync::Arc;
use std::time::Instant;

/// Peak resident memory of this process so far (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub async fn invoice_run(n: u64, mut config: ServeConfig) -> anyhow::Result<()> {
    config.compute = crate::config::ComputeMode::Off;
    config.s3_listen = None;
    let platform = Platform::build(config, Arc::new(SystemClock)).await?;
    let app = platform.app;
    let ctx = Ctx::system();
    let terms = OfferTerms {
        name: "Bench S".into(),
        monthly_price: Cents(1999),
        vat_rate_bp: 2000,
        includes: Inclusions {
            vcpus: 2,
            ram_mib: 4096,
            disk_gib: 40,
            vms: 2,
            storage_gb: 100,
            egress_gb: 1000,
            public_ips: 1,
        },
        usage: UsagePrices {
            storage_gb_month: Cents(2),
            egress_gb: Cents(1),
            public_ip_month: Cents(300),
        },
        commitment_months: 0,
    };
    let code = format!("bench-{}", uuid_suffix());
    let offer = billing::offer_create(
        &app,
        &ctx,
        billing::OfferInput {
            code,
            description: "Benchmark offer".into(),
            terms,
            multiple_allowed: false,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let today = maocloud_billing::paris_date(app.now());
    let start = today.first_of_month();
    let t = Instant::now();
    demo::seed_subscriptions(&app, n, offer.id, start)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let seed = t.elapsed();
    println!(
        "seeded {n} subscriptions in {:.1} s ({})",
        seed.as_secs_f64(),
        app.database_kind()
    );
    let run_on = maocloud_billing::calendar::next_month(start);
    let t = Instant::now();
    let report = billing::invoice_run(&app, &ctx, run_on)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let took = t.elapsed();
    println!(
        "monthly run for {run_on}: {} invoices in {:.1} s ({:.0} invoices/s); PDFs are not rendered by the run",
        report.invoices_issued,
        took.as_secs_f64(),
        report.invoices_issued as f64 / took.as_secs_f64()
    );
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory of the process (seed + run): {mib:.0} MiB");
    }
    Ok(())
}

fn uuid_suffix() -> String {
    maocloud_types::JobId::new().to_string()[..8].to_string()
}

/// Renders `count` sample invoices (ten lines each) and prints the time per PDF.
pub fn pdf(count: u32) -> anyhow::Result<()> {
    use maocloud_documents::{Document, Line, Party, Vat};
    let party = |name: &str| Party {
        name: name.into(),
        legal_form: Some("SAS".into()),
        address_line1: "3 Rue des Alouettes".into(),
        address_line2: None,
        postal_code: "80120".into(),
        city: "Quend".into(),
        country: "FR".into(),
        company_id: Some("732829320".into()),
        vat_number: Some("FR44732829320".into()),
        registration: None,
        email: None,
    };
    let doc = Document {
        kind: "invoice".into(),
        number: "F2026-000001".into(),
        issue_date: "2026-12-01".into(),
        due_date: Some("2026-12-16".into()),
        credited_number: None,
        seller: party("Maocloud"),
        buyer: party("Alouettes SAS"),
        buyer_is_professional: true,
        lines: (0..10)
            .map(|i| Line {
                description: format!("Ligne {i}"),
                period_start: "2026-12-01".into(),
                period_end: "2026-12-31".into(),
                quantity_milli: 1000,
                unit_price: 2999,
                amount: 2999,
                vat_rate_bp: 2000,
            })
            .collect(),
        vat: vec![Vat {
            rate_bp: 2000,
            base: 29990,
            vat: 5998,
        }],
        total_excl: 29990,
        total_vat: 5998,
        total_incl: 35988,
        note: None,
        payment_terms: "Paiement à réception.".into(),
    };
    let first = Instant::now();
    maocloud_documents::render(&doc)?;
    let cold = first.elapsed();
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..count {
        bytes = maocloud_documents::render(&doc)?.len();
    }
    let per = t.elapsed() / count.max(1);
    println!("invoice PDF (Factur-X PDF/A-3b, 10 lines, {bytes} bytes): first {:.0} ms (loads fonts), then {:.1} ms each over {count}", cold.as_secs_f64() * 1000.0, per.as_secs_f64() * 1000.0);
    Ok(())
}
