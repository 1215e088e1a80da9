//! Notifications: a durable email outbox (written in the caller's transaction, delivered by a
//! background job over SMTP or into the Maildir, retried with backoff) and the subscriber's
//! inbox, which receives a copy of every email sent to a subscriber.

use crate::i18n::{t, Lang};
use crate::jobs::{self, JobOutcome};
use crate::{App, Ctx, Error, Result};
use maocloud_datastore::{Account, AccountKind, Email, Message, NewJob, Tx};
use maocloud_mail::OutgoingEmail;
use maocloud_types::{EmailId, MessageId, OperatorRole, Page, PageRequest, SubscriberId};

pub const DELIVER_JOB: &str = "email.deliver";
const MAX_ATTEMPTS: i64 = 8;

/// Queues an email to `account` (subject from the catalog key, body already in their language)
/// and, for a subscriber, the same text in their inbox. Commits with the caller's transaction.
pub async fn send(
    app: &App,
    tx: &mut Tx,
    account: &Account,
    subject_key: &str,
    body: &str,
) -> Result<()> {
    let subject = t(Lang::parse(&account.locale), subject_key);
    let about = (account.kind == AccountKind::Subscriber).then_some(SubscriberId(account.id));
    let extras = Extras {
        about,
        ..Default::default()
    };
    queue(app, tx, Recipient::Account(account), &subject, body, extras).await
}

/// Who an email goes to: an account (a subscriber also gets it in their inbox), or a bare
/// address (an abuse reporter, the on-call group's alias).
#[derive(Clone, Copy)]
pub enum Recipient<'a> {
    Account(&'a Account),
    Address(&'a str),
}

/// What an email may carry besides its text.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Where replies go (a support ticket's reply address).
    pub reply_to: Option<String>,
    /// The subscriber it is about, so that their erasure finds it.
    pub about: Option<SubscriberId>,
    /// A marketing email's one-click opt-out (List-Unsubscribe, RFC 8058).
    pub list_unsubscribe: Option<String>,
}

/// Queues an email whose subject is already in the recipient's language. Commits with the
/// caller's transaction.
pub async fn queue(
    app: &App,
    tx: &mut Tx,
    to: Recipient<'_>,
    subject: &str,
    body: &str,
    extras: Extras,
) -> Result<()> {
    let Extras {
        reply_to,
        about,
        list_unsubscribe,
    } = extras;
    let now = app.now();
    let (account, to_addr) = match to {
        Recipient::Account(a) => (Some(a), a.email.clone()),
        Recipient::Address(addr) => (None, addr.to_string()),
    };
    let email = Email {
        id: EmailId::new(),
        account_id: account.map(|a| a.id),
        to_addr,
        subject: subject.to_string(),
        body_text: body.to_string(),
        state: "pending".into(),
        attempts: 0,
        transport: None,
        last_error: None,
        created_at: now,
        sent_at: None,
        reply_to,
        about,
        list_unsubscribe,
    };
    tx.email_create(&email).await?;
    if let Some(account) = account.filter(|a| a.kind == AccountKind::Subscriber) {
        let m = Message {
            id: MessageId::new(),
            subscriber_id: SubscriberId(account.id),
            subject: email.subject.clone(),
            body: email.body_text.clone(),
            created_at: now,
            read_at: None,
        };
        tx.message_create(&m, Some(email.id)).await?;
    }
    let payload = serde_json::json!({ "email_id": email.id });
    let key = format!("{DELIVER_JOB}:{}", email.id);
    tx.job_enqueue(
        &NewJob {
            kind: DELIVER_JOB,
            payload: &payload,
            run_at: now,
            max_attempts: MAX_ATTEMPTS,
            dedupe_key: Some(&key),
        },
        now,
    )
    .await?;
    Ok(())
}

/// The job that delivers one queued email.
pub(crate) async fn deliver(
    app: App,
    payload: serde_json::Value,
    attempt: i64,
    max: i64,
) -> JobOutcome {
    let Some(id) = payload
        .get("email_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<EmailId>().ok())
    else {
        return JobOutcome::Fail("payload has no email_id".into());
    };
    let email = match async { app.db().read().await?.email_fetch(id).await }.await {
        Ok(e) => e,
        Err(maocloud_datastore::Error::NotFound) => {
            return JobOutcome::Fail("email not found".into())
        }
        Err(e) => return JobOutcome::Retry(e.to_string()),
    };
    if email.state == "sent" {
        return JobOutcome::Done;
    }
    let out = OutgoingEmail {
        id: email.id.to_string(),
        to: email.to_addr,
        subject: email.subject,
        body_text: email.body_text,
        reply_to: email.reply_to,
        list_unsubscribe: email.list_unsubscribe,
    };
    let result = app.mailer().send(&out).await;
    let now = app.now();
    let (outcome, record): (JobOutcome, std::result::Result<&str, String>) = match &result {
        Ok(transport) => (JobOutcome::Done, Ok(transport)),
        Err(e) if e.is_permanent() => (JobOutcome::Fail(e.to_string()), Err(e.to_string())),
        Err(e) => (JobOutcome::Retry(e.to_string()), Err(e.to_string())),
    };
    let final_failure = matches!(outcome, JobOutcome::Fail(_))
        || (matches!(outcome, JobOutcome::Retry(_)) && attempt >= max);
    let stored = async {
        let mut tx = app.db().write().await?;
        tx.email_record_attempt(
            id,
            record.as_deref().map_err(|e| e.as_str()),
            final_failure,
            now,
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = stored {
        tracing::warn!(email = %id, error = %e, "could not record the delivery attempt");
    }
    outcome
}

pub(crate) fn register(w: &mut jobs::Registry) {
    w.register(DELIVER_JOB, |app, job| {
        Box::pin(deliver(app, job.payload, job.attempts, job.max_attempts))
    });
}

/// The caller's inbox, newest first.
pub async fn inbox(app: &App, ctx: &Ctx, page: &PageRequest) -> Result<Page<Message>> {
    let me = ctx.require_subscriber()?;
    let mut tx = app.db().read().await?;
    let rows = tx.message_list(&ctx.scope(), me, page).await?;
    Ok(Page::from_rows(rows, page.effective_limit(), |m| {
        m.id.to_string()
    }))
}

/// One message of the caller's inbox, marked read.
pub async fn message_read(app: &App, ctx: &Ctx, id: MessageId) -> Result<Message> {
    ctx.require_subscriber()?;
    let scope = ctx.scope();
    let mut tx = app.db().write().await?;
    tx.message_mark_read(&scope, id, app.now()).await?;
    let m = tx.message_fetch(&scope, id).await?;
    tx.commit().await?;
    Ok(m)
}

/// The outbox as admins see it (the Maildir's content when no SMTP is configured); audited.
pub async fn outbox(app: &App, ctx: &Ctx, page: &PageRequest) -> Result<Page<Email>> {
    ctx.require_operator(&[OperatorRole::Admin])?;
    let mut tx = app.db().write().await?;
    let rows = tx.email_list(page).await?;
    crate::audit::record(
        &mut tx,
        ctx,
        app.now(),
        "outbox.read",
        None,
        None,
        serde_json::json!({"count": rows.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, page.effective_limit(), |e| {
        e.id.to_string()
    }))
}

impl From<maocloud_mail::MailError> for Error {
    fn from(e: maocloud_mail::MailError) -> Self {
        Error::Internal(e.to_string())
    }
}
