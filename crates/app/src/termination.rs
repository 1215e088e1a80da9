//! Termination: the subscriber terminates online, or an operator records a
//! registered letter with its date of receipt. The contract ends on a chosen date no later than
//! 10 days after receipt, or on the last day of the month of receipt (R-7.2b). During the
//! commitment, the remaining monthly fees fall due in the final invoice (R-7.2c) unless a
//! legitimate reason is proven and accepted (R-7.3b) or a terms-change window applies (R-6.3,
//! No other fee (R-7.3a). At the end date services stop; the final invoice settles usage
//! and credits prepaid days (R-7.3c); data stays read-only for the grace period, then is erased.

use crate::i18n::{t, tf, Lang};
use crate::{audit, billing, notify, proofs, App, Ctx, Error, Result};
use jiff::civil::Date;
use maocloud_billing::calendar::{month_end, paris_date, Period};
use maocloud_billing::invoice as compose;
use maocloud_billing::OfferTerms;
use maocloud_datastore::billing::Subscription;
use maocloud_datastore::contract::Termination;
use maocloud_datastore::{Scope, Tx};
use maocloud_types::{Cents, OperatorRole, SubscriptionId};
use serde_json::json;

const ROLES: &[OperatorRole] = &[OperatorRole::Billing, OperatorRole::Support];

/// R-7.2b: the latest end a chosen date may have, in days after receipt.
pub const MAX_DAYS_AFTER_RECEIPT: i64 = 10;

/// The legitimate reasons of R-7.3b.
pub const REASONS: [&str; 10] = [
    "withdrawal",
    "operator_non_performance",
    "authorisation_withdrawn",
    "network_change",
    "illness_or_disability",
    "over_indebtedness",
    "dismissal",
    "imprisonment",
    "death",
    "force_majeure",
];

/// What the subscriber asks for.
#[derive(Debug, Clone)]
pub struct TerminationInput {
    /// `month_end` or `date`.
    pub end: String,
    pub date: Option<Date>,
    /// An R-7.3b legitimate reason, to be proven.
    pub reason: Option<String>,
    /// Operators recording a registered letter: its date of receipt.
    pub received_on: Option<Date>,
}

/// Where the commitment dues stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dues {
    /// No commitment left after the end date.
    None,
    /// Due in the final invoice (amount excluding VAT).
    Due(Cents),
    /// A legitimate reason awaits its proof or an operator's decision; due if it is rejected.
    PendingReason(Cents),
    /// Waived: the reason was accepted.
    WaivedReason,
    /// Waived: inside the window a terms change opened (the version named).
    WaivedTerms(String),
}

impl Dues {
    pub fn code(&self) -> &'static str {
        match self {
            Dues::None => "none",
            Dues::Due(_) => "due",
            Dues::PendingReason(_) => "pending_reason",
            Dues::WaivedReason => "waived_reason",
            Dues::WaivedTerms(_) => "waived_terms_change",
        }
    }
    pub fn amount(&self) -> Cents {
        match self {
            Dues::Due(c) | Dues::PendingReason(c) => *c,
            _ => Cents(0),
        }
    }
}

/// A termination and where its dues stand.
#[derive(Debug, Clone)]
pub struct TerminationView {
    pub termination: Termination,
    pub commitment_end: Option<String>,
    pub dues: Dues,
    /// The status of the proof of the legitimate reason, if one was claimed.
    pub reason_status: Option<String>,
}

fn terms_of(sub: &Subscription) -> Result<OfferTerms> {
    billing::terms_of(&sub.terms)
}

/// The commitment fees from the day after `end` to the commitment's end, excluding VAT.
fn remaining_fees(sub: &Subscription, end: Date) -> Result<Cents> {
    let Some(c) = sub.commitment_end.as_deref() else {
        return Ok(Cents(0));
    };
    let c: Date = c.parse().map_err(Error::internal)?;
    let after = end.tomorrow().map_err(Error::internal)?;
    if c < after {
        return Ok(Cents(0));
    }
    Ok(Cents(
        compose::commitment_lines(
            &terms_of(sub)?,
            Period {
                start: after,
                end: c,
            },
        )
        .iter()
        .map(|l| l.amount.0)
        .sum(),
    ))
}

async fn view_of(tx: &mut Tx, t: Termination) -> Result<TerminationView> {
    let sub = tx
        .subscription_fetch(&Scope::All, t.subscription_id)
        .await?;
    let end: Date = t.end_date.parse().map_err(Error::internal)?;
    let fees = remaining_fees(&sub, end)?;
    let reason_status = match &t.proof_request_id {
        Some(id) => Some(tx.proof_fetch(&Scope::All, id).await?.status),
        None => None,
    };
    let dues = if fees.0 == 0 {
        Dues::None
    } else if let Some(v) = &t.penalty_free_terms {
        Dues::WaivedTerms(v.clone())
    } else {
        match reason_status.as_deref() {
            Some("approved") => Dues::WaivedReason,
            Some("open" | "submitted") => Dues::PendingReason(fees),
            _ => Dues::Due(fees),
        }
    };
    Ok(TerminationView {
        termination: t,
        commitment_end: sub.commitment_end,
        dues,
        reason_status,
    })
}

/// Terminates a subscription (the subscriber online; operators for a registered letter).
pub async fn request(
    app: &App,
    ctx: &Ctx,
    id: SubscriptionId,
    input: TerminationInput,
) -> Result<TerminationView> {
    let is_operator = ctx.principal.operator_role().is_some();
    if is_operator {
        ctx.require_operator(ROLES)?;
    } else {
        ctx.require_subscriber()?;
    }
    let mut tx = app.db().write().await?;
    let sub = tx.subscription_fetch(&ctx.scope(), id).await?;
    let today = paris_date(app.now_in(&mut tx, sub.subscriber_id.0).await?);
    let mut c = crate::error::Checker::default();
    let (channel, received_on) = match (is_operator, input.received_on) {
        (true, Some(d)) if d > today => {
            c.fail("received_on", "must not be in the future");
            ("letter", d)
        }
        (true, Some(d)) => ("letter", d),
        (true, None) => {
            c.fail(
                "received_on",
                "is required: the date the registered letter was received",
            );
            ("letter", today)
        }
        (false, Some(_)) => {
            c.fail("received_on", "is only for operators recording a letter");
            ("online", today)
        }
        (false, None) => ("online", today),
    };
    let end_date = match (input.end.as_str(), input.date) {
        ("month_end", None) => Some(month_end(received_on)),
        ("month_end", Some(_)) => {
            c.fail("date", "must be absent when the contract ends at month end");
            None
        }
        ("date", Some(d)) => {
            let latest = received_on
                .checked_add(jiff::Span::new().days(MAX_DAYS_AFTER_RECEIPT))
                .map_err(Error::internal)?;
            if d > latest {
                c.fail(
                    "date",
                    "must be no later than 10 days after the request was received (R-7.2b)",
                );
            } else if d < today {
                c.fail("date", "must not be in the past");
            }
            Some(d)
        }
        ("date", None) => {
            c.fail("date", "is required when choosing the end date");
            None
        }
        _ => {
            c.fail("end", "must be month_end or date");
            None
        }
    };
    if let Some(r) = &input.reason {
        if !REASONS.contains(&r.as_str()) {
            c.fail("reason", "is not a legitimate reason of the terms (R-7.3b)");
        }
    }
    c.finish()?;
    let end_date = end_date.expect("checked");
    if sub.status != "active" {
        return Err(Error::Conflict {
            field: None,
            reason: "this subscription has already ended".into(),
        });
    }
    if tx.termination_of(&Scope::All, sub.id).await?.is_some() {
        return Err(Error::Conflict {
            field: None,
            reason: "a termination of this subscription is already scheduled; withdraw it first"
                .into(),
        });
    }
    // a terms change whose window is open on the day of receipt.
    let received = received_on.to_string();
    let penalty_free_terms = tx
        .terms_notice_list(None, Some(sub.subscriber_id))
        .await?
        .into_iter()
        .find(|n| {
            n.window_end
                .as_deref()
                .is_some_and(|w| w >= received.as_str())
                && paris_date(n.notified_at).to_string() <= received
        })
        .map(|n| n.version);
    let proof_request_id = match &input.reason {
        Some(r) => Some(
            proofs::open(
                app,
                &mut tx,
                ctx,
                sub.subscriber_id,
                "termination_reason",
                &format!("R-7.3b: {r}"),
            )
            .await?
            .id,
        ),
        None => None,
    };
    let term = Termination {
        id: uuid::Uuid::now_v7().to_string(),
        subscription_id: sub.id,
        subscriber_id: sub.subscriber_id,
        channel: channel.into(),
        received_on: received,
        end_choice: input.end.clone(),
        end_date: end_date.to_string(),
        reason: input.reason.clone(),
        proof_request_id,
        penalty_free_terms,
        status: "scheduled".into(),
        final_invoice_id: None,
        settled_at: None,
        recorded_by: ctx.principal.label(),
        created_at: app.now(),
        withdrawn_at: None,
        ended_at: None,
        erase_on: None,
        erased_at: None,
    };
    tx.termination_create(&term).await?;
    let view = view_of(&mut tx, term).await?;
    let account = tx.account_fetch(sub.subscriber_id.0).await?;
    let lang = Lang::parse(&account.locale);
    let dues = match &view.dues {
        Dues::Due(c) | Dues::PendingReason(c) => {
            tf(lang, "termination.dues.due", &[("amount", &c.to_string())])
        }
        Dues::None | Dues::WaivedReason | Dues::WaivedTerms(_) => t(lang, "termination.dues.none"),
    };
    let body = tf(
        lang,
        "email.termination.body",
        &[
            ("name", &account.display_name),
            ("offer", &terms_of(&sub)?.name),
            ("received", &view.termination.received_on),
            ("end", &view.termination.end_date),
            ("dues", &dues),
            ("grace", &app.settings().termination_grace_days.to_string()),
        ],
    );
    notify::send(app, &mut tx, &account, "email.termination.subject", &body).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "termination.request",
        Some(&view.termination.id),
        Some(sub.subscriber_id),
        json!({"subscription": sub.id.to_string(), "channel": channel, "end": view.termination.end_date, "reason": input.reason}),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// The current termination of a subscription (404 when there is none).
pub async fn get(app: &App, ctx: &Ctx, id: SubscriptionId) -> Result<TerminationView> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let mut tx = app.db().read().await?;
    let t = tx
        .termination_of(&ctx.scope(), id)
        .await?
        .ok_or(Error::NotFound)?;
    view_of(&mut tx, t).await
}

/// Every termination in view (a subscriber's own; operators: all, or one subscriber's).
pub async fn list(
    app: &App,
    ctx: &Ctx,
    subscriber: Option<maocloud_types::SubscriberId>,
) -> Result<Vec<TerminationView>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let who = ctx.principal.subscriber().or(subscriber);
    let mut tx = app.db().read().await?;
    let mut out = vec![];
    for t in tx.termination_list(&ctx.scope(), who).await? {
        out.push(view_of(&mut tx, t).await?);
    }
    Ok(out)
}

/// Withdraws a scheduled termination, up to its end date.
pub async fn withdraw(app: &App, ctx: &Ctx, id: SubscriptionId) -> Result<()> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let mut tx = app.db().write().await?;
    let t = tx
        .termination_of(&ctx.scope(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let today = paris_date(app.now_in(&mut tx, t.subscriber_id.0).await?).to_string();
    if t.status != "scheduled" || today > t.end_date {
        return Err(Error::Conflict {
            field: None,
            reason: "this termination has already taken effect".into(),
        });
    }
    tx.termination_withdraw(&t.id, app.now()).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "termination.withdraw",
        Some(&t.id),
        Some(t.subscriber_id),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The daily sweep's part: ends the contracts whose end date is before `on`, and issues their
/// final invoice once any claimed reason is decided. Returns how many were ended or settled.
pub(crate) async fn carry_out(app: &App, on: Date, clock: Option<&str>) -> Result<u64> {
    let due = {
        let mut tx = app.db().read().await?;
        tx.termination_due(&on.to_string(), clock).await?
    };
    let mut n = 0;
    for t in due {
        let mut tx = app.db().write().await?;
        let sub = tx
            .subscription_fetch(&Scope::All, t.subscription_id)
            .await?;
        let end: Date = t.end_date.parse().map_err(Error::internal)?;
        if t.status == "scheduled" {
            let erase_on = end
                .checked_add(jiff::Span::new().days(app.settings().termination_grace_days))
                .map_err(Error::internal)?;
            tx.termination_ended(&t.id, app.now(), &erase_on.to_string())
                .await?;
            tx.subscription_terminate(sub.id, app.now()).await?;
            // R-7.3c: services stop at the end date; data is kept, read-only.
            crate::compute::vms::end_of_contract(&mut tx, sub.subscriber_id, app.now()).await?;
            let account = tx.account_fetch(sub.subscriber_id.0).await?;
            let lang = Lang::parse(&account.locale);
            let body = tf(
                lang,
                "email.terminated.body",
                &[
                    ("name", &account.display_name),
                    ("offer", &terms_of(&sub)?.name),
                    ("end", &t.end_date),
                    ("erase", &erase_on.to_string()),
                ],
            );
            notify::send(app, &mut tx, &account, "email.terminated.subject", &body).await?;
        }
        let view = view_of(&mut tx, t.clone()).await?;
        match view.dues {
            // The final invoice waits for the operator's decision on the reason.
            Dues::PendingReason(_) => {}
            dues => {
                let waived = !matches!(dues, Dues::Due(_));
                let invoice = billing::issue_final(app, &mut tx, &sub, end, waived, on).await?;
                tx.termination_settled(&t.id, invoice.as_ref().map(|i| i.id), app.now())
                    .await?;
            }
        }
        audit::record(
            &mut tx,
            &Ctx::system(),
            app.now(),
            "termination.carry_out",
            Some(&t.id),
            Some(t.subscriber_id),
            json!({"on": on.to_string()}),
        )
        .await?;
        tx.commit().await?;
        n += 1;
    }
    Ok(n)
}

/// The daily sweep's part: erases what ended contracts kept beyond their grace period. The
/// subscriber keeps read-only sign-in for their invoices (R-6.1d). Their VMs and disks, and
/// their buckets with every object, are deleted.
pub(crate) async fn erase_expired(app: &App, on: Date, clock: Option<&str>) -> Result<u64> {
    let due = {
        let mut tx = app.db().read().await?;
        tx.termination_to_erase(&on.to_string(), clock).await?
    };
    for t in &due {
        let mut tx = app.db().write().await?;
        tx.termination_erased(&t.id, app.now()).await?;
        let vms = crate::compute::vms::erase_all(&mut tx, t.subscriber_id, app.now()).await?;
        let buckets = crate::storage::erase_all(&mut tx, t.subscriber_id, app.now()).await?;
        audit::record(
            &mut tx,
            &Ctx::system(),
            app.now(),
            "termination.erase",
            Some(&t.id),
            Some(t.subscriber_id),
            json!({ "vms": vms, "buckets": buckets }),
        )
        .await?;
        tx.commit().await?;
        // Revoked keys stop working at once, not when this process's cache expires.
        app.storage_keys().forget(Some(t.subscriber_id));
    }
    Ok(due.len() as u64)
}

/// R-7.3c: whether every contract a subscriber had has ended (their data is then kept
/// read-only until erased). A subscriber who never subscribed has not "ended" anything.
pub(crate) async fn all_contracts_ended(
    tx: &mut maocloud_datastore::Tx,
    subscriber: maocloud_types::SubscriberId,
) -> Result<bool> {
    let subs = tx
        .subscription_list(&maocloud_datastore::Scope::All, subscriber)
        .await?;
    Ok(!subs.is_empty() && !subs.iter().any(|s| s.status == "active"))
}
