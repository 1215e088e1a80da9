//! Suspension: operators suspend at once for a recorded R-7.1a reason and lift it;
//! non-payment (R-7.1b) and an incomplete file (R-7.1d) suspend by the daily sweep and lift by
//! themselves once paid or completed. A suspension stops access and destroys nothing: the
//! subscriber keeps reading, paying, uploading proofs and terminating, but cannot change their
//! resources; compute and storage ask [`is_suspended`] before acting (R-7.1c).

use crate::i18n::{t, tf, Lang};
use crate::{audit, notify, App, Ctx, Error, Result};
use maocloud_billing::calendar::paris_date;
pub use maocloud_datastore::contract::Suspension;
use maocloud_datastore::{Scope, Tx};
use maocloud_types::{OperatorRole, SubscriberId};
use serde_json::json;

/// Who may suspend by hand (R-7.1a): admins and the abuse desk; billing confirms non-payment.
const ROLES: &[OperatorRole] = &[OperatorRole::Abuse];
const CONFIRM_ROLES: &[OperatorRole] = &[OperatorRole::Abuse, OperatorRole::Billing];

/// The causes an operator may record by hand (R-7.1a).
pub const OPERATOR_CAUSES: [&str; 3] = ["breach", "network", "authority"];

/// Whether a subscriber's services are suspended now (for compute and storage, R-7.1c).
pub async fn is_suspended(app: &App, subscriber: SubscriberId) -> Result<bool> {
    let mut tx = app.db().read().await?;
    Ok(active_of(&mut tx, subscriber).await?.is_some())
}

async fn active_of(tx: &mut Tx, subscriber: SubscriberId) -> Result<Option<Suspension>> {
    Ok(tx
        .suspension_list(&Scope::All, Some(subscriber))
        .await?
        .into_iter()
        .find(|s| s.status == "active"))
}

/// Refuses a change to the subscriber's resources while they are suspended, saying why.
pub(crate) async fn ensure_active(tx: &mut Tx, subscriber: SubscriberId) -> Result<()> {
    match active_of(tx, subscriber).await? {
        None => Ok(()),
        Some(s) => Err(Error::Conflict {
            field: None,
            reason: format!(
                "your services are suspended ({}); {}",
                s.cause,
                what_lifts(&s.cause)
            ),
        }),
    }
}

/// What lifts a suspension of this cause, in words the subscriber sees.
pub fn what_lifts(cause: &str) -> &'static str {
    match cause {
        "non_payment" => "paying every overdue invoice lifts it at once",
        "incomplete_file" => "providing the requested documents lifts it",
        _ => "an operator lifts it once the cause is resolved; contact support",
    }
}

/// A subscriber's suspensions (the subscriber: their own), or every open one (operators).
pub async fn list(
    app: &App,
    ctx: &Ctx,
    subscriber: Option<SubscriberId>,
) -> Result<Vec<Suspension>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(&[
            OperatorRole::Abuse,
            OperatorRole::Billing,
            OperatorRole::Support,
        ])?;
    }
    let who = match ctx.principal.subscriber() {
        Some(me) => Some(me),
        None => subscriber,
    };
    let mut tx = app.db().read().await?;
    Ok(tx.suspension_list(&ctx.scope(), who).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<Suspension> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(CONFIRM_ROLES)?;
    }
    let mut tx = app.db().read().await?;
    Ok(tx.suspension_fetch(&ctx.scope(), id).await?)
}

/// R-7.1a: an operator suspends a subscriber at once for a recorded reason.
pub async fn suspend(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
    cause: &str,
    reason: &str,
) -> Result<Suspension> {
    ctx.require_operator(ROLES)?;
    if !OPERATOR_CAUSES.contains(&cause) {
        return Err(Error::invalid(
            "cause",
            "must be breach, network or authority (R-7.1a)",
        ));
    }
    let reason =
        maocloud_types::validate::text(reason, 1000).map_err(|r| Error::invalid("reason", r))?;
    let mut tx = app.db().write().await?;
    tx.subscriber_profile_fetch(&Scope::All, subscriber)
        .await
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber"))?;
    let s = start(app, &mut tx, ctx, subscriber, cause, &reason, true).await?;
    tx.commit().await?;
    Ok(s)
}

/// Records a suspension (active at once, or pending an operator's confirmation) and tells the
/// subscriber why and what lifts it.
pub(crate) async fn start(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    subscriber: SubscriberId,
    cause: &str,
    reason: &str,
    active: bool,
) -> Result<Suspension> {
    let now = app.now();
    let s = Suspension {
        id: uuid::Uuid::now_v7().to_string(),
        subscriber_id: subscriber,
        cause: cause.into(),
        reason: reason.into(),
        status: if active { "active" } else { "pending" }.into(),
        created_by: ctx.principal.label(),
        created_at: now,
        started_at: active.then_some(now),
        lifted_at: None,
        lifted_by: None,
        lift_reason: None,
    };
    tx.suspension_create(&s).await?;
    crate::compute::vms::enforce_later(tx, s.subscriber_id, s.created_at).await?;
    if active {
        tell_suspended(app, tx, &s).await?;
    }
    audit::record(
        tx,
        ctx,
        now,
        if active {
            "suspension.start"
        } else {
            "suspension.propose"
        },
        Some(&s.id),
        Some(subscriber),
        json!({"cause": cause, "reason": reason}),
    )
    .await?;
    Ok(s)
}

async fn tell_suspended(app: &App, tx: &mut Tx, s: &Suspension) -> Result<()> {
    let account = tx.account_fetch(s.subscriber_id.0).await?;
    let lang = Lang::parse(&account.locale);
    let body = tf(
        lang,
        "email.suspended.body",
        &[
            ("name", &account.display_name),
            ("cause", &t(lang, &format!("suspension.cause.{}", s.cause))),
            ("reason", &s.reason),
            ("lifts", &t(lang, &format!("suspension.lifts.{}", s.cause))),
        ],
    );
    notify::send(app, tx, &account, "email.suspended.subject", &body).await
}

/// Operator-confirmed dunning mode: an operator confirms a pending non-payment suspension.
pub async fn confirm(app: &App, ctx: &Ctx, id: &str) -> Result<Suspension> {
    ctx.require_operator(CONFIRM_ROLES)?;
    let mut tx = app.db().write().await?;
    let s = tx.suspension_fetch(&Scope::All, id).await?;
    if !tx
        .suspension_set_status(
            id,
            "pending",
            "active",
            app.now(),
            &ctx.principal.label(),
            None,
        )
        .await?
    {
        return Err(Error::Conflict {
            field: None,
            reason: "this suspension is not waiting for confirmation".into(),
        });
    }
    crate::compute::vms::enforce_later(&mut tx, s.subscriber_id, app.now()).await?;
    let s = Suspension {
        status: "active".into(),
        started_at: Some(app.now()),
        ..s
    };
    tell_suspended(app, &mut tx, &s).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "suspension.confirm",
        Some(id),
        Some(s.subscriber_id),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// An operator lifts a suspension (any cause), with a reason.
pub async fn lift(app: &App, ctx: &Ctx, id: &str, reason: &str) -> Result<Suspension> {
    ctx.require_operator(CONFIRM_ROLES)?;
    let reason =
        maocloud_types::validate::text(reason, 1000).map_err(|r| Error::invalid("reason", r))?;
    let mut tx = app.db().write().await?;
    let s = tx.suspension_fetch(&Scope::All, id).await?;
    if s.status == "lifted" {
        return Err(Error::Conflict {
            field: None,
            reason: "this suspension is already lifted".into(),
        });
    }
    end(app, &mut tx, ctx, &s, &reason).await?;
    tx.commit().await?;
    Ok(tx_refetch(app, id).await?)
}

async fn tx_refetch(app: &App, id: &str) -> Result<Suspension> {
    let mut tx = app.db().read().await?;
    Ok(tx.suspension_fetch(&Scope::All, id).await?)
}

async fn end(app: &App, tx: &mut Tx, ctx: &Ctx, s: &Suspension, reason: &str) -> Result<()> {
    if !tx
        .suspension_set_status(
            &s.id,
            &s.status,
            "lifted",
            app.now(),
            &ctx.principal.label(),
            Some(reason),
        )
        .await?
    {
        return Ok(());
    }
    crate::compute::vms::enforce_later(tx, s.subscriber_id, app.now()).await?;
    if s.status == "active" {
        let account = tx.account_fetch(s.subscriber_id.0).await?;
        let lang = Lang::parse(&account.locale);
        let body = tf(
            lang,
            "email.suspension_lifted.body",
            &[("name", &account.display_name)],
        );
        notify::send(app, tx, &account, "email.suspension_lifted.subject", &body).await?;
    }
    audit::record(
        tx,
        ctx,
        app.now(),
        "suspension.lift",
        Some(&s.id),
        Some(s.subscriber_id),
        json!({"cause": s.cause, "reason": reason}),
    )
    .await
}

/// R-7.1b: once nothing overdue is left, a non-payment suspension lifts by itself.
pub(crate) async fn lift_if_paid(app: &App, tx: &mut Tx, subscriber: SubscriberId) -> Result<()> {
    let Some(s) = tx.suspension_open(subscriber, "non_payment").await? else {
        return Ok(());
    };
    let now = app.now_in(tx, subscriber.0).await?;
    let today = paris_date(now).to_string();
    if tx
        .invoice_overdue(&today, None, Some(subscriber))
        .await?
        .is_empty()
    {
        end(app, tx, &Ctx::system(), &s, "overdue invoices paid").await?;
    }
    Ok(())
}

/// R-7.1d: once the file is complete, an incomplete-file suspension lifts by itself.
pub(crate) async fn lift_if_complete(
    tx: &mut Tx,
    app: &App,
    subscriber: SubscriberId,
) -> Result<()> {
    let Some(s) = tx.suspension_open(subscriber, "incomplete_file").await? else {
        return Ok(());
    };
    if tx.proof_file_complete(subscriber).await? {
        end(app, tx, &Ctx::system(), &s, "file complete").await?;
    }
    Ok(())
}
