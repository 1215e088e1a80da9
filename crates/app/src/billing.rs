//! Billing use cases: the price list, subscribing and changing offer,
//! the monthly invoice run — flat fees in advance, usage beyond the inclusion in arrears
//! (R-6.1a, R-6.1b) — with gapless numbers and immutable documents (R-6.1e), credit notes,
//! delivery and access (R-6.1c, R-6.1d, R-6.2), payments and the account balance.
//!
//! The arithmetic lives in `maocloud_billing`; here are the rules about who may do what, and
//! the transactions that make each step whole or absent.

use crate::error::Checker;
use crate::i18n::{t, tf, Lang};
use crate::{audit, notify, App, Ctx, Error, Result};
use jiff::civil::Date;
use maocloud_billing::calendar::{month_end, month_start, next_month, paris_date, Period};
use maocloud_billing::invoice::{self as compose, Draft, Item, Usage};
use maocloud_billing::{Inclusions, OfferTerms};
use maocloud_datastore::billing::OfferChange;
pub use maocloud_datastore::billing::{
    InvoiceRecord, Offer, Outstanding, Payment, PrintItem, Subscription,
};
use maocloud_datastore::{Scope, Tx};
use maocloud_types::{
    Cents, InvoiceId, OfferId, OperatorRole, PaymentId, Principal, SubscriberId, SubscriptionId,
};
use serde_json::json;

const BILLING_ROLES: &[OperatorRole] = &[OperatorRole::Billing];

pub(crate) fn terms_of(v: &serde_json::Value) -> Result<OfferTerms> {
    serde_json::from_value(v.clone())
        .map_err(|e| Error::internal(format!("stored offer terms unreadable: {e}")))
}

fn date(s: &str) -> Result<Date> {
    s.parse()
        .map_err(|e| Error::internal(format!("stored date unreadable: {s}: {e}")))
}

/// What an operator gives to create an offer.
#[derive(Debug, Clone)]
pub struct OfferInput {
    pub code: String,
    pub description: String,
    pub terms: OfferTerms,
    pub multiple_allowed: bool,
}

/// Creates an offer of the price list (admin or billing role).
pub async fn offer_create(app: &App, ctx: &Ctx, input: OfferInput) -> Result<Offer> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut c = Checker::default();
    let code = input.code.trim().to_lowercase();
    if code.is_empty()
        || code.len() > 40
        || !code
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    {
        c.fail("code", "must be 1 to 40 letters, digits or dashes");
    }
    c.check(
        "description",
        maocloud_types::validate::text(&input.description, 2000),
    );
    if let Err(e) = input.terms.validate() {
        c.fail(e.field, e.reason);
    }
    c.finish()?;
    let offer = Offer {
        id: OfferId::new(),
        code,
        description: input.description.trim().to_string(),
        terms: serde_json::to_value(&input.terms).map_err(Error::internal)?,
        multiple_allowed: input.multiple_allowed,
        status: "active".into(),
        created_at: app.now(),
        retired_at: None,
    };
    let mut tx = app.db().write().await?;
    match tx.offer_create(&offer).await {
        Err(maocloud_datastore::Error::Conflict(_)) => {
            return Err(Error::Conflict {
                field: Some("code".into()),
                reason: "an offer with this code already exists".into(),
            })
        }
        other => other?,
    }
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "offer.create",
        Some(&offer.id.to_string()),
        None,
        json!({"code": offer.code}),
    )
    .await?;
    tx.commit().await?;
    Ok(offer)
}

/// Withdraws an offer from the price list; running subscriptions keep their terms.
pub async fn offer_retire(app: &App, ctx: &Ctx, id: OfferId) -> Result<()> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut tx = app.db().write().await?;
    tx.offer_retire(id, app.now()).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "offer.retire",
        Some(&id.to_string()),
        None,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The public price list: the offers open to subscription. Operators may ask for the
/// retired ones too.
pub async fn offer_list(app: &App, include_retired: bool) -> Result<Vec<(Offer, OfferTerms)>> {
    let mut tx = app.db().read().await?;
    let offers = tx.offer_list(include_retired).await?;
    offers
        .into_iter()
        .map(|o| Ok((terms_of(&o.terms)?, o)).map(|(t, o)| (o, t)))
        .collect()
}

/// What the subscriber's current resources use, for the fit check: their VMs (not
/// deleted) today; object storage and public IPs plug in here when they exist.
pub async fn resources_in_use(app: &App, subscriber: SubscriberId) -> Result<Inclusions> {
    let mut tx = app.db().read().await?;
    let l = crate::compute::used(&tx.vms_of(subscriber).await?);
    Ok(Inclusions {
        vcpus: l.vcpus,
        ram_mib: l.memory_mib,
        disk_gib: l.disk_gib,
        vms: l.vms,
        ..Inclusions::default()
    })
}

/// The subscriber's quotas: the sum of the inclusions of their active subscriptions.
pub async fn quotas(app: &App, ctx: &Ctx, subscriber: SubscriberId) -> Result<Inclusions> {
    let mut tx = app.db().read().await?;
    included(&tx.subscription_list(&ctx.scope(), subscriber).await?)
}

/// The sum of the inclusions of the active subscriptions among `subs` (compute's quotas too).
pub(crate) fn included(subs: &[Subscription]) -> Result<Inclusions> {
    let mut q = Inclusions::default();
    for s in subs.iter().filter(|s| s.status == "active") {
        let i = terms_of(&s.terms)?.includes;
        q.vcpus += i.vcpus;
        q.ram_mib += i.ram_mib;
        q.disk_gib += i.disk_gib;
        q.vms += i.vms;
        q.storage_gb += i.storage_gb;
        q.egress_gb += i.egress_gb;
        q.public_ips += i.public_ips;
    }
    Ok(q)
}

/// A subscription with its terms read.
pub struct SubscriptionView {
    pub sub: Subscription,
    pub terms: OfferTerms,
}

fn view(sub: Subscription) -> Result<SubscriptionView> {
    Ok(SubscriptionView {
        terms: terms_of(&sub.terms)?,
        sub,
    })
}

/// the signed-in subscriber subscribes to an active offer. The first period, from today
/// to the end of the month, is invoiced at once, pro rata by the day, in advance (R-6.1a).
pub async fn subscribe(
    app: &App,
    ctx: &Ctx,
    offer_id: OfferId,
) -> Result<(SubscriptionView, Option<InvoiceRecord>)> {
    let me = ctx.require_subscriber()?;
    let now = app.now_for(me.0).await?;
    let today = paris_date(now);
    let mut tx = app.db().write().await?;
    crate::suspension::ensure_active(&mut tx, me).await?;
    let offer = match tx.offer_fetch(offer_id).await {
        Ok(o) if o.status == "active" => o,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
            return Err(Error::invalid(
                "offer_id",
                "is not an offer of the current price list",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let terms = terms_of(&offer.terms)?;
    let existing = tx.subscription_list(&ctx.scope(), me).await?;
    if !offer.multiple_allowed
        && existing
            .iter()
            .any(|s| s.status == "active" && s.offer_id == offer.id)
    {
        return Err(Error::Conflict {
            field: Some("offer_id".into()),
            reason: "you already subscribe to this offer, which allows only one subscription"
                .into(),
        });
    }
    let commitment_end = (terms.commitment_months > 0).then(|| {
        today
            .checked_add(jiff::Span::new().months(terms.commitment_months))
            .and_then(|d| d.yesterday())
            .expect("dates stay in range")
            .to_string()
    });
    let sub = Subscription {
        id: SubscriptionId::new(),
        subscriber_id: me,
        offer_id: offer.id,
        terms: offer.terms.clone(),
        status: "active".into(),
        start_date: today.to_string(),
        commitment_end,
        billed_until: today.yesterday().expect("in range").to_string(),
        created_at: now,
        ended_at: None,
    };
    tx.subscription_create(&sub).await?;
    let invoice = issue_for_subscription(app, &mut tx, &sub, today).await?;
    tx.commit().await?;
    let fresh = view(sub)?;
    Ok((
        SubscriptionView {
            sub: Subscription {
                billed_until: month_end(today).to_string(),
                ..fresh.sub
            },
            terms: fresh.terms,
        },
        invoice,
    ))
}

pub async fn subscription_list(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
) -> Result<Vec<SubscriptionView>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(&[OperatorRole::Billing, OperatorRole::Support])?;
    }
    let mut tx = app.db().read().await?;
    tx.subscription_list(&ctx.scope(), subscriber)
        .await?
        .into_iter()
        .map(view)
        .collect()
}

pub async fn subscription_get(
    app: &App,
    ctx: &Ctx,
    id: SubscriptionId,
) -> Result<SubscriptionView> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(&[OperatorRole::Billing, OperatorRole::Support])?;
    }
    let mut tx = app.db().read().await?;
    view(tx.subscription_fetch(&ctx.scope(), id).await?)
}

/// moves a subscription to another offer from today, at no fee. Refused with the reason,
/// changing nothing, when the current resources do not fit the new offer. The new price applies
/// from today pro rata (settled on the next invoice); the commitment end date does not move.
pub async fn change_offer(
    app: &App,
    ctx: &Ctx,
    id: SubscriptionId,
    to: OfferId,
) -> Result<SubscriptionView> {
    let me = ctx.require_subscriber()?;
    let now = app.now_for(me.0).await?;
    let today = paris_date(now);
    let in_use = resources_in_use(app, me).await?;
    let mut tx = app.db().write().await?;
    let sub = tx.subscription_fetch(&ctx.scope(), id).await?;
    if sub.status != "active" {
        return Err(Error::Conflict {
            field: None,
            reason: "this subscription has ended".into(),
        });
    }
    crate::suspension::ensure_active(&mut tx, me).await?;
    let offer = match tx.offer_fetch(to).await {
        Ok(o) if o.status == "active" => o,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
            return Err(Error::invalid(
                "offer_id",
                "is not an offer of the current price list",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if offer.id == sub.offer_id {
        return Err(Error::invalid(
            "offer_id",
            "is already the offer of this subscription",
        ));
    }
    let new_terms = terms_of(&offer.terms)?;
    if let Err(what) = new_terms.fits(&in_use) {
        return Err(Error::Conflict {
            field: Some("offer_id".into()),
            reason: format!("your current resources do not fit this offer ({what})"),
        });
    }
    // only if the infrastructure has the capacity for what the new offer adds.
    let (old, new) = (terms_of(&sub.terms)?.includes, new_terms.includes);
    let more = (
        (new.vcpus - old.vcpus).max(0),
        (new.ram_mib - old.ram_mib).max(0),
        (new.disk_gib - old.disk_gib).max(0),
    );
    if more != (0, 0, 0) && !crate::compute::platform_has_room(app, &mut tx, more).await? {
        return Err(Error::Conflict {
            field: Some("offer_id".into()),
            reason: "the platform does not have the capacity for this offer right now; nothing was changed, try again later or contact support".into(),
        });
    }
    let change = OfferChange {
        id: uuid::Uuid::now_v7().to_string(),
        subscription_id: sub.id,
        from_terms: sub.terms.clone(),
        to_terms: offer.terms.clone(),
        effective_date: today.to_string(),
    };
    tx.offer_change_create(&change, me, sub.offer_id, offer.id, now)
        .await?;
    tx.subscription_change_offer(sub.id, offer.id, &offer.terms)
        .await?;
    let account = tx.account_fetch(me.0).await?;
    let lang = Lang::parse(&account.locale);
    let body = tf(
        lang,
        "email.offer_changed.body",
        &[
            ("name", &account.display_name),
            ("offer", &new_terms.name),
            ("date", &today.to_string()),
        ],
    );
    notify::send(app, &mut tx, &account, "email.offer_changed.subject", &body).await?;
    tx.commit().await?;
    view(Subscription {
        offer_id: offer.id,
        terms: offer.terms,
        ..sub
    })
}

/// The wording of a line, in French (the invoice's language, fixed at issue).
fn describe(item: &Item) -> String {
    let l = Lang::Fr;
    match item {
        Item::Subscription { offer } => tf(l, "invoice.line.subscription", &[("offer", offer)]),
        Item::StorageOverage => t(l, "invoice.line.storage"),
        Item::EgressOverage => t(l, "invoice.line.egress"),
        Item::PublicIpOverage => t(l, "invoice.line.public_ip"),
        Item::ChangeCredit { offer } => tf(l, "invoice.line.change_credit", &[("offer", offer)]),
        Item::ChangeCharge { offer } => tf(l, "invoice.line.change_charge", &[("offer", offer)]),
        Item::TerminationCredit { offer } => {
            tf(l, "invoice.line.termination_credit", &[("offer", offer)])
        }
        Item::CommitmentDue { offer } => tf(l, "invoice.line.commitment_due", &[("offer", offer)]),
        Item::Compensation { incident } => {
            tf(l, "invoice.line.compensation", &[("incident", incident)])
        }
    }
}

/// A line as an issued document keeps it (JSON in `invoices.lines`): the draft line and the
/// wording it was issued with. The one place that writes and reads that form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredLine {
    pub kind: compose::LineKind,
    pub item: Item,
    pub description: String,
    pub period_start: String,
    pub period_end: String,
    pub quantity_milli: i64,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
    pub vat_rate_bp: i64,
}

/// One VAT rate's totals as an issued document keeps them (`invoices.vat`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredVat {
    pub rate_bp: i64,
    pub base_cents: i64,
    pub vat_cents: i64,
}

impl StoredLine {
    /// The draft line again (a full credit note repeats an invoice's lines).
    pub fn draft(&self) -> Result<compose::DraftLine> {
        Ok(compose::DraftLine {
            kind: self.kind,
            item: self.item.clone(),
            period: (date(&self.period_start)?, date(&self.period_end)?),
            quantity_milli: self.quantity_milli,
            unit_price: Cents(self.unit_price_cents),
            amount: Cents(self.amount_cents),
            vat_rate_bp: self.vat_rate_bp,
        })
    }
}

/// The lines of an issued document.
pub fn stored_lines(doc: &InvoiceRecord) -> Result<Vec<StoredLine>> {
    serde_json::from_value(doc.lines.clone()).map_err(Error::internal)
}

/// An issued document's lines and VAT breakdown for display: what this platform stored when
/// it issued it, unreadable only through a bug (then logged, and shown empty).
pub fn stored_parts(doc: &InvoiceRecord) -> (Vec<StoredLine>, Vec<StoredVat>) {
    match (stored_lines(doc), stored_vat(doc)) {
        (Ok(l), Ok(v)) => (l, v),
        (l, v) => {
            tracing::error!(invoice = %doc.id, lines = ?l.err(), vat = ?v.err(), "an issued document is unreadable");
            (vec![], vec![])
        }
    }
}

/// The VAT breakdown of an issued document.
pub fn stored_vat(doc: &InvoiceRecord) -> Result<Vec<StoredVat>> {
    serde_json::from_value(doc.vat.clone()).map_err(Error::internal)
}

fn lines_json(d: &Draft) -> Result<serde_json::Value> {
    let lines: Vec<StoredLine> = d
        .lines
        .iter()
        .map(|l| StoredLine {
            kind: l.kind,
            item: l.item.clone(),
            description: describe(&l.item),
            period_start: l.period.0.to_string(),
            period_end: l.period.1.to_string(),
            quantity_milli: l.quantity_milli,
            unit_price_cents: l.unit_price.0,
            amount_cents: l.amount.0,
            vat_rate_bp: l.vat_rate_bp,
        })
        .collect();
    serde_json::to_value(lines).map_err(Error::internal)
}

fn vat_json(d: &Draft) -> Result<serde_json::Value> {
    let vat: Vec<StoredVat> = d
        .vat_breakdown()
        .iter()
        .map(|v| StoredVat {
            rate_bp: v.rate_bp,
            base_cents: v.base.0,
            vat_cents: v.vat.0,
        })
        .collect();
    serde_json::to_value(vat).map_err(Error::internal)
}

/// The buyer as printed on a document, and their account (for the notice).
/// The buyer as a document records it, their account and their delivery choice.
async fn buyer_json(
    tx: &mut Tx,
    subscriber: SubscriberId,
) -> Result<(serde_json::Value, maocloud_datastore::Account, String)> {
    let (a, p, delivery) = tx.billing_party(subscriber).await?;
    Ok((
        json!({
            "id": subscriber.to_string(),
            "customer_kind": p.customer_kind,
            "name": p.full_name,
            "company_name": p.company_name,
            "company_id": p.company_id,
            "vat_number": p.vat_number,
            "address_line1": p.address_line1,
            "address_line2": p.address_line2,
            "postal_code": p.postal_code,
            "city": p.city,
            "country": p.country,
            "email": a.email,
        }),
        a,
        delivery,
    ))
}

/// Issues one document in `tx`: numbered from its series in the same transaction (gapless),
/// with the buyer's and seller's details of the day, then delivered (email and inbox, or the
/// print queue for paper delivery).
#[allow(clippy::too_many_arguments)]
async fn issue(
    app: &App,
    tx: &mut Tx,
    kind: &str,
    subscriber: SubscriberId,
    subscription: Option<SubscriptionId>,
    billing_key: Option<String>,
    credited: Option<InvoiceId>,
    draft: &Draft,
    issue_date: Date,
    note: Option<String>,
) -> Result<InvoiceRecord> {
    let (prefix, due) = match kind {
        "invoice" => (
            "F",
            Some(
                issue_date
                    .checked_add(jiff::Span::new().days(app.settings().invoice_due_days))
                    .expect("in range")
                    .to_string(),
            ),
        ),
        _ => ("A", None),
    };
    let series = format!("{prefix}{}", issue_date.year());
    let seq = tx.sequence_next(&series).await?;
    let (buyer, account, delivery) = buyer_json(tx, subscriber).await?;
    let record = InvoiceRecord {
        id: InvoiceId::new(),
        kind: kind.into(),
        number: compose::number(prefix, issue_date.year(), seq),
        subscriber_id: subscriber,
        subscription_id: subscription,
        billing_key,
        credited_invoice_id: credited,
        issue_date: issue_date.to_string(),
        due_date: due,
        seller: serde_json::to_value(&app.settings().seller).map_err(Error::internal)?,
        buyer,
        lines: lines_json(draft)?,
        vat: vat_json(draft)?,
        total_excl: draft.total_excl(),
        total_vat: draft.total_vat(),
        total_incl: draft.total_incl(),
        note,
        created_at: app.now(),
    };
    tx.invoice_create(&record).await?;
    let lang = Lang::parse(&account.locale);
    let (subject, body_key) = match kind {
        "invoice" => ("email.invoice.subject", "email.invoice.body"),
        _ => ("email.credit_note.subject", "email.credit_note.body"),
    };
    let link = format!(
        "{}/account/invoices/{}",
        app.settings().public_url.trim_end_matches('/'),
        record.id
    );
    let body = tf(
        lang,
        body_key,
        &[
            ("name", &account.display_name),
            ("number", &record.number),
            ("amount", &record.total_incl.to_string()),
            ("due", record.due_date.as_deref().unwrap_or("-")),
            ("link", &link),
        ],
    );
    notify::send(app, tx, &account, subject, &body).await?;
    crate::sepa::schedule_for_invoice(app, tx, &record).await?;
    if delivery == "paper" {
        tx.print_queue_add(record.id, subscriber, app.now()).await?;
    }
    Ok(record)
}

async fn usage_of(tx: &mut Tx, subscriber: SubscriberId, month: Period) -> Result<Usage> {
    let mut u = Usage::default();
    for (metric, total) in tx
        .usage_totals(subscriber, &month.start.to_string(), &month.end.to_string())
        .await?
    {
        match metric.as_str() {
            "storage_byte_hours" => u.storage_byte_hours = i128::from(total),
            "egress_bytes" => u.egress_bytes = i128::from(total),
            "public_ip_hours" => u.public_ip_hours = i128::from(total),
            _ => {}
        }
    }
    Ok(u)
}

/// Bills one subscription up to the end of the month of `on`: advance fees for each month not
/// yet billed, arrears for each month whose usage is not yet billed, adjustments for offer
/// changes inside periods already billed. Returns `None` when there is nothing to bill.
async fn issue_for_subscription(
    app: &App,
    tx: &mut Tx,
    sub: &Subscription,
    on: Date,
) -> Result<Option<InvoiceRecord>> {
    let billed_until = date(&sub.billed_until)?;
    let target = month_end(on);
    if billed_until >= target {
        return Ok(None);
    }
    let terms = terms_of(&sub.terms)?;
    let start = date(&sub.start_date)?;
    let mut draft = Draft::default();
    // Offer changes inside the periods already charged in advance.
    let changes = tx
        .offer_change_open(sub.id, &on.tomorrow().expect("in range").to_string())
        .await?;
    for c in &changes {
        let eff = date(&c.effective_date)?;
        if eff <= billed_until {
            let period = Period {
                start: eff,
                end: month_end(eff),
            };
            draft.lines.extend(compose::change_lines(
                &terms_of(&c.from_terms)?,
                &terms_of(&c.to_terms)?,
                period,
            ));
        }
    }
    // Usage of the months already charged in advance and now ended, in arrears (R-6.1b).
    if billed_until >= start {
        let mut m = month_start(billed_until.max(start));
        while m < month_start(on) {
            let month = Period {
                start: m.max(start),
                end: month_end(m),
            };
            draft.lines.extend(compose::arrears_lines(
                &terms,
                &usage_of(tx, sub.subscriber_id, month).await?,
                month,
            ));
            m = next_month(m);
        }
    }
    // Flat fees in advance, pro rata for a partial first month (R-6.1a).
    let mut d = billed_until.tomorrow().expect("in range").max(start);
    while d <= target {
        let period = Period {
            start: d,
            end: month_end(d),
        };
        draft.lines.push(compose::advance_line(&terms, period));
        d = next_month(d);
    }
    let key = format!("{}:{}", sub.id, &target.to_string()[..7]);
    let invoice = if draft.lines.iter().any(|l| l.amount.0 != 0) {
        match issue(
            app,
            tx,
            "invoice",
            sub.subscriber_id,
            Some(sub.id),
            Some(key),
            None,
            &draft,
            on,
            None,
        )
        .await
        {
            // Already billed by a concurrent run: the caller rolls back and skips it.
            Err(Error::Conflict { .. }) => {
                return Err(Error::Conflict {
                    field: None,
                    reason: "billed concurrently".into(),
                })
            }
            other => Some(other?),
        }
    } else {
        None
    };
    if !tx
        .subscription_advance_billing(sub.id, &sub.billed_until, &target.to_string())
        .await?
    {
        return Err(Error::Conflict {
            field: None,
            reason: "billed concurrently".into(),
        });
    }
    for c in &changes {
        if let Some(inv) = &invoice {
            tx.offer_change_settle(&c.id, inv.id).await?;
        }
    }
    Ok(invoice)
}

/// R-7.3c, R-7.2c: the final invoice of a subscription that ends on `end`: offer-change
/// adjustments still open, usage up to the end date in arrears, the flat fee prepaid for days
/// after it credited, and — unless `dues_waived` — the monthly fees left up to the end of the
/// commitment. Issued on `on`. `None` when every line is zero.
pub(crate) async fn issue_final(
    app: &App,
    tx: &mut Tx,
    sub: &Subscription,
    end: Date,
    dues_waived: bool,
    on: Date,
) -> Result<Option<InvoiceRecord>> {
    let billed_until = date(&sub.billed_until)?;
    let terms = terms_of(&sub.terms)?;
    let start = date(&sub.start_date)?;
    let mut draft = Draft::default();
    let changes = tx
        .offer_change_open(sub.id, &on.tomorrow().expect("in range").to_string())
        .await?;
    for c in &changes {
        let eff = date(&c.effective_date)?;
        if eff <= billed_until {
            let period = Period {
                start: eff,
                end: month_end(eff),
            };
            draft.lines.extend(compose::change_lines(
                &terms_of(&c.from_terms)?,
                &terms_of(&c.to_terms)?,
                period,
            ));
        }
    }
    // Usage not yet billed: the months from the one of `billed_until` up to the end date.
    let mut m = month_start(billed_until.max(start));
    while m <= end {
        let month = Period {
            start: m.max(start),
            end: month_end(m).min(end),
        };
        draft.lines.extend(compose::arrears_lines(
            &terms,
            &usage_of(tx, sub.subscriber_id, month).await?,
            month,
        ));
        m = next_month(m);
    }
    let after_end = end.tomorrow().expect("in range");
    if billed_until >= after_end {
        draft.lines.extend(compose::termination_credit_lines(
            &terms,
            Period {
                start: after_end.max(start),
                end: billed_until,
            },
        ));
    }
    if !dues_waived {
        if let Some(commitment_end) = sub.commitment_end.as_deref().map(date).transpose()? {
            if commitment_end >= after_end {
                draft.lines.extend(compose::commitment_lines(
                    &terms,
                    Period {
                        start: after_end.max(start),
                        end: commitment_end,
                    },
                ));
            }
        }
    }
    if !draft.lines.iter().any(|l| l.amount.0 != 0) {
        return Ok(None);
    }
    let key = format!("{}:final", sub.id);
    let invoice = issue(
        app,
        tx,
        "invoice",
        sub.subscriber_id,
        Some(sub.id),
        Some(key),
        None,
        &draft,
        on,
        None,
    )
    .await?;
    for c in &changes {
        tx.offer_change_settle(&c.id, invoice.id).await?;
    }
    Ok(Some(invoice))
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub invoices_issued: u64,
    pub subscriptions_billed: u64,
    pub skipped: u64,
}

/// The monthly run (R-6.1a): bills every active subscription up to the end of the month of
/// `on` (a Paris date, normally the 1st). Each subscription is billed in its own transaction, so
/// a crash leaves every invoice whole; running again bills what is left and nothing twice.
pub async fn invoice_run(app: &App, ctx: &Ctx, on: Date) -> Result<RunReport> {
    ctx.require_operator(BILLING_ROLES)?;
    run_subscriptions(app, ctx, on, None).await
}

/// Subscriptions billed per transaction by a run: each transaction holds whole invoices with
/// their numbers, so a crash loses none half-made, and committing in chunks keeps a run of
/// 100,000 subscriptions from paying 100,000 commits.
const RUN_CHUNK: usize = 100;

/// Bills `subs` in one transaction; returns (invoices issued, subscriptions billed).
async fn bill_chunk(app: &App, subs: &[Subscription], on: Date) -> Result<(u64, u64)> {
    let mut tx = app.db().write().await?;
    let (mut issued, mut billed) = (0, 0);
    for sub in subs {
        // Re-read inside the write transaction: another run may have billed it meanwhile.
        let fresh = tx.subscription_fetch(&Scope::All, sub.id).await?;
        if issue_for_subscription(app, &mut tx, &fresh, on)
            .await?
            .is_some()
        {
            issued += 1;
        }
        billed += 1;
    }
    tx.commit().await?;
    Ok((issued, billed))
}

/// The run over the live subscribers (`test_clock` = None) or the sandbox subscribers of one
/// test clock.
pub(crate) async fn run_subscriptions(
    app: &App,
    ctx: &Ctx,
    on: Date,
    test_clock: Option<&str>,
) -> Result<RunReport> {
    let through = month_end(on).to_string();
    let mut report = RunReport::default();
    let mut after = None;
    loop {
        let batch = {
            app.db()
                .read()
                .await?
                .subscription_due(&through, after, 500, test_clock)
                .await?
        };
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        for chunk in batch.chunks(RUN_CHUNK) {
            match bill_chunk(app, chunk, on).await {
                Ok((issued, billed)) => {
                    report.invoices_issued += issued;
                    report.subscriptions_billed += billed;
                }
                // Another run billed one of these meanwhile: redo them one by one.
                Err(Error::Conflict { .. }) => {
                    for sub in chunk {
                        match bill_chunk(app, std::slice::from_ref(sub), on).await {
                            Ok((issued, billed)) => {
                                report.invoices_issued += issued;
                                report.subscriptions_billed += billed;
                            }
                            Err(Error::Conflict { .. }) => report.skipped += 1,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    if !matches!(ctx.principal, Principal::System) {
        let mut tx = app.db().write().await?;
        audit::record(
            &mut tx,
            ctx,
            app.now(),
            "invoice_run",
            None,
            None,
            json!({"on": on.to_string(), "issued": report.invoices_issued}),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// Records usage for billing (compute and storage call this; the tests too).
pub async fn usage_record(
    app: &App,
    subscriber: SubscriberId,
    metric: &str,
    quantity: i64,
    day: Date,
    source: &str,
) -> Result<()> {
    if !matches!(
        metric,
        "storage_byte_hours" | "egress_bytes" | "public_ip_hours"
    ) {
        return Err(Error::invalid("metric", "is not a billed metric"));
    }
    if quantity < 0 {
        return Err(Error::invalid("quantity", "must not be negative"));
    }
    let mut tx = app.db().write().await?;
    tx.usage_record(
        subscriber,
        metric,
        quantity,
        &day.to_string(),
        source,
        app.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Invoices (or credit notes) a caller may see: a subscriber sees their own issued in the
/// last 12 months, also after termination (R-6.1d); billing operators see everything.
pub async fn document_list(
    app: &App,
    ctx: &Ctx,
    kind: &str,
    subscriber: Option<SubscriberId>,
    page: &maocloud_types::PageRequest,
) -> Result<maocloud_types::Page<InvoiceRecord>> {
    let (who, since) = match ctx.principal {
        Principal::Subscriber(me) => (Some(me), Some(twelve_months_ago(app.now_for(me.0).await?))),
        _ => {
            ctx.require_operator(BILLING_ROLES)?;
            (subscriber, None)
        }
    };
    let mut tx = app.db().read().await?;
    let mut rows = tx
        .invoice_list(&ctx.scope(), who, kind, since.as_deref(), page)
        .await?;
    for doc in &mut rows {
        open_buyer(app, doc)?;
    }
    Ok(maocloud_types::Page::from_rows(
        rows,
        page.effective_limit(),
        |i| i.id.to_string(),
    ))
}

/// The buyer block of a document whose subscriber was erased is sealed at rest (R-9.5: kept
/// for the law, readable by the billing role only — the only operators who read documents).
fn open_buyer(app: &App, doc: &mut InvoiceRecord) -> Result<()> {
    if let Some(sealed) = doc.buyer.get("sealed").and_then(|v| v.as_str()) {
        let plain = crate::seal::open(app, sealed)?;
        doc.buyer = serde_json::from_slice(&plain).map_err(Error::internal)?;
    }
    Ok(())
}

fn twelve_months_ago(now: jiff::Timestamp) -> String {
    paris_date(now)
        .checked_sub(jiff::Span::new().months(12))
        .expect("in range")
        .to_string()
}

/// How many invoices (or credit notes) exist (billing operators).
pub async fn document_count(app: &App, ctx: &Ctx, kind: &str) -> Result<i64> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.invoice_count(kind).await?)
}

pub async fn document_get(
    app: &App,
    ctx: &Ctx,
    kind: &str,
    id: InvoiceId,
) -> Result<InvoiceRecord> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(BILLING_ROLES)?;
    }
    let mut tx = app.db().read().await?;
    let mut doc = tx.invoice_fetch(&ctx.scope(), id).await?;
    if doc.kind != kind {
        return Err(Error::NotFound);
    }
    open_buyer(app, &mut doc)?;
    if let Some(me) = ctx.principal.subscriber() {
        if doc.issue_date < twelve_months_ago(app.now_for(me.0).await?) {
            return Err(Error::NotFound);
        }
    }
    Ok(doc)
}

/// Issues a credit note against an invoice (billing role): the whole invoice, or a part of one
/// of its VAT rates. Never more than what is left to credit.
pub async fn credit_note_create(
    app: &App,
    ctx: &Ctx,
    invoice: InvoiceId,
    amount_excl: Option<Cents>,
    vat_rate_bp: Option<i64>,
    reason: &str,
) -> Result<InvoiceRecord> {
    ctx.require_operator(BILLING_ROLES)?;
    let reason =
        maocloud_types::validate::text(reason, 500).map_err(|r| Error::invalid("reason", r))?;
    let mut tx = app.db().write().await?;
    let inv = match tx.invoice_fetch(&Scope::All, invoice).await {
        Ok(i) if i.kind == "invoice" => i,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
            return Err(Error::invalid("invoice_id", "is not an issued invoice"))
        }
        Err(e) => return Err(e.into()),
    };
    let already = tx.invoice_credited(inv.id).await?.0;
    let period = (date(&inv.issue_date)?, date(&inv.issue_date)?);
    let draft = match amount_excl {
        None => {
            let lines = stored_lines(&inv)?
                .iter()
                .map(StoredLine::draft)
                .collect::<Result<Vec<_>>>()?;
            Draft { lines }
        }
        Some(amount) => {
            let rates: Vec<i64> = inv
                .vat
                .as_array()
                .map(|a| a.iter().filter_map(|v| v["rate_bp"].as_i64()).collect())
                .unwrap_or_default();
            let rate = match vat_rate_bp {
                Some(r) if rates.contains(&r) => r,
                None if rates.len() == 1 => rates[0],
                _ => {
                    return Err(Error::invalid(
                        "vat_rate_bp",
                        "must be one of the invoice's VAT rates",
                    ))
                }
            };
            if amount.0 <= 0 {
                return Err(Error::invalid("amount_excl_cents", "must be positive"));
            }
            Draft {
                lines: vec![compose::DraftLine {
                    kind: compose::LineKind::Adjustment,
                    item: Item::Subscription {
                        offer: reason.clone(),
                    },
                    period,
                    quantity_milli: 1000,
                    unit_price: amount,
                    amount,
                    vat_rate_bp: rate,
                }],
            }
        }
    };
    let doc = credit_note_issue(app, &mut tx, ctx, &inv, &draft, &reason, already).await?;
    tx.commit().await?;
    Ok(doc)
}

/// Issues a credit note on `inv` in `tx` (R-6.1e: corrections are credit notes), refusing one
/// that would credit more than what is left (`already` credited before).
pub(crate) async fn credit_note_issue(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    inv: &InvoiceRecord,
    draft: &Draft,
    reason: &str,
    already: i64,
) -> Result<InvoiceRecord> {
    let today = paris_date(app.now());
    if draft.total_incl().0 + already > inv.total_incl.0 {
        return Err(Error::invalid(
            "amount_excl_cents",
            "exceeds what is left to credit on this invoice",
        ));
    }
    let note = format!(
        "{} {} — {}",
        t(Lang::Fr, "invoice.credit_for"),
        inv.number,
        reason
    );
    let doc = issue(
        app,
        tx,
        "credit_note",
        inv.subscriber_id,
        inv.subscription_id,
        None,
        Some(inv.id),
        draft,
        today,
        Some(note),
    )
    .await?;
    audit::record(
        tx,
        ctx,
        app.now(),
        "credit_note.create",
        Some(&doc.id.to_string()),
        Some(inv.subscriber_id),
        json!({"invoice": inv.number, "number": doc.number}),
    )
    .await?;
    crate::suspension::lift_if_paid(app, tx, inv.subscriber_id).await?;
    Ok(doc)
}

/// What a subscriber owes: invoices with something left to pay, and their sum.
pub async fn balance(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
) -> Result<(Vec<Outstanding>, Cents, Vec<Payment>)> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(BILLING_ROLES)?;
    }
    let mut tx = app.db().read().await?;
    let open = tx.invoice_outstanding(&ctx.scope(), subscriber).await?;
    let payments = tx.payment_list(&ctx.scope(), subscriber).await?;
    let due = Cents(open.iter().map(|o| o.remaining().0).sum());
    Ok((open, due, payments))
}

/// Records a payment received (billing role) and allocates it to the given invoice, or to the
/// oldest open invoices first. A payment larger than what is due is refused.
pub async fn payment_record(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
    amount: Cents,
    method: &str,
    reference: &str,
    received_on: Date,
    invoice: Option<InvoiceId>,
) -> Result<Payment> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut c = Checker::default();
    if amount.0 <= 0 || amount.0 > 100_000_000_00 {
        c.fail("amount_cents", "must be between 1 and 10000000000");
    }
    if !matches!(method, "bank_transfer" | "manual") {
        c.fail("method", "must be bank_transfer or manual");
    }
    let reference = c.check("reference", maocloud_types::validate::text(reference, 140));
    c.finish()?;
    let mut tx = app.db().write().await?;
    tx.subscriber_profile_fetch(&Scope::All, subscriber)
        .await
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber"))?;
    let mut open = tx.invoice_outstanding(&Scope::All, subscriber).await?;
    if let Some(id) = invoice {
        open.retain(|o| o.invoice_id == id);
        if open.is_empty() {
            return Err(Error::invalid(
                "invoice_id",
                "is not an invoice of this subscriber with something left to pay",
            ));
        }
    }
    let due: i64 = open.iter().map(|o| o.remaining().0).sum();
    if amount.0 > due {
        return Err(Error::invalid(
            "amount_cents",
            &format!("is more than what is due ({})", Cents(due)),
        ));
    }
    let payment = Payment {
        id: PaymentId::new(),
        subscriber_id: subscriber,
        amount,
        method: method.into(),
        reference: reference.unwrap_or_default(),
        received_on: received_on.to_string(),
        recorded_by: ctx.principal.label(),
        created_at: app.now(),
    };
    tx.payment_create(&payment).await?;
    let mut left = amount.0;
    for o in &open {
        if left == 0 {
            break;
        }
        let part = left.min(o.remaining().0);
        tx.payment_allocate(payment.id, o.invoice_id, Cents(part))
            .await?;
        left -= part;
    }
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "payment.record",
        Some(&payment.id.to_string()),
        Some(subscriber),
        json!({"amount_cents": amount.0, "method": method}),
    )
    .await?;
    // R-7.1b: paying every overdue amount lifts a non-payment suspension at once.
    crate::suspension::lift_if_paid(app, &mut tx, subscriber).await?;
    tx.commit().await?;
    Ok(payment)
}

/// R-6.1c: the subscriber chooses paper or electronic delivery of future invoices.
pub async fn set_invoice_delivery(app: &App, ctx: &Ctx, delivery: &str) -> Result<()> {
    let me = ctx.require_subscriber()?;
    if !matches!(delivery, "electronic" | "paper") {
        return Err(Error::invalid(
            "invoice_delivery",
            "must be electronic or paper",
        ));
    }
    let mut tx = app.db().write().await?;
    tx.invoice_delivery_set(&ctx.scope(), me, delivery, app.now())
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn invoice_delivery(app: &App, ctx: &Ctx) -> Result<String> {
    let me = ctx.require_subscriber()?;
    let mut tx = app.db().read().await?;
    Ok(tx.invoice_delivery_fetch(me).await?)
}

/// The print-and-mail queue (billing role).
pub async fn print_queue(app: &App, ctx: &Ctx, include_mailed: bool) -> Result<Vec<PrintItem>> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut tx = app.db().read().await?;
    Ok(tx.print_queue_list(include_mailed).await?)
}

pub async fn print_queue_mark_mailed(app: &App, ctx: &Ctx, invoice: InvoiceId) -> Result<()> {
    ctx.require_operator(BILLING_ROLES)?;
    let mut tx = app.db().write().await?;
    tx.print_queue_mark_mailed(invoice, &ctx.principal.label(), app.now())
        .await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "print_queue.mailed",
        Some(&invoice.to_string()),
        None,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The printable form of an issued document, built from what was stored when it was issued.
fn printable(doc: &InvoiceRecord) -> Result<maocloud_documents::Document> {
    use maocloud_documents::{Document, Line, Party, Vat};
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_owned);
    let seller = &doc.seller;
    let buyer = &doc.buyer;
    let professional = buyer["customer_kind"] == "professional";
    let buyer_name = match s(buyer, "company_name") {
        Some(c) => format!("{c} ({})", s(buyer, "name").unwrap_or_default()),
        None => s(buyer, "name").unwrap_or_default(),
    };
    let terms_key = if professional {
        "invoice.payment_terms.professional"
    } else {
        "invoice.payment_terms.consumer"
    };
    Ok(Document {
        kind: doc.kind.clone(),
        number: doc.number.clone(),
        issue_date: doc.issue_date.clone(),
        due_date: doc.due_date.clone(),
        credited_number: None,
        seller: Party {
            name: s(seller, "name").unwrap_or_default(),
            legal_form: s(seller, "legal_form"),
            address_line1: s(seller, "address_line1").unwrap_or_default(),
            address_line2: None,
            postal_code: s(seller, "postal_code").unwrap_or_default(),
            city: s(seller, "city").unwrap_or_default(),
            country: s(seller, "country").unwrap_or_default(),
            company_id: s(seller, "siren"),
            vat_number: s(seller, "vat_number"),
            registration: s(seller, "registration"),
            email: s(seller, "email"),
        },
        buyer: Party {
            name: buyer_name,
            legal_form: None,
            address_line1: s(buyer, "address_line1").unwrap_or_default(),
            address_line2: s(buyer, "address_line2"),
            postal_code: s(buyer, "postal_code").unwrap_or_default(),
            city: s(buyer, "city").unwrap_or_default(),
            country: s(buyer, "country").unwrap_or_default(),
            company_id: s(buyer, "company_id"),
            vat_number: s(buyer, "vat_number"),
            registration: None,
            email: s(buyer, "email"),
        },
        buyer_is_professional: professional,
        lines: stored_lines(doc)?
            .into_iter()
            .map(|l| Line {
                description: l.description,
                period_start: l.period_start,
                period_end: l.period_end,
                quantity_milli: l.quantity_milli,
                unit_price: l.unit_price_cents,
                amount: l.amount_cents,
                vat_rate_bp: l.vat_rate_bp,
            })
            .collect(),
        vat: stored_vat(doc)?
            .into_iter()
            .map(|v| Vat {
                rate_bp: v.rate_bp,
                base: v.base_cents,
                vat: v.vat_cents,
            })
            .collect(),
        total_excl: doc.total_excl.0,
        total_vat: doc.total_vat.0,
        total_incl: doc.total_incl.0,
        note: doc.note.clone(),
        payment_terms: t(Lang::Fr, terms_key),
    })
}

async fn printable_for(
    app: &App,
    ctx: &Ctx,
    kind: &str,
    id: InvoiceId,
) -> Result<maocloud_documents::Document> {
    let doc = document_get(app, ctx, kind, id).await?;
    let mut p = printable(&doc)?;
    if let Some(credited) = doc.credited_invoice_id {
        let mut tx = app.db().read().await?;
        p.credited_number = Some(tx.invoice_fetch(&Scope::All, credited).await?.number);
    }
    Ok(p)
}

/// The document as a Factur-X PDF/A-3b (R-6.1c), rendered on request from the stored,
/// immutable data: the same document always gives the same bytes.
pub async fn document_pdf(
    app: &App,
    ctx: &Ctx,
    kind: &str,
    id: InvoiceId,
) -> Result<(String, Vec<u8>)> {
    let p = printable_for(app, ctx, kind, id).await?;
    let number = p.number.clone();
    let bytes = tokio::task::spawn_blocking(move || maocloud_documents::render(&p))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
    Ok((number, bytes))
}

/// The document's Factur-X CII XML (EN 16931).
pub async fn document_facturx(
    app: &App,
    ctx: &Ctx,
    kind: &str,
    id: InvoiceId,
) -> Result<(String, String)> {
    let p = printable_for(app, ctx, kind, id).await?;
    Ok((p.number.clone(), maocloud_documents::cii_xml(&p)))
}
