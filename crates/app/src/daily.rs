//! The daily sweep: every date rule that fires by itself. For one Paris day it ends the
//! contracts due to end (R-7.2, R-7.3c), runs the monthly invoicing (R-6.1a), sends payment
//! reminders and suspends for non-payment (R-7.1b), suspends incomplete files (R-7.1d), lifts
//! what is regularised, and erases data past its grace period. Live subscribers are swept by
//! the server every few minutes; a test clock sweeps its sandbox subscribers for each day it
//! passes. Every step is idempotent: sweeping a day twice changes nothing the second time.

use crate::billing::{self, RunReport};
use crate::i18n::{tf, Lang};
use crate::{notify, suspension, termination, App, Ctx, Result};
use jiff::civil::Date;
use jiff::Span;
use maocloud_billing::calendar::paris_date;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub run: RunReport,
    pub terminations: u64,
    pub reminders: u64,
    pub suspensions: u64,
    pub lifted: u64,
    pub erased: u64,
    /// Subscribers erased by the retention job.
    pub retention_erased: u64,
}

/// Sweeps day `on` for the live subscribers (`clock` = None) or one test clock's.
pub async fn sweep(app: &App, on: Date, clock: Option<&str>) -> Result<SweepReport> {
    let mut r = SweepReport {
        // Contracts ending yesterday are settled before a new month is billed in advance.
        terminations: termination::carry_out(app, on, clock).await?,
        ..Default::default()
    };
    r.run = billing::run_subscriptions(app, &Ctx::system(), on, clock).await?;
    dunning(app, on, clock, &mut r).await?;
    incomplete_files(app, on, clock, &mut r).await?;
    r.erased = termination::erase_expired(app, on, clock).await?;
    if clock.is_none() {
        r.retention_erased = crate::privacy::retention_sweep(app).await? as u64;
    }
    Ok(r)
}

fn days_before(on: Date, days: i64) -> Result<String> {
    Ok(on
        .checked_sub(Span::new().days(days))
        .map_err(crate::Error::internal)?
        .to_string())
}

/// R-7.1b: a reminder the day after an invoice's due date; suspension when `dunning_days`
/// full days have passed since it without payment; lifted once nothing is overdue.
async fn dunning(app: &App, on: Date, clock: Option<&str>, r: &mut SweepReport) -> Result<()> {
    let today = on.to_string();
    let overdue = {
        let mut tx = app.db().read().await?;
        tx.invoice_overdue(&today, clock, None).await?
    };
    let suspend_from = days_before(on, app.settings().dunning_days)?;
    let mut to_suspend = std::collections::BTreeSet::new();
    for o in &overdue {
        match &o.reminded_on {
            None => {
                let mut tx = app.db().write().await?;
                if tx
                    .dunning_remind(o.invoice_id, o.subscriber_id, &today, app.now())
                    .await?
                {
                    let account = tx.account_fetch(o.subscriber_id.0).await?;
                    let lang = Lang::parse(&account.locale);
                    let suspend_on = on
                        .checked_add(Span::new().days(app.settings().dunning_days + 1))
                        .map_err(crate::Error::internal)?;
                    let body = tf(
                        lang,
                        "email.payment_reminder.body",
                        &[
                            ("name", &account.display_name),
                            ("number", &o.number),
                            ("amount", &o.remaining.to_string()),
                            ("due", &o.due_date),
                            ("suspend_on", &suspend_on.to_string()),
                        ],
                    );
                    notify::send(
                        app,
                        &mut tx,
                        &account,
                        "email.payment_reminder.subject",
                        &body,
                    )
                    .await?;
                    r.reminders += 1;
                }
                tx.commit().await?;
            }
            Some(d) if d.as_str() < suspend_from.as_str() => {
                to_suspend.insert(o.subscriber_id);
            }
            Some(_) => {}
        }
    }
    for s in to_suspend {
        let mut tx = app.db().write().await?;
        if tx.suspension_open(s, "non_payment").await?.is_none() {
            suspension::start(
                app,
                &mut tx,
                &Ctx::system(),
                s,
                "non_payment",
                "invoice unpaid 15 days after the payment reminder (R-7.1b)",
                app.settings().dunning_auto_suspend,
            )
            .await?;
            r.suspensions += 1;
        }
        tx.commit().await?;
    }
    // Paid meanwhile by a credit note or a reversal undone: lift what is regularised.
    let open = {
        let mut tx = app.db().read().await?;
        tx.suspended_for("non_payment", clock).await?
    };
    for s in open {
        let mut tx = app.db().write().await?;
        suspension::lift_if_paid(app, &mut tx, s.subscriber_id).await?;
        if tx
            .suspension_open(s.subscriber_id, "non_payment")
            .await?
            .is_none()
        {
            r.lifted += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// R-7.1d: a proof request unanswered `incomplete_file_days` full days after it was made
/// suspends the services until the file is complete.
async fn incomplete_files(
    app: &App,
    on: Date,
    clock: Option<&str>,
    r: &mut SweepReport,
) -> Result<()> {
    let requested_by = days_before(on, app.settings().incomplete_file_days + 1)?;
    let late = {
        let mut tx = app.db().read().await?;
        tx.proof_overdue(&requested_by, clock).await?
    };
    for s in late {
        let mut tx = app.db().write().await?;
        if tx.suspension_open(s, "incomplete_file").await?.is_none() {
            suspension::start(
                app,
                &mut tx,
                &Ctx::system(),
                s,
                "incomplete_file",
                "requested documents not provided (R-7.1d)",
                true,
            )
            .await?;
            r.suspensions += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Sweeps today for the live subscribers (the server's scheduler calls this).
pub async fn sweep_live(app: &App) -> Result<SweepReport> {
    sweep(app, paris_date(app.now()), None).await
}
