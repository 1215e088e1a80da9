//! The records the datastore reads and writes, with typed ids and timestamps. Services turn them
//! into use-case results; the HTTP layer turns those into its own views.

use maocloud_types::{
    ApiTokenId, AuditId, EmailId, JobId, MessageId, OperatorRole, SessionId, SubscriberId,
    TermsVersionId, Timestamp,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Subscriber,
    Operator,
}

impl AccountKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountKind::Subscriber => "subscriber",
            AccountKind::Operator => "operator",
        }
    }
}

/// A person who can sign in: a subscriber or an operator. The account id is also the
/// subscriber id (or operator id) of that person.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub kind: AccountKind,
    pub email: String,
    pub password_hash: String,
    pub role: Option<OperatorRole>,
    pub display_name: String,
    pub locale: String,
    pub email_verified_at: Option<Timestamp>,
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub credentials_changed_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A subscriber's contract identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberProfile {
    pub id: SubscriberId,
    pub customer_kind: String,
    pub full_name: String,
    pub company_name: Option<String>,
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub phone: Option<String>,
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A subscriber as the back office lists them.
#[derive(Debug, Clone)]
pub struct SubscriberSummary {
    pub id: SubscriberId,
    pub email: String,
    pub full_name: String,
    pub customer_kind: String,
    pub company_name: Option<String>,
    pub status: String,
    pub email_verified: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct TermsVersion {
    pub id: TermsVersionId,
    pub version: String,
    pub title: String,
    pub body: String,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct TermsAcceptance {
    pub version: String,
    pub accepted_at: Timestamp,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub account_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub account_id: Uuid,
    pub csrf_token: String,
    pub mfa_pending: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimePurpose {
    VerifyEmail,
    ResetPassword,
}

impl OneTimePurpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            OneTimePurpose::VerifyEmail => "verify_email",
            OneTimePurpose::ResetPassword => "reset_password",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub subscriber_id: Option<SubscriberId>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub id: EmailId,
    pub account_id: Option<Uuid>,
    pub to_addr: String,
    pub subject: String,
    pub body_text: String,
    pub state: String,
    pub attempts: i64,
    pub transport: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// Where replies go (a support ticket's reply address), when not to the sender.
    pub reply_to: Option<String>,
    /// The subscriber the email is about, when not its recipient (found by erasure).
    pub about: Option<SubscriberId>,
    /// A marketing email's one-click opt-out address.
    pub list_unsubscribe: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: MessageId,
    pub subscriber_id: SubscriberId,
    pub subject: String,
    pub body: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Timestamp,
}
