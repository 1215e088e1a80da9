//! Email transports: SMTP (lettre) for real deployments, a Maildir under the data dir when no
//! SMTP server is configured. This crate only moves one message; queueing, retries and the
//! subscriber inbox belong to the application's outbox.

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

pub mod inbound;

/// One email ready to go.
#[derive(Debug, Clone, Default)]
pub struct OutgoingEmail {
    /// Stable id, also used as the Message-ID's local part so retries are recognisable.
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    /// Where the recipient's answer should go (the support desk address), if not to the sender.
    pub reply_to: Option<String>,
    /// The one-click opt-out address of a marketing email (List-Unsubscribe, RFC 8058).
    pub list_unsubscribe: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("Maildir delivery failed: {0}")]
    Maildir(#[from] std::io::Error),
    #[error("invalid SMTP URL: {0}")]
    Config(String),
}

impl MailError {
    /// Whether retrying later can help (a server down) or not (a malformed address).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailError::Address(_) | MailError::Build(_) | MailError::Config(_)
        )
    }
}

/// Something that delivers an email.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Delivers and returns a short description of where it went (`smtp`, `maildir`).
    async fn send(&self, email: &OutgoingEmail) -> Result<&'static str, MailError>;
}

fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e| MailError::Address(format!("{address}: {e}")))
}

fn build(from: &Mailbox, email: &OutgoingEmail) -> Result<Message, MailError> {
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from.clone())
        .to(mailbox(&email.to)?)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}@{}>", email.id, domain)));
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    if let Some(url) = &email.list_unsubscribe {
        // RFC 2369 and RFC 8058: mail clients offer a one-click opt-out that POSTs to `url`.
        use lettre::message::header::{HeaderName, HeaderValue};
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(email.body_text.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Delivers over SMTP to the server named by a URL such as `smtp://host:25`,
/// `smtps://user:pass@host:465` or `smtp://host:587?tls=required`.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError::Config(format!("from address {from}: {e}")))?;
        Ok(SmtpMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<&'static str, MailError> {
        let msg = build(&self.from, email)?;
        self.transport
            .send(msg)
            .await
            .map_err(|e| MailError::Smtp(e.to_string()))?;
        Ok("smtp")
    }
}

/// Writes each email as a file of a Maildir (`tmp/` then atomic rename into `new/`), readable by
/// any mail client and shown in the back office.
pub struct MaildirMailer {
    root: PathBuf,
    from: Mailbox,
}

impl MaildirMailer {
    pub fn new(root: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let root = root.into();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let from = from
            .parse()
            .map_err(|e| MailError::Config(format!("from address {from}: {e}")))?;
        Ok(MaildirMailer { root, from })
    }
}

#[async_trait]
impl Mailer for MaildirMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<&'static str, MailError> {
        let msg = build(&self.from, email)?;
        let bytes = msg.formatted();
        // The id is unique per email, so a retry overwrites its own earlier attempt.
        let name = format!("{}.maocloud", email.id);
        let tmp = self.root.join("tmp").join(&name);
        let new = self.root.join("new").join(&name);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &new)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok("maildir")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(reply_to: Option<&str>) -> OutgoingEmail {
        OutgoingEmail {
            id: "0190-test".into(),
            to: "Alice <alice@example.net>".into(),
            subject: "Ticket #42".into(),
            body_text: "We answered your ticket.".into(),
            reply_to: reply_to.map(Into::into),
            list_unsubscribe: None,
        }
    }

    #[test]
    fn marketing_carries_the_one_click_opt_out() {
        let mut e = email(None);
        e.list_unsubscribe = Some("https://cloud.example/api/v1/unsubscribe?t=abc".into());
        let text = formatted(&e);
        assert!(
            text.contains("List-Unsubscribe: <https://cloud.example/api/v1/unsubscribe?t=abc>"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(!formatted(&email(None)).contains("List-Unsubscribe"));
    }

    fn formatted(email: &OutgoingEmail) -> String {
        let from: Mailbox = "Maocloud <noreply@maocloud.test>".parse().unwrap();
        String::from_utf8(build(&from, email).unwrap().formatted()).unwrap()
    }

    #[test]
    fn reply_to_header_is_added_when_set() {
        let text = formatted(&email(Some("Support <support+42@maocloud.test>")));
        assert!(
            text.contains("Reply-To: Support <support+42@maocloud.test>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Message-ID: <0190-test@maocloud.test>"),
            "{text}"
        );
    }

    #[test]
    fn no_reply_to_header_by_default() {
        assert!(!formatted(&email(None)).contains("Reply-To:"));
    }

    #[test]
    fn unparsable_reply_to_is_an_address_error() {
        let from: Mailbox = "noreply@maocloud.test".parse().unwrap();
        let err = build(&from, &email(Some("not an address"))).unwrap_err();
        assert!(matches!(err, MailError::Address(_)), "{err}");
        assert!(err.is_permanent());
    }
}
