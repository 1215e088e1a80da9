//! The access export: a subscriber asks for everything the platform holds about them;
//! a background job writes it as JSON files in a ZIP (format in `docs/privacy.md`), sealed at
//! rest under the data dir; the subscriber is emailed when it is ready and may download it for
//! 7 days, after which the file is deleted.

use super::new_id;
use crate::jobs::{self, JobOutcome};
use crate::{audit, notify, seal, App, Ctx, Error, Result};
use jiff::SignedDuration;
use maocloud_datastore::privacy::PrivacyExport;
use maocloud_datastore::support::TicketFilter;
use maocloud_datastore::{NewJob, Scope, Tx};
use maocloud_types::{PageRequest, SubscriberId, Timestamp};
use serde_json::{json, Value};
use std::io::Write;

pub const EXPORT_JOB: &str = "privacy.export";
pub const EXPIRE_JOB: &str = "privacy.export_expire";
/// Days an export stays downloadable.
pub const EXPORT_DAYS: i64 = 7;

fn path(app: &App, id: &str) -> std::path::PathBuf {
    app.settings()
        .data_dir
        .join("exports")
        .join(format!("{id}.zip.sealed"))
}

/// The subscriber asks for their export; one at a time.
pub async fn export_request(app: &App, ctx: &Ctx) -> Result<PrivacyExport> {
    let me = ctx.require_subscriber()?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    if tx
        .privacy_export_list(me)
        .await?
        .iter()
        .any(|e| e.status == "queued")
    {
        return Err(Error::Conflict {
            field: None,
            reason: "an export is already being prepared".into(),
        });
    }
    let e = PrivacyExport {
        id: new_id(),
        subscriber_id: me,
        status: "queued".into(),
        requested_at: now,
        ready_at: None,
        expires_at: None,
        size: None,
        error: None,
    };
    tx.privacy_export_create(&e).await?;
    enqueue(&mut tx, EXPORT_JOB, &e.id, now).await?;
    tx.commit().await?;
    app.wake_jobs();
    Ok(e)
}

async fn enqueue(tx: &mut Tx, kind: &'static str, id: &str, at: Timestamp) -> Result<()> {
    let payload = json!({ "export_id": id });
    let key = format!("{kind}:{id}");
    tx.job_enqueue(
        &NewJob {
            kind,
            payload: &payload,
            run_at: at,
            max_attempts: 5,
            dedupe_key: Some(&key),
        },
        at,
    )
    .await?;
    Ok(())
}

pub async fn exports(app: &App, ctx: &Ctx) -> Result<Vec<PrivacyExport>> {
    let me = ctx.require_subscriber()?;
    Ok(app.db().read().await?.privacy_export_list(me).await?)
}

/// The archive's bytes, for its subscriber only, while it is ready.
pub async fn export_download(app: &App, ctx: &Ctx, id: &str) -> Result<Vec<u8>> {
    let me = ctx.require_subscriber()?;
    let e = app
        .db()
        .read()
        .await?
        .privacy_export_fetch(Some(me), id)
        .await?;
    let expired = e.status == "expired" || e.expires_at.is_some_and(|x| x <= app.now());
    let refusal = match e.status.as_str() {
        _ if expired => Some("this export has expired: ask for a new one"),
        "queued" => Some("this export is still being prepared"),
        "failed" => Some("this export failed: ask for a new one"),
        _ => None,
    };
    if let Some(reason) = refusal {
        return Err(Error::Conflict {
            field: None,
            reason: reason.into(),
        });
    }
    let sealed = tokio::fs::read_to_string(path(app, &e.id))
        .await
        .map_err(Error::internal)?;
    seal::open(app, &sealed)
}

pub(crate) fn register(r: &mut jobs::Registry) {
    r.register(EXPORT_JOB, |app, job| Box::pin(run(app, job.payload)));
    r.register(EXPIRE_JOB, |app, job| Box::pin(expire(app, job.payload)));
}

fn export_id(payload: &Value) -> Option<String> {
    payload
        .get("export_id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

async fn run(app: App, payload: Value) -> JobOutcome {
    let Some(id) = export_id(&payload) else {
        return JobOutcome::Fail("payload has no export_id".into());
    };
    match build_and_store(&app, &id).await {
        Ok(()) => JobOutcome::Done,
        Err(e) => JobOutcome::Retry(e.to_string()),
    }
}

async fn build_and_store(app: &App, id: &str) -> Result<()> {
    let mut e = app
        .db()
        .read()
        .await?
        .privacy_export_fetch(None, id)
        .await?;
    if e.status != "queued" {
        return Ok(());
    }
    let files = collect(app, e.subscriber_id).await?;
    let zip = tokio::task::spawn_blocking(move || write_zip(&files))
        .await
        .map_err(Error::internal)??;
    let sealed = seal::seal(app, &zip)?;
    let p = path(app, id);
    let dir = p.parent().expect("exports dir").to_path_buf();
    let tmp = p.with_extension("tmp");
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(sealed.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)?;
    let now = app.now();
    e.status = "ready".into();
    e.ready_at = Some(now);
    e.expires_at = Some(now + SignedDuration::from_hours(24 * EXPORT_DAYS));
    e.size = Some(zip.len() as i64);
    let mut tx = app.db().write().await?;
    tx.privacy_export_save(&e).await?;
    enqueue(&mut tx, EXPIRE_JOB, &e.id, e.expires_at.expect("set")).await?;
    let account = tx.account_fetch(e.subscriber_id.0).await?;
    let lang = crate::i18n::Lang::parse(&account.locale);
    let link = format!(
        "{}/account/privacy",
        app.settings().public_url.trim_end_matches('/')
    );
    let days = EXPORT_DAYS.to_string();
    let body = crate::i18n::tf(
        lang,
        "email.export_ready.body",
        &[
            ("name", &account.display_name),
            ("link", &link),
            ("days", &days),
        ],
    );
    notify::send(app, &mut tx, &account, "email.export_ready.subject", &body).await?;
    audit::record(
        &mut tx,
        &Ctx::system(),
        now,
        "privacy.export",
        Some(&e.id),
        Some(e.subscriber_id),
        json!({"size": zip.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn expire(app: App, payload: Value) -> JobOutcome {
    let Some(id) = export_id(&payload) else {
        return JobOutcome::Fail("payload has no export_id".into());
    };
    let r = async {
        let _ = tokio::fs::remove_file(path(&app, &id)).await;
        let mut tx = app.db().write().await?;
        let mut e = tx.privacy_export_fetch(None, &id).await?;
        e.status = "expired".into();
        tx.privacy_export_save(&e).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match r {
        Ok(()) => JobOutcome::Done,
        Err(e) => JobOutcome::Retry(e.to_string()),
    }
}

fn ts(t: Timestamp) -> String {
    t.to_string()
}

fn ots(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

/// Every file of the archive: (name, JSON).
async fn collect(app: &App, who: SubscriberId) -> Result<Vec<(String, Value)>> {
    let scope = Scope::Subscriber(who);
    let mut tx = app.db().read().await?;
    let mut files: Vec<(String, Value)> = Vec::new();
    let account = tx.account_fetch(who.0).await?;
    files.push((
        "account.json".into(),
        json!({
            "id": who.to_string(), "email": account.email, "display_name": account.display_name,
            "locale": account.locale, "created_at": ts(account.created_at),
            "email_verified_at": ots(account.email_verified_at), "two_factor_enabled": account.totp_enabled,
        }),
    ));
    let p = tx.subscriber_profile_fetch(&scope, who).await?;
    files.push((
        "profile.json".into(),
        json!({
            "customer_kind": p.customer_kind, "full_name": p.full_name, "company_name": p.company_name,
            "company_id": p.company_id, "vat_number": p.vat_number, "address_line1": p.address_line1,
            "address_line2": p.address_line2, "postal_code": p.postal_code, "city": p.city,
            "country": p.country, "phone": p.phone, "status": p.status,
            "created_at": ts(p.created_at), "updated_at": ts(p.updated_at),
        }),
    ));
    let terms: Vec<Value> = tx
        .terms_acceptance_list(&scope, who)
        .await?
        .into_iter()
        .map(
            |a| json!({"version": a.version, "accepted_at": ts(a.accepted_at), "source": a.source}),
        )
        .collect();
    files.push(("terms_acceptances.json".into(), json!(terms)));
    let subs: Vec<Value> = tx
        .subscription_list(&scope, who)
        .await?
        .into_iter()
        .map(|s| {
            json!({"id": s.id.to_string(), "terms": s.terms, "status": s.status, "start_date": s.start_date,
                   "commitment_end": s.commitment_end, "created_at": ts(s.created_at), "ended_at": ots(s.ended_at)})
        })
        .collect();
    files.push(("subscriptions.json".into(), json!(subs)));
    let mut documents = Vec::new();
    for kind in ["invoice", "credit_note"] {
        let mut page = PageRequest::first(200);
        loop {
            let rows = tx
                .invoice_list(&scope, Some(who), kind, None, &page)
                .await?;
            let more = rows.len() > 200;
            for i in rows.iter().take(200) {
                documents.push(json!({
                    "kind": i.kind, "number": i.number, "issue_date": i.issue_date, "due_date": i.due_date,
                    "seller": i.seller, "buyer": i.buyer, "lines": i.lines, "vat": i.vat,
                    "total_excl_cents": i.total_excl.0, "total_vat_cents": i.total_vat.0,
                    "total_incl_cents": i.total_incl.0, "note": i.note,
                }));
            }
            match (more, rows.get(199)) {
                (true, Some(last)) => page.after = Some(last.id.to_string()),
                _ => break,
            }
        }
    }
    files.push(("invoices.json".into(), json!(documents)));
    let payments: Vec<Value> = tx
        .payment_list(&scope, who)
        .await?
        .into_iter()
        .map(|p| json!({"amount_cents": p.amount.0, "method": p.method, "reference": p.reference, "received_on": p.received_on}))
        .collect();
    files.push(("payments.json".into(), json!(payments)));
    let mandates: Vec<Value> = tx
        .mandate_list(&scope, who)
        .await?
        .into_iter()
        .map(|m| {
            json!({"reference": m.reference, "iban": m.iban, "bic": m.bic, "holder": m.holder,
                         "signed_on": m.signed_on, "status": m.status})
        })
        .collect();
    files.push(("sepa_mandates.json".into(), json!(mandates)));
    let consents: Vec<Value> = tx
        .consent_history(who)
        .await?
        .into_iter()
        .map(|c| json!({"purpose": c.purpose, "granted": c.granted, "source": c.source, "ip": c.ip, "at": ts(c.created_at)}))
        .collect();
    files.push(("consents.json".into(), json!(consents)));
    let choices: Vec<Value> = tx
        .privacy_history(who)
        .await?
        .into_iter()
        .map(|c| json!({"choice": c.choice, "active": c.active, "reason": c.reason, "source": c.source, "at": ts(c.created_at)}))
        .collect();
    files.push(("restriction_and_objection.json".into(), json!(choices)));
    let mut tickets = Vec::new();
    for t in tx
        .ticket_list(&scope, &TicketFilter::default(), &PageRequest::first(200))
        .await?
    {
        let messages: Vec<Value> = tx
            .ticket_messages(&t.id, false)
            .await?
            .into_iter()
            .map(|m| json!({"author": m.author_label, "author_kind": m.author_kind, "body": m.body, "via": m.via, "at": ts(m.created_at)}))
            .collect();
        tickets.push(json!({
            "number": t.number, "subject": t.subject, "category": t.category, "priority": t.priority,
            "status": t.status, "created_at": ts(t.created_at), "rating": t.rating,
            "rating_comment": t.rating_comment, "messages": messages,
        }));
    }
    files.push(("tickets.json".into(), json!(tickets)));
    let inbox: Vec<Value> = tx
        .message_list(&scope, who, &PageRequest::first(200))
        .await?
        .into_iter()
        .map(|m| json!({"subject": m.subject, "body": m.body, "at": ts(m.created_at), "read_at": ots(m.read_at)}))
        .collect();
    files.push(("inbox.json".into(), json!(inbox)));
    let proofs: Vec<Value> = tx
        .proof_list(&scope, Some(who))
        .await?
        .into_iter()
        .map(|p| {
            json!({"kind": p.kind, "note": p.note, "status": p.status, "file_name": p.file_name,
                         "requested_at": ts(p.requested_at), "decision_reason": p.decision_reason})
        })
        .collect();
    files.push(("proof_requests.json".into(), json!(proofs)));
    let vms: Vec<Value> = tx
        .vm_list(&scope, Some(who), None, &PageRequest::first(200))
        .await?
        .into_iter()
        .map(|v| json!({"id": v.id.to_string(), "name": v.name, "size": v.size, "state": v.state}))
        .collect();
    files.push(("vms.json".into(), json!(vms)));
    let buckets: Vec<Value> = tx
        .bucket_list(&scope)
        .await?
        .into_iter()
        .map(|b| json!({"name": b.name, "bytes": b.bytes, "objects": b.objects, "created_at": ts(b.created_at)}))
        .collect();
    files.push(("buckets.json".into(), json!(buckets)));
    let keys: Vec<Value> = tx
        .ssh_key_list(&scope)
        .await?
        .into_iter()
        .map(|k| json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint}))
        .collect();
    files.push(("ssh_keys.json".into(), json!(keys)));
    let tokens: Vec<Value> = tx
        .api_token_list(who.0)
        .await?
        .into_iter()
        .map(|t| json!({"name": t.name, "prefix": t.prefix, "created_at": ts(t.created_at), "last_used_at": ots(t.last_used_at)}))
        .collect();
    files.push(("api_tokens.json".into(), json!(tokens)));
    let s3: Vec<Value> = tx
        .storage_key_list(&scope)
        .await?
        .into_iter()
        .map(|k| json!({"id": k.id, "name": k.name, "status": k.status, "created_at": ts(k.created_at)}))
        .collect();
    files.push(("storage_keys.json".into(), json!(s3)));
    // every operator access to their data, from the audit trail.
    let mut access = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let rows = tx.audit_list(Some(who), &page).await?;
        let more = rows.len() > 200;
        for a in rows.iter().take(200) {
            if a.actor.starts_with("operator:") {
                access.push(json!({"at": ts(a.at), "operator": a.actor, "action": a.action, "target": a.target}));
            }
        }
        match (more, rows.get(199)) {
            (true, Some(last)) => page.after = Some(last.id.to_string()),
            _ => break,
        }
    }
    files.push(("operator_access.json".into(), json!(access)));
    Ok(files)
}

/// Writes the archive: a README, then one pretty-printed JSON file per class of data.
fn write_zip(files: &[(String, Value)]) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    zip.start_file("README.txt", opts)
        .map_err(Error::internal)?;
    zip.write_all(
        format!(
            "Maocloud — export of your personal data (GDPR art. 15 and 20, terms art. 9).\n\
             Each file is JSON (UTF-8). Times are RFC 3339 UTC; amounts are integer cents.\n\
             Format: docs/privacy.md of the Maocloud source.\n\nFiles:\n{}\n",
            names.join("\n")
        )
        .as_bytes(),
    )
    .map_err(Error::internal)?;
    for (name, value) in files {
        zip.start_file(name.as_str(), opts)
            .map_err(Error::internal)?;
        let text = serde_json::to_vec_pretty(value).map_err(Error::internal)?;
        zip.write_all(&text).map_err(Error::internal)?;
    }
    Ok(zip.finish().map_err(Error::internal)?.into_inner())
}
