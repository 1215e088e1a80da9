//! The forms that feed the desk: abuse reports from anyone, without signing in (R-4a: recorded
//! against the resource and its subscriber, routed to the abuse role, rate-limited), reports of
//! lost or stolen credentials with an identity document (R-5a: an operator confirms, then every
//! credential is revoked and new access sent), and registered letters an operator records with
//! their date of receipt (R-7.2a: a termination by letter goes through `termination`).

use super::{
    assemble, author_of, body_text, check_attachment, create, event, post, tell_desk,
    tell_requester, visible, Author, NewAttachment, Opening, TicketResource, TicketView,
};
use crate::termination::{self, TerminationInput};
use crate::{accounts, audit, App, Ctx, Error, Result};
use jiff::civil::Date;
use jiff::SignedDuration;
use maocloud_billing::calendar::paris_date;
use maocloud_datastore::Scope;
use maocloud_types::{OperatorRole, SubscriberId, SubscriptionId};
use serde_json::json;

/// What an abuse report may be about.
pub const ABUSE_KINDS: [&str; 7] = [
    "spam",
    "phishing",
    "malware",
    "attack",
    "copyright",
    "illegal_content",
    "other",
];

/// Uses of each public form allowed per source address and hour.
pub const FORM_LIMIT_PER_HOUR: i64 = 5;

#[derive(Debug, Clone)]
pub struct AbuseReportInput {
    pub reporter_email: String,
    pub reporter_name: Option<String>,
    /// An IP address, a bucket name or a VM id.
    pub resource: String,
    pub kind: String,
    pub description: String,
    pub evidence: Vec<NewAttachment>,
}

/// Counts one use of a public form from `ip` (in its own transaction: refused attempts count
/// too) and refuses beyond the hourly limit.
async fn throttle(app: &App, form: &str, ip: &str) -> Result<()> {
    let now = app.now();
    let mut tx = app.db().write().await?;
    let n = tx
        .support_form_hit(form, ip, now, now - SignedDuration::from_hours(1))
        .await?;
    tx.commit().await?;
    if n > FORM_LIMIT_PER_HOUR {
        return Err(Error::TooManyRequests {
            retry_after_secs: 3600,
        });
    }
    Ok(())
}

fn optional_name(c: &mut crate::error::Checker, field: &str, v: &Option<String>) -> Option<String> {
    let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    c.check(field, maocloud_types::validate::text(v, 100))
}

/// Anyone reports abuse (R-4a). Returns the ticket number to quote.
pub async fn abuse_report(app: &App, ip: &str, input: AbuseReportInput) -> Result<i64> {
    let mut c = crate::error::Checker::default();
    let email = c.check(
        "reporter_email",
        maocloud_types::validate::email(&input.reporter_email),
    );
    let name = optional_name(&mut c, "reporter_name", &input.reporter_name);
    let resource = c.check(
        "resource",
        maocloud_types::validate::text(&input.resource, 255),
    );
    if !ABUSE_KINDS.contains(&input.kind.as_str()) {
        c.fail(
            "kind",
            &format!("must be one of {}", ABUSE_KINDS.join(", ")),
        );
    }
    let description = match body_text("description", &input.description) {
        Ok(d) if d.chars().count() >= 10 => Some(d),
        Ok(_) => {
            c.fail(
                "description",
                "must say what happened (10 characters at least)",
            );
            None
        }
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    if input.evidence.len() > super::MAX_ATTACHMENTS {
        c.fail("evidence", "at most 3 files");
    }
    for (i, a) in input.evidence.iter().enumerate() {
        if let Err(e) = check_attachment(&format!("evidence[{i}]"), a) {
            c.fail(&e.field, &e.reason);
        }
    }
    c.finish()?;
    let (email, resource, description) = (
        email.expect("checked"),
        resource.expect("checked"),
        description.expect("checked"),
    );
    throttle(app, "abuse", ip).await?;
    let mut tx = app.db().write().await?;
    let (subscriber, linked) = locate(&mut tx, &resource).await?;
    let label = name.clone().unwrap_or_else(|| email.clone());
    let subject = format!("{} — {}", input.kind, resource);
    let t = create(
        app,
        &mut tx,
        Opening {
            kind: "abuse_report",
            subscriber,
            contact: Some((email, name)),
            subject: subject.chars().take(200).collect(),
            category: "abuse",
            priority: "high",
            resources: linked.into_iter().collect(),
            source: "form",
            detail: json!({"abuse_kind": input.kind, "reported": resource, "reporter_ip": ip}),
            body: description.clone(),
            author: Author {
                kind: "contact",
                id: None,
                label,
            },
            attachments: input.evidence,
        },
    )
    .await?;
    tell_requester(app, &mut tx, &t, "email.abuse.ack", &[]).await?;
    tell_desk(
        app,
        &mut tx,
        &t,
        "email.desk.new",
        &super::excerpt(&description),
    )
    .await?;
    tx.commit().await?;
    Ok(t.number)
}

/// Finds what an abuse report names: a guest's IP address, a bucket, a VM id.
async fn locate(
    tx: &mut maocloud_datastore::Tx,
    what: &str,
) -> Result<(Option<SubscriberId>, Option<TicketResource>)> {
    let what = what.trim();
    if let Ok(ip) = what.parse::<std::net::IpAddr>() {
        if let Some(vm) = tx.vm_by_ip(&ip.to_string()).await? {
            return Ok((
                Some(vm.subscriber_id),
                Some(TicketResource {
                    kind: "vm".into(),
                    id: vm.id.to_string(),
                    label: format!("{} ({ip})", vm.name),
                }),
            ));
        }
        return Ok((None, None));
    }
    let bucket = what
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap_or_default();
    match tx.bucket_fetch(bucket).await {
        Ok(b) => {
            return Ok((
                Some(b.subscriber_id),
                Some(TicketResource {
                    kind: "bucket".into(),
                    id: b.name.clone(),
                    label: b.name,
                }),
            ))
        }
        Err(maocloud_datastore::Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    if uuid::Uuid::parse_str(what).is_ok() {
        match tx.vm_fetch(&Scope::All, what).await {
            Ok(vm) => {
                return Ok((
                    Some(vm.subscriber_id),
                    Some(TicketResource {
                        kind: "vm".into(),
                        id: vm.id.to_string(),
                        label: vm.name,
                    }),
                ))
            }
            Err(maocloud_datastore::Error::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((None, None))
}

#[derive(Debug, Clone)]
pub struct CredentialLossInput {
    /// The account's email address.
    pub email: String,
    pub name: String,
    /// What happened.
    pub statement: String,
    /// An identity document (PDF, PNG or JPEG).
    pub proof: NewAttachment,
}

/// Someone reports a subscriber's credentials lost or stolen (R-5a), proving their identity.
/// The answer is the same whether the address is a subscriber's or not; the account's owner is
/// told by email, so a false report cannot go unnoticed.
pub async fn credential_loss_report(app: &App, ip: &str, input: CredentialLossInput) -> Result<()> {
    let mut c = crate::error::Checker::default();
    let email = c.check("email", maocloud_types::validate::email(&input.email));
    let name = c.check("name", maocloud_types::validate::text(&input.name, 100));
    let statement = match body_text("statement", &input.statement) {
        Ok(s) => Some(s),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    match check_attachment("proof", &input.proof) {
        Err(e) => c.fail(&e.field, &e.reason),
        Ok(()) if input.proof.content_type == "text/plain" => {
            c.fail("proof", "must be a PDF, PNG or JPEG identity document")
        }
        Ok(()) => {}
    }
    c.finish()?;
    let (email, name, statement) = (
        email.expect("checked"),
        name.expect("checked"),
        statement.expect("checked"),
    );
    throttle(app, "credential_loss", ip).await?;
    let mut tx = app.db().write().await?;
    let account = match tx.account_by_email(&email).await {
        Ok(a) if a.role.is_none() && a.disabled_at.is_none() => a,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let t = create(
        app,
        &mut tx,
        Opening {
            kind: "credential_loss",
            subscriber: Some(SubscriberId(account.id)),
            contact: None,
            subject: "Credentials lost or stolen (R-5a)".into(),
            category: "account",
            priority: "high",
            resources: vec![],
            source: "form",
            detail: json!({"status": "pending", "claimed_name": name, "reporter_ip": ip}),
            body: statement.clone(),
            author: Author {
                kind: "contact",
                id: None,
                label: name,
            },
            attachments: vec![input.proof],
        },
    )
    .await?;
    tell_requester(app, &mut tx, &t, "email.credential_loss.received", &[]).await?;
    tell_desk(
        app,
        &mut tx,
        &t,
        "email.desk.new",
        &super::excerpt(&statement),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An operator decides a credential-loss report: confirmed, every credential is revoked at once
/// and new access sent (`accounts::revoke_all_credentials`); rejected, the requester is told why.
pub async fn credential_loss_decide(
    app: &App,
    ctx: &Ctx,
    id: &str,
    confirm: bool,
    note: &str,
) -> Result<TicketView> {
    ctx.require_operator(&[OperatorRole::Support])?;
    let note = note.trim();
    if !confirm && note.is_empty() {
        return Err(Error::invalid(
            "note",
            "is required: tell the requester why",
        ));
    }
    let note = if note.is_empty() {
        None
    } else {
        Some(body_text("note", note).map_err(|e| Error::invalid(&e.field, e.reason))?)
    };
    let mut tx = app.db().write().await?;
    let mut t = visible(&mut tx, ctx, id).await?;
    if t.kind != "credential_loss" {
        return Err(Error::NotFound);
    }
    if t.detail.get("status").and_then(|s| s.as_str()) != Some("pending") {
        return Err(Error::Conflict {
            field: None,
            reason: "this report was already decided".into(),
        });
    }
    let who = t.subscriber_id.ok_or(Error::NotFound)?;
    let author = author_of(&mut tx, ctx).await?;
    let now = app.now();
    let decision = if confirm { "confirmed" } else { "rejected" };
    t.detail["status"] = json!(decision);
    t.detail["decided_by"] = json!(author.label);
    t.detail["decided_at"] = json!(now.to_string());
    if confirm {
        let r = accounts::revoke_all_credentials(app, &mut tx, who).await?;
        t.detail["s3_keys_revoked"] = json!(r.s3_keys);
        audit::record(
            &mut tx,
            ctx,
            now,
            "credentials.revoke_all",
            Some(&t.id),
            Some(who),
            json!({"s3_keys": r.s3_keys, "ssh_keys_listed": r.ssh_keys.len()}),
        )
        .await?;
    }
    if let Some(n) = &note {
        post(app, &mut tx, &t, &author, n, false, "web", None, vec![]).await?;
    }
    event(
        &mut tx,
        &t.id,
        "credential_loss",
        &author.label,
        json!({"decision": decision}),
        now,
    )
    .await?;
    if t.first_response_at.is_none() {
        t.first_response_at = Some(now);
        t.first_response_breached |= now >= t.first_response_due_at;
    }
    t.assignee_id
        .get_or_insert_with(|| author.id.clone().unwrap_or_default());
    super::set_status(&mut t, "resolved", now);
    t.updated_at = now;
    tx.ticket_save(&t).await?;
    if !confirm {
        tell_requester(
            app,
            &mut tx,
            &t,
            "email.credential_loss.rejected",
            &[("message", note.as_deref().unwrap_or(""))],
        )
        .await?;
    }
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    if confirm {
        app.storage_keys().forget(Some(who));
    }
    Ok(view)
}

/// What a registered letter asks for.
pub const LETTER_SUBJECTS: [&str; 3] = ["termination", "credential_loss", "other"];

#[derive(Debug, Clone)]
pub struct LetterInput {
    pub subscriber_id: SubscriberId,
    pub received_on: Date,
    pub subject: String,
    pub summary: String,
    pub scan: Option<NewAttachment>,
    /// termination: the subscription named and the end chosen (`month_end` or `date`).
    pub subscription_id: Option<SubscriptionId>,
    pub end: Option<String>,
    pub end_date: Option<Date>,
}

/// An operator records a registered letter with its date of receipt (R-7.2a). A termination
/// letter terminates the subscription it names (as of that date); a credential-loss letter
/// opens a report to confirm; any letter is kept in the subscriber's tickets with its scan.
pub async fn record_letter(app: &App, ctx: &Ctx, input: LetterInput) -> Result<TicketView> {
    ctx.require_operator(&[OperatorRole::Support, OperatorRole::Billing])?;
    let mut c = crate::error::Checker::default();
    if !LETTER_SUBJECTS.contains(&input.subject.as_str()) {
        c.fail("subject", "must be termination, credential_loss or other");
    }
    let summary = match body_text("summary", &input.summary) {
        Ok(s) => Some(s),
        Err(e) => {
            c.fail(&e.field, &e.reason);
            None
        }
    };
    if let Some(scan) = &input.scan {
        if let Err(e) = check_attachment("scan", scan) {
            c.fail(&e.field, &e.reason);
        }
    }
    if input.received_on > paris_date(app.now()) {
        c.fail("received_on", "must not be in the future");
    }
    if input.subject == "termination" && input.subscription_id.is_none() {
        c.fail(
            "subscription_id",
            "is required: the subscription the letter terminates",
        );
    }
    c.finish()?;
    let summary = summary.expect("checked");
    {
        let mut tx = app.db().read().await?;
        match tx.account_fetch(input.subscriber_id.0).await {
            Ok(a) if a.role.is_none() => {}
            Ok(_) | Err(maocloud_datastore::Error::NotFound) => {
                return Err(Error::invalid("subscriber_id", "is not a subscriber"))
            }
            Err(e) => return Err(e.into()),
        }
        // Before anything is terminated: the letter's subscription must be the subscriber's.
        if let Some(sub) = input.subscription_id {
            match tx
                .subscription_fetch(&Scope::Subscriber(input.subscriber_id), sub)
                .await
            {
                Ok(_) => {}
                Err(maocloud_datastore::Error::NotFound) => {
                    return Err(Error::invalid(
                        "subscription_id",
                        "is not this subscriber's subscription",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut detail =
        json!({"received_on": input.received_on.to_string(), "letter_subject": input.subject});
    if input.subject == "termination" {
        let sub = input.subscription_id.expect("checked");
        let view = termination::request(
            app,
            ctx,
            sub,
            TerminationInput {
                end: input.end.clone().unwrap_or_else(|| "month_end".into()),
                date: input.end_date,
                reason: None,
                received_on: Some(input.received_on),
            },
        )
        .await
        .map_err(|e| match e {
            Error::NotFound => {
                Error::invalid("subscription_id", "is not this subscriber's subscription")
            }
            e => e,
        })?;
        detail["termination_id"] = json!(view.termination.id);
        detail["end_date"] = json!(view.termination.end_date);
    }
    let kind = if input.subject == "credential_loss" {
        detail["status"] = json!("pending");
        "credential_loss"
    } else {
        "letter"
    };
    let mut tx = app.db().write().await?;
    let author = author_of(&mut tx, ctx).await?;
    let now = app.now();
    let mut t = create(
        app,
        &mut tx,
        Opening {
            kind,
            subscriber: Some(input.subscriber_id),
            contact: None,
            subject: format!(
                "Registered letter of {} ({})",
                input.received_on, input.subject
            ),
            category: if input.subject == "termination" {
                "billing"
            } else {
                "account"
            },
            priority: "normal",
            resources: vec![],
            source: "letter",
            detail,
            body: summary,
            author: author.clone(),
            attachments: input.scan.into_iter().collect(),
        },
    )
    .await?;
    // A letter is recorded by the desk itself: that is its first response.
    t.first_response_at = Some(now);
    if kind == "letter" {
        super::set_status(&mut t, "resolved", now);
    } else {
        t.status = "open".into();
    }
    t.assignee_id = author.id.clone();
    tx.ticket_save(&t).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "letter.record",
        Some(&t.id),
        Some(input.subscriber_id),
        json!({"subject": input.subject, "received_on": input.received_on.to_string()}),
    )
    .await?;
    let view = assemble(&mut tx, ctx, t).await?;
    tx.commit().await?;
    Ok(view)
}
