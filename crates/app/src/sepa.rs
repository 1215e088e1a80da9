//! SEPA Core direct debit (billing issue, item 7): the subscriber signs a mandate online
//! (IBAN checked, electronic acceptance recorded); each new invoice of a subscriber with a mandate
//! schedules a collection and sends its pre-notification at least 14 days ahead; billing
//! operators export the due collections as a pain.008 batch (recording the payments) and import
//! the bank's rejects (pain.002), which reverse the payment and reopen the invoice.

use crate::error::Checker;
use crate::i18n::{tf, Lang};
use crate::{audit, notify, App, Ctx, Error, Result};
use jiff::civil::Date;
use maocloud_billing::sepa::{self as fmt, Creditor, Debit};
use maocloud_datastore::billing::{InvoiceRecord, Payment};
use maocloud_datastore::sepa::{Batch, Collection, Mandate};
use maocloud_datastore::{Scope, Tx};
use maocloud_types::{Cents, OperatorRole, PaymentId, SubscriberId};
use serde_json::json;

pub use maocloud_datastore::sepa::{
    Batch as SepaBatch, Collection as SepaCollection, Mandate as SepaMandate,
};

const ROLES: &[OperatorRole] = &[OperatorRole::Billing];

/// Signs a mandate for the caller, replacing any active one. `accepted` is the explicit
/// electronic acceptance of the mandate's text; it is recorded with time and address.
pub async fn mandate_create(
    app: &App,
    ctx: &Ctx,
    iban: &str,
    bic: Option<&str>,
    holder: &str,
    accepted: bool,
) -> Result<Mandate> {
    let me = ctx.require_subscriber()?;
    let mut c = Checker::default();
    let iban = c.check("iban", fmt::iban(iban));
    let bic = match bic.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b)
            if (b.len() == 8 || b.len() == 11)
                && b.chars().all(|ch| ch.is_ascii_alphanumeric()) =>
        {
            Some(b.to_uppercase())
        }
        Some(_) => {
            c.fail("bic", "is not a BIC (8 or 11 letters and digits)");
            None
        }
        None => None,
    };
    let holder = c.check("holder", maocloud_types::validate::text(holder, 70));
    if !accepted {
        c.fail("accept", "you must accept the mandate to sign it");
    }
    c.finish()?;
    let now = app.now_for(me.0).await?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let m = Mandate {
        reference: format!("MAO-{}", &id[id.len() - 16..].to_uppercase()),
        id,
        subscriber_id: me,
        iban: iban.unwrap_or_default(),
        bic,
        holder: holder.unwrap_or_default(),
        signed_on: maocloud_billing::paris_date(now).to_string(),
        accepted_at: now,
        acceptance: format!("online, ip={}", ctx.ip),
        status: "active".into(),
        created_at: app.now(),
    };
    let mut tx = app.db().write().await?;
    tx.mandate_revoke(&ctx.scope(), me, None, app.now()).await?;
    tx.mandate_create(&m).await?;
    let account = tx.account_fetch(me.0).await?;
    let body = tf(
        Lang::parse(&account.locale),
        "email.mandate.body",
        &[
            ("name", &account.display_name),
            ("reference", &m.reference),
            ("iban", &fmt::iban_masked(&m.iban)),
        ],
    );
    notify::send(app, &mut tx, &account, "email.mandate.subject", &body).await?;
    tx.commit().await?;
    Ok(m)
}

pub async fn mandate_list(app: &App, ctx: &Ctx, subscriber: SubscriberId) -> Result<Vec<Mandate>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let mut tx = app.db().read().await?;
    Ok(tx.mandate_list(&ctx.scope(), subscriber).await?)
}

/// Revokes one of the caller's mandates; collections not yet exported are no longer made.
pub async fn mandate_revoke(app: &App, ctx: &Ctx, id: &str) -> Result<()> {
    let me = ctx.require_subscriber()?;
    let mut tx = app.db().write().await?;
    let m = tx.mandate_fetch(&ctx.scope(), id).await?;
    if tx
        .mandate_revoke(&ctx.scope(), me, Some(&m.id), app.now())
        .await?
        == 0
    {
        return Err(Error::Conflict {
            field: None,
            reason: "this mandate is already revoked".into(),
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Called when an invoice is issued: with an active mandate, schedules its collection no sooner
/// than the due date and the pre-notification delay, and sends the pre-notification now.
pub(crate) async fn schedule_for_invoice(
    app: &App,
    tx: &mut Tx,
    inv: &InvoiceRecord,
) -> Result<()> {
    if inv.kind != "invoice" || inv.total_incl.0 <= 0 {
        return Ok(());
    }
    let Some(m) = tx.mandate_active(inv.subscriber_id).await? else {
        return Ok(());
    };
    let issue: Date = inv.issue_date.parse().map_err(Error::internal)?;
    let earliest = issue
        .checked_add(jiff::Span::new().days(app.settings().sepa_prenotification_days.max(14)))
        .map_err(Error::internal)?;
    let due: Date = inv
        .due_date
        .as_deref()
        .unwrap_or(&inv.issue_date)
        .parse()
        .map_err(Error::internal)?;
    let date = due.max(earliest);
    let sequence = if tx.mandate_used(&m.id).await? {
        "RCUR"
    } else {
        "FRST"
    };
    let c = Collection {
        id: uuid::Uuid::now_v7().to_string(),
        mandate_id: m.id.clone(),
        subscriber_id: inv.subscriber_id,
        invoice_id: inv.id,
        amount: inv.total_incl,
        collection_date: date.to_string(),
        end_to_end_id: inv.number.clone(),
        sequence: sequence.into(),
        status: "scheduled".into(),
        payment_id: None,
    };
    tx.collection_create(&c, app.now()).await?;
    let account = tx.account_fetch(inv.subscriber_id.0).await?;
    let body = tf(
        Lang::parse(&account.locale),
        "email.prenotification.body",
        &[
            ("name", &account.display_name),
            ("amount", &inv.total_incl.to_string()),
            ("date", &c.collection_date),
            ("number", &inv.number),
            ("iban", &fmt::iban_masked(&m.iban)),
            ("reference", &m.reference),
        ],
    );
    notify::send(app, tx, &account, "email.prenotification.subject", &body).await
}

/// A subscriber's collections, newest first.
pub async fn collection_list(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
) -> Result<Vec<Collection>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let mut tx = app.db().read().await?;
    Ok(tx.collection_list(&ctx.scope(), subscriber).await?)
}

/// Exports the collections due by `through` as one pain.008 batch, recording each as a payment
/// of its invoice (a later reject reverses it). `None` when nothing is due.
pub async fn batch_export(app: &App, ctx: &Ctx, through: Date) -> Result<Option<Batch>> {
    ctx.require_operator(ROLES)?;
    let seller = &app.settings().seller;
    let creditor = Creditor {
        name: seller.name.clone(),
        iban: seller.iban.clone(),
        bic: seller.bic.clone(),
        creditor_id: seller.sepa_creditor_id.clone(),
    };
    let now = app.now();
    let mut tx = app.db().write().await?;
    let due = tx.collection_due(&through.to_string()).await?;
    if due.is_empty() {
        return Ok(None);
    }
    let batch_id = uuid::Uuid::now_v7().to_string();
    let mut debits = vec![];
    let mut to_mark = vec![];
    for c in &due {
        let m = tx.mandate_fetch(&Scope::All, &c.mandate_id).await?;
        let inv = tx.invoice_fetch(&Scope::All, c.invoice_id).await?;
        let remaining = tx
            .invoice_outstanding(&Scope::All, c.subscriber_id)
            .await?
            .into_iter()
            .find(|o| o.invoice_id == c.invoice_id)
            .map(|o| o.remaining())
            .unwrap_or(Cents::ZERO);
        if m.status != "active" || remaining.0 <= 0 {
            // Revoked mandate or invoice already paid otherwise: nothing to collect.
            to_mark.push((c.id.clone(), None));
            continue;
        }
        let amount = Cents(remaining.0.min(c.amount.0));
        let payment = Payment {
            id: PaymentId::new(),
            subscriber_id: c.subscriber_id,
            amount,
            method: "sepa_direct_debit".into(),
            reference: format!("{} {}", m.reference, c.end_to_end_id),
            received_on: c.collection_date.clone(),
            recorded_by: ctx.principal.label(),
            created_at: now,
        };
        tx.payment_create(&payment).await?;
        tx.payment_allocate(payment.id, c.invoice_id, amount)
            .await?;
        to_mark.push((c.id.clone(), Some(payment.id)));
        debits.push(Debit {
            end_to_end_id: c.end_to_end_id.clone(),
            amount,
            mandate_reference: m.reference.clone(),
            mandate_signed_on: m.signed_on.clone(),
            debtor_name: m.holder.clone(),
            debtor_iban: m.iban.clone(),
            debtor_bic: m.bic.clone(),
            sequence: c.sequence.clone(),
            collection_date: c.collection_date.clone(),
            remittance: format!("Facture {}", inv.number),
        });
    }
    let message_id = format!("MAO-{}", &batch_id.replace('-', "")[..20]);
    let created = now.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let xml = fmt::pain008(&message_id, &created, &creditor, &debits);
    let batch = Batch {
        id: batch_id,
        message_id,
        created_at: now,
        transactions: debits.len() as i64,
        total: Cents(debits.iter().map(|d| d.amount.0).sum()),
        xml,
    };
    tx.batch_create(&batch).await?;
    for (id, payment) in to_mark {
        tx.collection_mark_exported(&id, &batch.id, payment).await?;
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "sepa.batch_export",
        Some(&batch.id),
        None,
        json!({"transactions": batch.transactions, "total_cents": batch.total.0}),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(batch))
}

pub async fn batch_list(app: &App, ctx: &Ctx) -> Result<Vec<Batch>> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.batch_list().await?)
}

pub async fn batch_get(app: &App, ctx: &Ctx, id: &str) -> Result<Batch> {
    ctx.require_operator(ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.batch_fetch(id).await?)
}

/// What importing a status report did.
#[derive(Debug, Clone, Default)]
pub struct ReturnsReport {
    pub rejected: Vec<String>,
    pub unknown: Vec<String>,
}

/// Imports a pain.002 status report: each rejected collection reverses its payment, so the
/// invoice is open again, and the subscriber is told.
pub async fn returns_import(app: &App, ctx: &Ctx, pain002: &str) -> Result<ReturnsReport> {
    ctx.require_operator(ROLES)?;
    if !pain002.contains("pain.002") && !pain002.contains("CstmrPmtStsRpt") {
        return Err(Error::invalid(
            "xml",
            "is not a pain.002 payment status report",
        ));
    }
    let mut report = ReturnsReport::default();
    let now = app.now();
    let mut tx = app.db().write().await?;
    for (e2e, reason) in fmt::rejects(pain002) {
        let c = match tx.collection_by_end_to_end(&e2e).await {
            Ok(c) => c,
            Err(maocloud_datastore::Error::NotFound) => {
                report.unknown.push(e2e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !tx.collection_mark_rejected(&c.id, &reason).await? {
            continue;
        }
        if let Some(p) = c.payment_id {
            tx.payment_reverse(p, &format!("SEPA reject {reason}"), now)
                .await
                .ok();
        }
        let account = tx.account_fetch(c.subscriber_id.0).await?;
        let body = tf(
            Lang::parse(&account.locale),
            "email.debit_rejected.body",
            &[
                ("name", &account.display_name),
                ("number", &c.end_to_end_id),
                ("amount", &c.amount.to_string()),
                ("reason", &reason),
            ],
        );
        notify::send(
            app,
            &mut tx,
            &account,
            "email.debit_rejected.subject",
            &body,
        )
        .await?;
        report.rejected.push(e2e);
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "sepa.returns_import",
        None,
        None,
        json!({"rejected": report.rejected, "unknown": report.unknown}),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}
