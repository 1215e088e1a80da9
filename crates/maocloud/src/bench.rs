//! `maocloud bench …`: measurements that need the platform's internals (seeding 100,000
//! subscriptions through the HTTP API would measure Argon2, not billing). Prints numbers.

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

pub async fn invoice_run(n: u64, config: ServeConfig) -> anyhow::Result<()> {
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
