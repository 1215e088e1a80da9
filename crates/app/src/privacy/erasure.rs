//! Erasure and retention. A subscriber without an active contract asks for
//! erasure; a code is emailed to them, and they confirm by typing it back with their email
//! address (confirmed twice; irreversible). Then, at once: VMs and their disks and every bucket
//! are destroyed; personal data is erased or pseudonymised in every table (`subscriber_erase`),
//! in the Maildir copies of their emails, their replies in the support intake and their export
//! archives; invoices stay, as the law requires, their buyer block sealed at rest and readable
//! by the billing role only. On SQLite, deleted content is zeroed (`secure_delete`) and the WAL
//! truncated. The retention job does the same once a contract has been over for
//! `retention_days` (default 3 years).

use crate::auth::{hash_password, new_secret, secret_hash};
use crate::i18n::{tf, Lang};
use crate::{audit, notify, seal, App, Ctx, Error, Result};
use jiff::SignedDuration;
use maocloud_types::{OperatorRole, Principal, SubscriberId};
use serde_json::json;

/// Minutes the emailed erasure code stays valid.
pub const ERASURE_CODE_MINUTES: i64 = 30;

/// Whether a subscriber has no active contract (never subscribed, or every one ended).
async fn no_active_contract(app: &App, who: SubscriberId) -> Result<bool> {
    let subs = app
        .db()
        .read()
        .await?
        .subscription_list(&maocloud_datastore::Scope::All, who)
        .await?;
    Ok(!subs.iter().any(|s| s.status == "active"))
}

/// Step one: the subscriber asks; a code is emailed to them.
pub async fn erasure_request(app: &App, ctx: &Ctx) -> Result<()> {
    let me = ctx.require_subscriber()?;
    if !no_active_contract(app, me).await? {
        return Err(Error::Conflict {
            field: None,
            reason: "you still have an active contract: terminate it first (your data is erased once it has ended)".into(),
        });
    }
    let code = new_secret("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect::<String>()
        .to_ascii_uppercase();
    let now = app.now();
    let mut tx = app.db().write().await?;
    tx.erasure_request_set(
        me,
        &secret_hash(&code),
        now,
        now + SignedDuration::from_mins(ERASURE_CODE_MINUTES),
    )
    .await?;
    let account = tx.account_fetch(me.0).await?;
    let lang = Lang::parse(&account.locale);
    let minutes = ERASURE_CODE_MINUTES.to_string();
    let body = tf(
        lang,
        "email.erasure_code.body",
        &[
            ("name", &account.display_name),
            ("code", &code),
            ("minutes", &minutes),
        ],
    );
    notify::send(app, &mut tx, &account, "email.erasure_code.subject", &body).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "privacy.erasure_requested",
        None,
        Some(me),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Step two: the subscriber types the code and their email address; everything is erased.
pub async fn erasure_confirm(app: &App, ctx: &Ctx, code: &str, email: &str) -> Result<()> {
    let me = ctx.require_subscriber()?;
    let now = app.now();
    {
        let mut tx = app.db().write().await?;
        let account = tx.account_fetch(me.0).await?;
        if !account.email.eq_ignore_ascii_case(email.trim()) {
            return Err(Error::invalid(
                "email",
                "must be your account's email address, typed to confirm",
            ));
        }
        let code = code.trim().to_ascii_uppercase();
        if !tx
            .erasure_request_take(me, &secret_hash(&code), now)
            .await?
        {
            return Err(Error::invalid(
                "code",
                "is not the code we emailed, or it expired: ask again",
            ));
        }
        tx.commit().await?;
    }
    if !no_active_contract(app, me).await? {
        return Err(Error::Conflict {
            field: None,
            reason: "you still have an active contract".into(),
        });
    }
    erase_subscriber(app, ctx, me, "request").await
}

/// Erases a subscriber (their request, or retention). Irreversible.
pub(crate) async fn erase_subscriber(
    app: &App,
    ctx: &Ctx,
    who: SubscriberId,
    why: &str,
) -> Result<()> {
    let now = app.now();
    let unknowable = hash_password(&new_secret("x_")).await?;
    let erased_email = format!("erased-{who}@erased.invalid");
    let mut tx = app.db().write().await?;
    let vms = crate::compute::vms::erase_all(&mut tx, who, now).await?;
    let buckets = crate::storage::erase_all(&mut tx, who, now).await?;
    let erased = tx
        .subscriber_erase(who, &erased_email, &unknowable, now)
        .await?;
    let invoices = tx.invoice_buyers_open(who).await?;
    for (id, buyer) in &invoices {
        tx.invoice_buyer_seal(id, &seal::seal(app, buyer.as_bytes())?)
            .await?;
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "privacy.erasure",
        None,
        Some(who),
        json!({"why": why, "vms": vms, "buckets": buckets, "invoices_sealed": invoices.len()}),
    )
    .await?;
    tx.commit().await?;
    app.storage_keys().forget(Some(who));
    app.wake_jobs();
    remove_files(app, &erased).await;
    app.db().reclaim().await?;
    Ok(())
}

/// Removes what the platform keeps of the subscriber in files: the Maildir copies of emails to
/// them, their mail in the support intake, their export archives.
async fn remove_files(app: &App, e: &maocloud_datastore::privacy::Erased) {
    let data = app.settings().data_dir.clone();
    let intake = app.settings().support_intake.clone();
    let email_ids = e.email_ids.clone();
    let export_ids = e.export_ids.clone();
    let former = e.former_email.to_ascii_lowercase();
    let r = tokio::task::spawn_blocking(move || {
        let maildir = data.join("maildir");
        for sub in ["new", "cur", "tmp"] {
            let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if email_ids
                    .iter()
                    .any(|id| name.starts_with(&format!("{id}.")))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        for id in &export_ids {
            let _ = std::fs::remove_file(data.join("exports").join(format!("{id}.zip.sealed")));
        }
        for sub in ["new", "cur", "tmp", "rejected"] {
            let Ok(entries) = std::fs::read_dir(intake.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(bytes) = std::fs::read(entry.path()) else {
                    continue;
                };
                if String::from_utf8_lossy(&bytes)
                    .to_ascii_lowercase()
                    .contains(&former)
                {
                    let _ = std::fs::remove_file(entry.path());
                    let reason = entry.path().with_extension("reason");
                    let _ = std::fs::remove_file(reason);
                }
            }
        }
    })
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "erasure: removing files failed");
    }
}

/// erases every subscriber whose contracts have all been over for `retention_days`.
/// Run by the daily sweep for live subscribers. Returns how many were erased.
pub async fn retention_sweep(app: &App) -> Result<usize> {
    let before = app.now() - SignedDuration::from_hours(24 * app.settings().retention_days);
    let due = app
        .db()
        .read()
        .await?
        .subscribers_past_retention(before)
        .await?;
    let system = Ctx::system();
    for who in &due {
        erase_subscriber(app, &system, *who, "retention").await?;
    }
    Ok(due.len())
}

/// An operator (admin) erases a subscriber on their written request (a letter): same rules.
pub async fn erase_on_request(app: &App, ctx: &Ctx, who: SubscriberId) -> Result<()> {
    ctx.require_operator(&[])?;
    if matches!(ctx.principal, Principal::Operator { role, .. } if role != OperatorRole::Admin) {
        return Err(Error::Forbidden("only admins erase a subscriber"));
    }
    match app.db().read().await?.account_fetch(who.0).await {
        Ok(a) if a.role.is_none() && a.disabled_at.is_none() => {}
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => return Err(Error::NotFound),
        Err(e) => return Err(e.into()),
    }
    if !no_active_contract(app, who).await? {
        return Err(Error::Conflict {
            field: None,
            reason: "the subscriber still has an active contract".into(),
        });
    }
    erase_subscriber(app, ctx, who, "letter").await
}
