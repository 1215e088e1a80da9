//! Replies by email: the provider's MTA delivers mail for the support address into a Maildir
//! (`Settings::support_intake`); each message addressed to a ticket's reply address
//! (`support+<token>@domain`, the token unguessable) from that ticket's requester lands in its
//! thread, quoted history stripped. Anything else — unknown or forged address, another sender,
//! auto-replies, garbage — is moved to `rejected/` with the reason, and changes nothing.

use super::{add_reply, check_attachment, Author, NewAttachment, NewReply, REPLY_MARKER};
use crate::{App, Error, Result};
use maocloud_datastore::Scope;
use maocloud_mail::inbound::{parse, strip_quoted, Intake};

/// What one pass over the intake did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IntakeReport {
    pub accepted: usize,
    pub rejected: usize,
}

/// The token of a ticket's reply address, if `addr` is one.
fn token_of(app: &App, addr: &str) -> Option<String> {
    let support = app.settings().support_address.to_ascii_lowercase();
    let (base, domain) = support.rsplit_once('@')?;
    let (local, d) = addr.rsplit_once('@')?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let token = local
        .to_ascii_lowercase()
        .strip_prefix(&format!("{base}+"))?
        .to_string();
    (token.len() == 26
        && token
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')))
    .then_some(token)
}

/// Reads every pending message of the intake once.
pub async fn intake(app: &App) -> Result<IntakeReport> {
    let box_ = Intake::open(&app.settings().support_intake).map_err(Error::internal)?;
    let mut report = IntakeReport::default();
    for path in box_.pending().map_err(Error::internal)? {
        let raw = match box_.read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                box_.reject(&path, &e.to_string())
                    .map_err(Error::internal)?;
                report.rejected += 1;
                continue;
            }
        };
        match receive(app, &raw).await {
            Ok(Ok(number)) => {
                box_.accept(&path).map_err(Error::internal)?;
                tracing::info!(
                    ticket = number,
                    "support: a reply by email joined its ticket"
                );
                report.accepted += 1;
            }
            Ok(Err(reason)) => {
                box_.reject(&path, &reason).map_err(Error::internal)?;
                tracing::info!(%reason, file = %path.display(), "support: inbound email rejected");
                report.rejected += 1;
            }
            // The database is away: the message stays in new/ for the next pass.
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Posts one raw email into its ticket: Ok(Ok(number)), or Ok(Err(why it was refused)).
async fn receive(app: &App, raw: &[u8]) -> Result<std::result::Result<i64, String>> {
    let Ok(msg) = parse(raw) else {
        return Ok(Err("not an email".into()));
    };
    if msg.auto_submitted {
        return Ok(Err(
            "an automatic message (auto-reply, bulk or bounce)".into()
        ));
    }
    let Some(from) = msg.from.clone() else {
        return Ok(Err("no sender".into()));
    };
    let Some(token) = msg.to.iter().find_map(|a| token_of(app, a)) else {
        return Ok(Err("not addressed to a ticket's reply address".into()));
    };
    let mut tx = app.db().write().await?;
    let mut t = match tx.ticket_by_reply_token(&token).await {
        Ok(t) => t,
        Err(maocloud_datastore::Error::NotFound) => {
            return Ok(Err("no ticket has this reply address".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let author = match (t.kind.as_str(), t.subscriber_id) {
        ("abuse_report", _) | (_, None) => match &t.contact_email {
            Some(c) if c.eq_ignore_ascii_case(&from) => Author {
                kind: "contact",
                id: None,
                label: t.contact_name.clone().unwrap_or_else(|| c.clone()),
            },
            _ => return Ok(Err(format!("{from} is not this ticket's requester"))),
        },
        (_, Some(s)) => {
            let account = tx.account_fetch(s.0).await?;
            if !account.email.eq_ignore_ascii_case(&from) {
                return Ok(Err(format!("{from} is not this ticket's requester")));
            }
            Author {
                kind: "subscriber",
                id: Some(s.to_string()),
                label: account.display_name,
            }
        }
    };
    if let Some(into) = t.merged_into.clone() {
        t = tx.ticket_fetch(&Scope::All, &into).await?;
    }
    if let Some(mid) = &msg.message_id {
        if tx.ticket_message_seen(&t.id, mid).await? {
            // Read before, and the move to cur/ was lost (a crash): already in the thread.
            return Ok(Ok(t.number));
        }
    }
    let mut body = strip_quoted(&msg.text, Some(REPLY_MARKER));
    let mut attachments = Vec::new();
    let mut refused = Vec::new();
    for (i, a) in msg.attachments.into_iter().enumerate() {
        let a = NewAttachment {
            file_name: a
                .file_name
                .unwrap_or_else(|| format!("attachment-{}", i + 1)),
            content_type: a.content_type,
            bytes: a.bytes,
        };
        match check_attachment("attachment", &a) {
            Ok(()) if attachments.len() < super::MAX_ATTACHMENTS => attachments.push(a),
            Ok(()) => refused.push(format!("{}: more than 3 files", a.file_name)),
            Err(e) => refused.push(format!("{}: {}", a.file_name, e.reason)),
        }
    }
    if !refused.is_empty() {
        body.push_str("\n\n[");
        body.push_str(&refused.join("; "));
        body.push(']');
    }
    let body = match super::body_text("message", &body) {
        Ok(b) => b,
        Err(e) => return Ok(Err(format!("the reply's text {}", e.reason))),
    };
    let input = NewReply {
        body: body.clone(),
        attachments,
        external_id: msg.message_id.clone(),
        ..Default::default()
    };
    let t = match add_reply(app, &mut tx, t, &author, &body, &input, "email").await {
        Ok(t) => t,
        Err(Error::Conflict { reason, .. }) => return Ok(Err(reason)),
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    Ok(Ok(t.number))
}
