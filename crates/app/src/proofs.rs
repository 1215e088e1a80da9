//! Proof requests: an operator asks a subscriber for a document (identity, address, or
//! the proof of a legitimate termination reason, R-7.3b); the subscriber uploads it (type and
//! size checked, sealed at rest, R-9.4); an operator approves or rejects it with a reason. An
//! identity or address request left unanswered makes the file incomplete (R-7.1d).

use crate::i18n::{tf, Lang};
use crate::{audit, notify, seal, App, Ctx, Error, Result};
use maocloud_billing::calendar::paris_date;
pub use maocloud_datastore::contract::ProofRequest;
use maocloud_datastore::{Scope, Tx};
use maocloud_types::{OperatorRole, SubscriberId};
use serde_json::json;

const ROLES: &[OperatorRole] = &[OperatorRole::Support, OperatorRole::Billing];

/// Largest document accepted: 5 MiB.
pub const MAX_SIZE: usize = 5 * 1024 * 1024;

/// The kinds an operator may request (termination proofs are opened by a termination).
pub const KINDS: [&str; 2] = ["identity", "address"];

/// The document types accepted, each checked against the file's first bytes.
fn content_type_ok(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(b"\xff\xd8\xff"),
        _ => false,
    }
}

/// An operator asks a subscriber for a document.
pub async fn request(
    app: &App,
    ctx: &Ctx,
    subscriber: SubscriberId,
    kind: &str,
    note: &str,
) -> Result<ProofRequest> {
    ctx.require_operator(ROLES)?;
    if !KINDS.contains(&kind) {
        return Err(Error::invalid("kind", "must be identity or address"));
    }
    let note = maocloud_types::validate::text(note, 1000).map_err(|r| Error::invalid("note", r))?;
    let mut tx = app.db().write().await?;
    tx.subscriber_profile_fetch(&Scope::All, subscriber)
        .await
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber"))?;
    let p = open(app, &mut tx, ctx, subscriber, kind, &note).await?;
    tx.commit().await?;
    Ok(p)
}

/// Opens a request in `tx` and tells the subscriber.
pub(crate) async fn open(
    app: &App,
    tx: &mut Tx,
    ctx: &Ctx,
    subscriber: SubscriberId,
    kind: &str,
    note: &str,
) -> Result<ProofRequest> {
    let now = app.now_in(tx, subscriber.0).await?;
    let p = ProofRequest {
        id: uuid::Uuid::now_v7().to_string(),
        subscriber_id: subscriber,
        kind: kind.into(),
        note: note.into(),
        status: "open".into(),
        requested_by: ctx.principal.label(),
        requested_at: app.now(),
        requested_on: paris_date(now).to_string(),
        file_name: None,
        content_type: None,
        size: None,
        submitted_at: None,
        decided_at: None,
        decided_by: None,
        decision_reason: None,
    };
    tx.proof_create(&p).await?;
    if kind != "termination_reason" {
        let account = tx.account_fetch(subscriber.0).await?;
        let lang = Lang::parse(&account.locale);
        let days = app.settings().incomplete_file_days.to_string();
        let body = tf(
            lang,
            "email.proof_request.body",
            &[
                ("name", &account.display_name),
                ("what", &crate::i18n::t(lang, &format!("proof.kind.{kind}"))),
                ("note", note),
                ("days", &days),
            ],
        );
        notify::send(app, tx, &account, "email.proof_request.subject", &body).await?;
    }
    audit::record(
        tx,
        ctx,
        app.now(),
        "proof.request",
        Some(&p.id),
        Some(subscriber),
        json!({"kind": kind}),
    )
    .await?;
    Ok(p)
}

/// The subscriber's requests (operators: one subscriber's, or every one waiting for someone).
pub async fn list(
    app: &App,
    ctx: &Ctx,
    subscriber: Option<SubscriberId>,
) -> Result<Vec<ProofRequest>> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let who = ctx.principal.subscriber().or(subscriber);
    let mut tx = app.db().read().await?;
    Ok(tx.proof_list(&ctx.scope(), who).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<ProofRequest> {
    if ctx.principal.operator_role().is_some() {
        ctx.require_operator(ROLES)?;
    }
    let mut tx = app.db().read().await?;
    Ok(tx.proof_fetch(&ctx.scope(), id).await?)
}

/// The subscriber uploads the document of one of their requests.
pub async fn upload(
    app: &App,
    ctx: &Ctx,
    id: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Result<ProofRequest> {
    let me = ctx.require_subscriber()?;
    // Someone else's request is absent, whatever the upload holds.
    get(app, ctx, id).await?;
    let mut c = crate::error::Checker::default();
    let name = c.check(
        "file_name",
        maocloud_types::validate::text(file_name, 200).and_then(|n| {
            if n.contains(['/', '\\', '\0']) {
                Err("must be a plain file name")
            } else {
                Ok(n)
            }
        }),
    );
    if bytes.is_empty() {
        c.fail("document", "is empty");
    } else if bytes.len() > MAX_SIZE {
        c.fail("document", "is larger than 5 MiB");
    } else if !content_type_ok(content_type, bytes) {
        c.fail(
            "content_type",
            "must be application/pdf, image/png or image/jpeg, matching the file",
        );
    }
    c.finish()?;
    let sealed = seal::seal(app, bytes)?;
    let mut tx = app.db().write().await?;
    let p = tx.proof_fetch(&ctx.scope(), id).await?;
    if !tx
        .proof_submit(
            &p.id,
            &name.unwrap_or_default(),
            content_type,
            bytes.len() as i64,
            &sealed,
            app.now(),
        )
        .await?
    {
        return Err(Error::Conflict {
            field: None,
            reason: "this request does not wait for a document".into(),
        });
    }
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "proof.upload",
        Some(&p.id),
        Some(me),
        json!({"size": bytes.len(), "content_type": content_type}),
    )
    .await?;
    // R-7.1d: the document provided, the file is complete again.
    crate::suspension::lift_if_complete(&mut tx, app, me).await?;
    tx.commit().await?;
    get(app, ctx, id).await
}

/// The uploaded document, opened (the subscriber's own, or for operators).
pub async fn document(app: &App, ctx: &Ctx, id: &str) -> Result<(ProofRequest, Vec<u8>)> {
    let p = get(app, ctx, id).await?;
    let mut tx = app.db().read().await?;
    let sealed = tx
        .proof_sealed(&ctx.scope(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let bytes = seal::open(app, &sealed)?;
    if ctx.principal.operator_role().is_some() {
        drop(tx);
        let mut w = app.db().write().await?;
        audit::record(
            &mut w,
            ctx,
            app.now(),
            "proof.read",
            Some(id),
            Some(p.subscriber_id),
            json!({}),
        )
        .await?;
        w.commit().await?;
    }
    Ok((p, bytes))
}

/// An operator approves or rejects a submitted document, with a reason. Approving completes
/// the file (lifting an incomplete-file suspension) or accepts a termination reason.
pub async fn decide(
    app: &App,
    ctx: &Ctx,
    id: &str,
    approve: bool,
    reason: &str,
) -> Result<ProofRequest> {
    ctx.require_operator(ROLES)?;
    let reason =
        maocloud_types::validate::text(reason, 1000).map_err(|r| Error::invalid("reason", r))?;
    let mut tx = app.db().write().await?;
    let p = tx.proof_fetch(&Scope::All, id).await?;
    let status = if approve { "approved" } else { "rejected" };
    if !tx
        .proof_decide(id, status, app.now(), &ctx.principal.label(), &reason)
        .await?
    {
        return Err(Error::Conflict {
            field: None,
            reason: "only a submitted document can be approved or rejected".into(),
        });
    }
    let account = tx.account_fetch(p.subscriber_id.0).await?;
    let lang = Lang::parse(&account.locale);
    let body = tf(
        lang,
        &format!("email.proof_{status}.body"),
        &[
            ("name", &account.display_name),
            (
                "what",
                &crate::i18n::t(lang, &format!("proof.kind.{}", p.kind)),
            ),
            ("reason", &reason),
        ],
    );
    notify::send(
        app,
        &mut tx,
        &account,
        &format!("email.proof_{status}.subject"),
        &body,
    )
    .await?;
    crate::suspension::lift_if_complete(&mut tx, app, p.subscriber_id).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "proof.decide",
        Some(id),
        Some(p.subscriber_id),
        json!({"status": status, "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    let mut tx = app.db().read().await?;
    Ok(tx.proof_fetch(&Scope::All, id).await?)
}
