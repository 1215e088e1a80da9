//! Personal data: marketing consent per purpose, opt-in, changeable at any time and every
//! change recorded; marketing emails only to those who consented, each with a one-click
//! opt-out; restriction and objection, honoured by every job that reads personal data
//! beyond the contract (marketing, statistics); operator statistics from anonymised counts that
//! never show a group smaller than k; the register of processors and recipients shown
//! to subscribers; and the access export (`export`, R-9.5).

mod erasure;
mod export;

pub use erasure::*;
pub use export::*;

use crate::i18n::{tf, Lang};
use crate::notify::{self, Recipient};
use crate::{audit, App, Ctx, Error, Result};
use hmac::{Hmac, Mac};
use maocloud_datastore::privacy::{ConsentEvent, PrivacyEvent, PrivacyState};
use maocloud_types::{OperatorRole, SubscriberId};
use serde_json::json;
use sha2::Sha256;

pub use maocloud_datastore::privacy::{PrivacyExport, Processor, StatGroup};

/// What marketing may be for, each consented to separately.
pub const PURPOSES: [&str; 4] = ["loyalty", "prospecting", "surveys", "promotions"];
/// Where a consent change came from.
pub const SOURCES: [&str; 3] = ["console", "api", "cli"];

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn check_purpose(purpose: &str) -> Result<()> {
    if PURPOSES.contains(&purpose) {
        Ok(())
    } else {
        Err(Error::invalid(
            "purpose",
            "must be loyalty, prospecting, surveys or promotions",
        ))
    }
}

/// The subscriber whose data a call is about: their own, or one an operator names (audited).
async fn subject_of(
    app: &App,
    ctx: &Ctx,
    subscriber: Option<SubscriberId>,
    what: &str,
) -> Result<SubscriberId> {
    if let Some(me) = ctx.principal.subscriber() {
        return Ok(me);
    }
    ctx.require_operator(&[OperatorRole::Support])?;
    let who = subscriber.ok_or_else(|| Error::invalid("subscriber_id", "is required"))?;
    let mut tx = app.db().write().await?;
    match tx.account_fetch(who.0).await {
        Ok(a) if a.role.is_none() => {}
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => return Err(Error::NotFound),
        Err(e) => return Err(e.into()),
    }
    audit::record(&mut tx, ctx, app.now(), what, None, Some(who), json!({})).await?;
    tx.commit().await?;
    Ok(who)
}

/// A subscriber's consents: each purpose with its current state, and every change.
#[derive(Debug, Clone)]
pub struct Consents {
    pub purposes: Vec<(String, bool)>,
    pub history: Vec<ConsentEvent>,
}

pub async fn consents(app: &App, ctx: &Ctx, subscriber: Option<SubscriberId>) -> Result<Consents> {
    let who = subject_of(app, ctx, subscriber, "privacy.consents.read").await?;
    let mut tx = app.db().read().await?;
    let granted = tx.consents_granted(who).await?;
    Ok(Consents {
        purposes: PURPOSES
            .iter()
            .map(|p| (p.to_string(), granted.iter().any(|g| g == p)))
            .collect(),
        history: tx.consent_history(who).await?,
    })
}

/// The subscriber gives or withdraws consent for one purpose; recorded with time and source.
pub async fn set_consent(
    app: &App,
    ctx: &Ctx,
    purpose: &str,
    granted: bool,
    source: &str,
) -> Result<Consents> {
    let me = ctx.require_subscriber()?;
    check_purpose(purpose)?;
    let source = if SOURCES.contains(&source) {
        source
    } else {
        "api"
    };
    let mut tx = app.db().write().await?;
    // Only changes are recorded: giving twice is one consent.
    let current = tx.consents_granted(me).await?.iter().any(|p| p == purpose);
    if current == granted {
        drop(tx);
        return consents(app, ctx, None).await;
    }
    tx.consent_set(&ConsentEvent {
        id: new_id(),
        subscriber_id: me,
        purpose: purpose.into(),
        granted,
        source: source.into(),
        ip: ctx.ip.clone(),
        created_at: app.now(),
    })
    .await?;
    tx.commit().await?;
    consents(app, ctx, None).await
}

fn mac(app: &App, payload: &str) -> Result<Vec<u8>> {
    let key = crate::seal::key_bytes(app)?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(Error::internal)?;
    m.update(b"maocloud-unsubscribe:");
    m.update(payload.as_bytes());
    Ok(m.finalize().into_bytes().to_vec())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The opt-out token of one subscriber and purpose: `<subscriber>.<purpose>.<mac>`, checkable
/// without storing anything, useless for anything else.
pub fn unsubscribe_token(app: &App, who: SubscriberId, purpose: &str) -> Result<String> {
    let payload = format!("{who}.{purpose}");
    Ok(format!("{payload}.{}", hex(&mac(app, &payload)?[..16])))
}

/// The one-click opt-out: withdraws the consent a marketing email's link names. Returns the
/// purpose withdrawn.
pub async fn unsubscribe(app: &App, token: &str, ip: &str) -> Result<String> {
    let bad = || Error::invalid("token", "is not a valid opt-out link");
    let mut parts = token.trim().splitn(3, '.');
    let (Some(who), Some(purpose), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let payload = format!("{who}.{purpose}");
    let expected = hex(&mac(app, &payload)?[..16]);
    // Constant-time enough: both are hex of a MAC; compare every byte.
    if sig.len() != expected.len()
        || sig
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        || !PURPOSES.contains(&purpose)
    {
        return Err(bad());
    }
    let who: SubscriberId = who.parse().map_err(|_| bad())?;
    let mut tx = app.db().write().await?;
    // An erased or closed account keeps no consent and records nobody's address.
    let account = tx.account_fetch(who.0).await.map_err(|_| bad())?;
    if account.disabled_at.is_some() {
        return Ok(purpose.to_string());
    }
    tx.consent_set(&ConsentEvent {
        id: new_id(),
        subscriber_id: who,
        purpose: purpose.into(),
        granted: false,
        source: "unsubscribe_link".into(),
        ip: ip.into(),
        created_at: app.now(),
    })
    .await?;
    tx.commit().await?;
    Ok(purpose.to_string())
}

/// An operator sends a marketing email for one purpose: it goes only to subscribers who
/// consented to that purpose and have not restricted processing, each with their own opt-out
/// link. Returns how many were queued.
pub async fn marketing_send(
    app: &App,
    ctx: &Ctx,
    purpose: &str,
    subject: &str,
    body: &str,
) -> Result<usize> {
    ctx.require_operator(&[])?;
    check_purpose(purpose)?;
    let mut c = crate::error::Checker::default();
    let subject = c.check("subject", maocloud_types::validate::text(subject, 200));
    let body = match crate::support::body_text("body", body) {
        Ok(b) => Some(b),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    c.finish()?;
    let (subject, body) = (subject.expect("checked"), body.expect("checked"));
    let mut tx = app.db().write().await?;
    let audience = tx.marketing_audience(purpose).await?;
    for who in &audience {
        let account = tx.account_fetch(who.0).await?;
        let lang = Lang::parse(&account.locale);
        let base = app.settings().public_url.trim_end_matches('/').to_string();
        let token = unsubscribe_token(app, *who, purpose)?;
        let link = format!("{base}/unsubscribe?t={token}");
        let what = crate::i18n::t(lang, &format!("privacy.purpose.{purpose}"));
        let footer = tf(
            lang,
            "email.marketing.footer",
            &[("purpose", &what), ("link", &link)],
        );
        let text = format!("{body}\n\n--\n{footer}");
        notify::queue(
            app,
            &mut tx,
            Recipient::Account(&account),
            &subject,
            &text,
            notify::Extras {
                about: Some(*who),
                list_unsubscribe: Some(format!("{base}/api/v1/unsubscribe?t={token}")),
                ..Default::default()
            },
        )
        .await?;
    }
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "marketing.send",
        None,
        None,
        json!({"purpose": purpose, "recipients": audience.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(audience.len())
}

/// A subscriber's restriction and objection, with their history.
#[derive(Debug, Clone)]
pub struct Choices {
    pub state: PrivacyState,
    pub history: Vec<PrivacyEvent>,
}

pub async fn choices(app: &App, ctx: &Ctx, subscriber: Option<SubscriberId>) -> Result<Choices> {
    let who = subject_of(app, ctx, subscriber, "privacy.choices.read").await?;
    let mut tx = app.db().read().await?;
    Ok(Choices {
        state: tx.privacy_state(who).await?,
        history: tx.privacy_history(who).await?,
    })
}

/// The subscriber restricts processing (R-9.5: kept, used only as the contract and the law
/// require — no marketing, no statistics) or objects to processing on legitimate interest (no
/// statistics, no profiling), or lifts either. Recorded and audited; the desk is told.
pub async fn set_choice(
    app: &App,
    ctx: &Ctx,
    choice: &str,
    active: bool,
    reason: Option<&str>,
    source: &str,
) -> Result<Choices> {
    let me = ctx.require_subscriber()?;
    if !["restriction", "objection"].contains(&choice) {
        return Err(Error::invalid("choice", "must be restriction or objection"));
    }
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) if r.chars().count() > 1000 => {
            return Err(Error::invalid(
                "reason",
                "is too long (1,000 characters at most)",
            ))
        }
        Some(r) => Some(
            crate::support::body_text("reason", r)
                .map_err(|e| Error::invalid(&e.field, e.reason))?,
        ),
        None => None,
    };
    let source = if SOURCES.contains(&source) {
        source
    } else {
        "api"
    };
    let now = app.now();
    let mut tx = app.db().write().await?;
    tx.privacy_choice_set(&PrivacyEvent {
        id: new_id(),
        subscriber_id: me,
        choice: choice.into(),
        active,
        reason: reason.clone(),
        source: source.into(),
        created_at: now,
    })
    .await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        &format!("privacy.{choice}"),
        None,
        Some(me),
        json!({"active": active}),
    )
    .await?;
    tx.commit().await?;
    choices(app, ctx, None).await
}

/// Whether a job may use a subscriber's data beyond the contract and the law (marketing,
/// statistics, profiling): not when they restricted processing or objected to it.
pub async fn may_use_beyond_contract(app: &App, who: SubscriberId) -> Result<bool> {
    let s = app.db().read().await?.privacy_state(who).await?;
    Ok(!s.restricted && !s.objected)
}

/// One anonymised statistic: groups of fewer than k subscribers are shown without numbers.
#[derive(Debug, Clone)]
pub struct Statistic {
    pub name: String,
    pub k: i64,
    pub groups: Vec<StatRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    pub key: String,
    pub label: String,
    /// None: fewer than k subscribers, hidden.
    pub subscribers: Option<i64>,
    pub total: Option<i64>,
}

fn k_anonymous(name: &str, k: i64, groups: Vec<StatGroup>) -> Statistic {
    Statistic {
        name: name.into(),
        k,
        groups: groups
            .into_iter()
            .map(|g| {
                let shown = g.subscribers >= k;
                StatRow {
                    key: g.key,
                    label: g.label,
                    subscribers: shown.then_some(g.subscribers),
                    total: shown.then_some(g.total),
                }
            })
            .collect(),
    }
}

/// The operators' statistics: subscribers per offer, revenue per month and offer since
/// `since` (YYYY-MM), VMs per size. Computed from counts alone, leaving out restricted and
/// objecting subscribers; a group of fewer than `privacy_k` subscribers shows no number.
pub async fn statistics(app: &App, ctx: &Ctx, since: &str) -> Result<Vec<Statistic>> {
    ctx.require_operator(&[OperatorRole::Billing])?;
    let since_date: jiff::civil::Date = format!("{since}-01")
        .parse()
        .map_err(|_| Error::invalid("since", "must be a month YYYY-MM"))?;
    let k = app.settings().privacy_k;
    let mut tx = app.db().read().await?;
    Ok(vec![
        k_anonymous(
            "subscribers_per_offer",
            k,
            tx.stats_subscribers_per_offer().await?,
        ),
        k_anonymous(
            "revenue_per_month_cents",
            k,
            tx.stats_revenue_per_month(&since_date.to_string()).await?,
        ),
        k_anonymous("vms_per_size", k, tx.stats_vms_per_size().await?),
    ])
}

/// What an operator enters in the register.
#[derive(Debug, Clone)]
pub struct ProcessorInput {
    /// processor or recipient
    pub kind: String,
    pub name: String,
    pub purpose: String,
    pub data_categories: String,
    /// ISO country code of where the data goes.
    pub country: String,
    /// The safeguards (EU, adequacy decision, standard contractual clauses…).
    pub safeguards: String,
}

fn check_processor(i: &ProcessorInput) -> Result<ProcessorInput> {
    let mut c = crate::error::Checker::default();
    if !["processor", "recipient"].contains(&i.kind.as_str()) {
        c.fail("kind", "must be processor or recipient");
    }
    let text = maocloud_types::validate::text;
    let name = c.check("name", text(&i.name, 200));
    let purpose = c.check("purpose", text(&i.purpose, 500));
    let data = c.check("data_categories", text(&i.data_categories, 500));
    let country = c.check("country", maocloud_types::validate::country(&i.country));
    let safeguards = c.check("safeguards", text(&i.safeguards, 500));
    c.finish()?;
    Ok(ProcessorInput {
        kind: i.kind.clone(),
        name: name.expect("checked"),
        purpose: purpose.expect("checked"),
        data_categories: data.expect("checked"),
        country: country.expect("checked"),
        safeguards: safeguards.expect("checked"),
    })
}

/// The register as subscribers and the public see it.
pub async fn processors(app: &App) -> Result<Vec<Processor>> {
    Ok(app.db().read().await?.processor_list(false).await?)
}

pub async fn processor_create(app: &App, ctx: &Ctx, input: ProcessorInput) -> Result<Processor> {
    ctx.require_operator(&[])?;
    let i = check_processor(&input)?;
    let now = app.now();
    let p = Processor {
        id: new_id(),
        kind: i.kind,
        name: i.name,
        purpose: i.purpose,
        data_categories: i.data_categories,
        country: i.country,
        safeguards: i.safeguards,
        created_at: now,
        updated_at: now,
        removed_at: None,
    };
    let mut tx = app.db().write().await?;
    tx.processor_create(&p).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "processor.create",
        Some(&p.id),
        None,
        json!({"name": p.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

pub async fn processor_update(
    app: &App,
    ctx: &Ctx,
    id: &str,
    input: ProcessorInput,
) -> Result<Processor> {
    ctx.require_operator(&[])?;
    let i = check_processor(&input)?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let mut p = tx.processor_fetch(id).await?;
    p.kind = i.kind;
    p.name = i.name;
    p.purpose = i.purpose;
    p.data_categories = i.data_categories;
    p.country = i.country;
    p.safeguards = i.safeguards;
    p.updated_at = now;
    tx.processor_update(&p).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "processor.update",
        Some(&p.id),
        None,
        json!({"name": p.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// Removes an entry from the register (kept, marked removed, for the record).
pub async fn processor_remove(app: &App, ctx: &Ctx, id: &str) -> Result<()> {
    ctx.require_operator(&[])?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let mut p = tx.processor_fetch(id).await?;
    p.removed_at = Some(now);
    p.updated_at = now;
    tx.processor_update(&p).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "processor.remove",
        Some(&p.id),
        None,
        json!({"name": p.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
