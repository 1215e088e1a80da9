//! Incidents and compensation: operators record incidents and grant
//! compensation as credit notes. For a professional subscriber the total granted for one
//! incident is capped at the flat fees actually paid (VAT included) for the two most recent
//! monthly periods; the cap is computed and shown with its reasons. A force-majeure incident
//! grants none.

use crate::{audit, billing, App, Ctx, Error, Result};
use jiff::Timestamp;
use maocloud_billing::calendar::{month_start, paris_date, previous_month};
use maocloud_billing::invoice::{self as compose, Draft, Item, LineKind};
use maocloud_datastore::billing::InvoiceRecord;
pub use maocloud_datastore::contract::{Compensation, Incident};
use maocloud_datastore::Scope;
use maocloud_types::{Cents, InvoiceId, OperatorRole, PageRequest, SubscriberId};
use serde_json::json;

const ROLES: &[OperatorRole] = &[OperatorRole::Billing, OperatorRole::Support];

pub async fn create(
    app: &App,
    ctx: &Ctx,
    title: &str,
    resources: &str,
    started_at: Timestamp,
    ended_at: Option<Timestamp>,
    force_majeure: bool,
) -> Result<Incident> {
    ctx.require_operator(ROLES)?;
    let mut c = crate::error::Checker::default();
    let title = c.check("title", maocloud_types::validate::text(title, 200));
    let resources = c.check("resources", maocloud_types::validate::text(resources, 2000));
    if ended_at.is_some_and(|e| e < started_at) {
        c.fail("ended_at", "must not be before started_at");
    }
    c.finish()?;
    let i = Incident {
        id: uuid::Uuid::now_v7().to_string(),
        title: title.unwrap_or_default(),
        resources: resources.unwrap_or_default(),
        started_at,
        ended_at,
        force_majeure,
        recorded_by: ctx.principal.label(),
        created_at: app.now(),
    };
    let mut tx = app.db().write().await?;
    tx.incident_create(&i).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "incident.create",
        Some(&i.id),
        None,
        json!({"title": i.title, "force_majeure": force_majeure}),
    )
    .await?;
    tx.commit().await?;
    Ok(i)
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Vec<Incident>> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.incident_list().await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<(Incident, Vec<Compensation>)> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    let i = tx.incident_fetch(id).await?;
    let c = tx.compensation_list(id, None).await?;
    Ok((i, c))
}

/// One monthly period counted in the cap.
#[derive(Debug, Clone)]
pub struct CapPeriod {
    /// `YYYY-MM`.
    pub month: String,
    pub invoice_number: String,
    /// The flat fee of that month, VAT included, as invoiced.
    pub fee_incl: Cents,
    /// What of it was actually paid (the invoice's paid share).
    pub paid: Cents,
}

/// The cap for one subscriber and incident, with its reasons.
#[derive(Debug, Clone)]
pub struct Cap {
    pub professional: bool,
    pub force_majeure: bool,
    /// `None`: no cap (a consumer).
    pub cap: Option<Cents>,
    pub periods: Vec<CapPeriod>,
    /// Already granted for this incident (VAT included).
    pub granted: Cents,
    /// What may still be granted; `None` when uncapped.
    pub remaining: Option<Cents>,
}

/// the flat fees paid for the two most recent monthly periods at the incident's start.
async fn compute_cap(
    tx: &mut maocloud_datastore::Tx,
    incident: &Incident,
    subscriber: SubscriberId,
) -> Result<Cap> {
    let profile = tx.subscriber_profile_fetch(&Scope::All, subscriber).await?;
    let professional = profile.customer_kind == "professional";
    let granted = Cents(
        tx.compensation_list(&incident.id, Some(subscriber))
            .await?
            .iter()
            .map(|c| c.amount.0)
            .sum(),
    );
    let this = month_start(paris_date(incident.started_at));
    let months = [previous_month(this), this];
    let mut periods = vec![];
    let since = months[0].to_string();
    let invoices = tx
        .invoice_list(
            &Scope::All,
            Some(subscriber),
            "invoice",
            Some(&since),
            &PageRequest::first(100),
        )
        .await?;
    for inv in &invoices {
        let lines = crate::billing::stored_lines(inv)?;
        let paid = tx.invoice_paid(inv.id).await?;
        for m in months {
            let month = m.to_string()[..7].to_string();
            let fee_incl: i64 = lines
                .iter()
                .filter(|l| {
                    l.kind == LineKind::Advance
                        && matches!(l.item, Item::Subscription { .. })
                        && l.period_start.starts_with(&month)
                })
                .map(|l| {
                    l.amount_cents
                        + Cents(l.amount_cents)
                            .mul_div_round(l.vat_rate_bp, 10_000)
                            .expect("fits")
                            .0
                })
                .sum();
            if fee_incl == 0 || inv.total_incl.0 <= 0 {
                continue;
            }
            let paid_share = Cents(fee_incl)
                .mul_div_round(paid.0.min(inv.total_incl.0), inv.total_incl.0)
                .expect("fits");
            periods.push(CapPeriod {
                month,
                invoice_number: inv.number.clone(),
                fee_incl: Cents(fee_incl),
                paid: paid_share,
            });
        }
    }
    periods.sort_by(|a, b| a.month.cmp(&b.month));
    let cap = professional.then(|| Cents(periods.iter().map(|p| p.paid.0).sum()));
    let remaining = if incident.force_majeure {
        Some(Cents(0))
    } else {
        cap.map(|c| Cents((c.0 - granted.0).max(0)))
    };
    Ok(Cap {
        professional,
        force_majeure: incident.force_majeure,
        cap,
        periods,
        granted,
        remaining,
    })
}

/// The cap for a subscriber, with its reasons (operators).
pub async fn cap(app: &App, ctx: &Ctx, incident: &str, subscriber: SubscriberId) -> Result<Cap> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    let i = tx.incident_fetch(incident).await?;
    tx.subscriber_profile_fetch(&Scope::All, subscriber)
        .await
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber"))?;
    compute_cap(&mut tx, &i, subscriber).await
}

/// Grants compensation as a credit note on `invoice` (or the subscriber's latest invoice),
/// refused for force majeure and beyond the professional cap.
pub async fn compensate(
    app: &App,
    ctx: &Ctx,
    incident: &str,
    subscriber: SubscriberId,
    amount_excl: Cents,
    invoice: Option<InvoiceId>,
) -> Result<(Compensation, InvoiceRecord, Cap)> {
    ctx.require_operator(&[OperatorRole::Billing])?;
    if amount_excl.0 <= 0 {
        return Err(Error::invalid("amount_excl_cents", "must be positive"));
    }
    let mut tx = app.db().write().await?;
    let i = tx.incident_fetch(incident).await?;
    if i.force_majeure {
        return Err(Error::Conflict {
            field: Some("incident_id".into()),
            reason: "this incident is declared force majeure: no compensation accrues (R-8.2)"
                .into(),
        });
    }
    tx.subscriber_profile_fetch(&Scope::All, subscriber)
        .await
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber"))?;
    let cap = compute_cap(&mut tx, &i, subscriber).await?;
    let inv = match invoice {
        Some(id) => match tx.invoice_fetch(&Scope::All, id).await {
            Ok(inv) if inv.kind == "invoice" && inv.subscriber_id == subscriber => inv,
            Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
                return Err(Error::invalid(
                    "invoice_id",
                    "is not an invoice of this subscriber",
                ))
            }
            Err(e) => return Err(e.into()),
        },
        None => tx
            .invoice_list(
                &Scope::All,
                Some(subscriber),
                "invoice",
                None,
                &PageRequest::first(1),
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::invalid(
                    "subscriber_id",
                    "has no invoice to credit the compensation on",
                )
            })?,
    };
    let rate = inv
        .vat
        .as_array()
        .and_then(|a| a.iter().filter_map(|v| v["rate_bp"].as_i64()).max())
        .unwrap_or(0);
    let day = paris_date(app.now());
    let draft = Draft {
        lines: vec![compose::compensation_line(&i.title, amount_excl, rate, day)],
    };
    let incl = draft.total_incl();
    if let Some(rem) = cap.remaining {
        if incl.0 > rem.0 {
            return Err(Error::invalid(
                "amount_excl_cents",
                format!(
                    "exceeds the cap for this professional subscriber (R-8.1): {} VAT included may still be granted for this incident, the flat fees paid for the last two months ({}) less {} already granted",
                    rem,
                    cap.cap.unwrap_or_default(),
                    cap.granted
                ),
            ));
        }
    }
    let already = tx.invoice_credited(inv.id).await?.0;
    let doc = billing::credit_note_issue(
        app,
        &mut tx,
        ctx,
        &inv,
        &draft,
        &format!("compensation, incident {}", i.title),
        already,
    )
    .await?;
    let comp = Compensation {
        id: uuid::Uuid::now_v7().to_string(),
        incident_id: i.id.clone(),
        subscriber_id: subscriber,
        credit_note_id: doc.id,
        amount: incl,
        granted_by: ctx.principal.label(),
        created_at: app.now(),
    };
    tx.compensation_create(&comp).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "incident.compensate",
        Some(&i.id),
        Some(subscriber),
        json!({"amount_incl_cents": incl.0, "credit_note": doc.number}),
    )
    .await?;
    let cap = compute_cap(&mut tx, &i, subscriber).await?;
    tx.commit().await?;
    Ok((comp, doc, cap))
}
