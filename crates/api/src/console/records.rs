//! How the records use cases return look to templates: plain serialisable views with
//! timestamps already formatted. No secret (password hash, TOTP secret) is ever copied here.

use super::view::{when, when_opt, When};
use maocloud_app::model::{
    Account, ApiToken, AuditEntry, Email, Message, SubscriberProfile, SubscriberSummary,
    TermsAcceptance,
};
use maocloud_types::Timestamp;
use serde::Serialize;

#[derive(Serialize)]
pub struct AccountView {
    pub email: String,
    pub verified: bool,
    pub verified_at: Option<When>,
    pub totp_enabled: bool,
    pub locale: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            email: a.email.clone(),
            verified: a.email_verified_at.is_some(),
            verified_at: when_opt(a.email_verified_at),
            totp_enabled: a.totp_enabled,
            locale: a.locale.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct ProfileView {
    pub id: String,
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
    pub created_at: When,
}

impl From<&SubscriberProfile> for ProfileView {
    fn from(p: &SubscriberProfile) -> Self {
        ProfileView {
            id: p.id.to_string(),
            customer_kind: p.customer_kind.clone(),
            full_name: p.full_name.clone(),
            company_name: p.company_name.clone(),
            company_id: p.company_id.clone(),
            vat_number: p.vat_number.clone(),
            address_line1: p.address_line1.clone(),
            address_line2: p.address_line2.clone(),
            postal_code: p.postal_code.clone(),
            city: p.city.clone(),
            country: p.country.clone(),
            phone: p.phone.clone(),
            status: p.status.clone(),
            created_at: when(p.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct MessageView {
    pub id: String,
    pub subject: String,
    pub created_at: When,
    pub read: bool,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            id: m.id.to_string(),
            subject: m.subject.clone(),
            created_at: when(m.created_at),
            read: m.read_at.is_some(),
        }
    }
}

#[derive(Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: When,
    pub expires_at: Option<When>,
    pub last_used_at: Option<When>,
    pub revoked: bool,
    pub expired: bool,
}

impl TokenView {
    pub fn new(t: &ApiToken, now: Timestamp) -> Self {
        TokenView {
            id: t.id.to_string(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at: when(t.created_at),
            expires_at: when_opt(t.expires_at),
            last_used_at: when_opt(t.last_used_at),
            revoked: t.revoked_at.is_some(),
            expired: t.expires_at.is_some_and(|e| e <= now),
        }
    }
}

#[derive(Serialize)]
pub struct SubscriberRow {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub customer_kind: String,
    pub company_name: Option<String>,
    pub status: String,
    pub email_verified: bool,
    pub created_at: When,
}

impl From<&SubscriberSummary> for SubscriberRow {
    fn from(s: &SubscriberSummary) -> Self {
        SubscriberRow {
            id: s.id.to_string(),
            email: s.email.clone(),
            full_name: s.full_name.clone(),
            customer_kind: s.customer_kind.clone(),
            company_name: s.company_name.clone(),
            status: s.status.clone(),
            email_verified: s.email_verified,
            created_at: when(s.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct AcceptanceView {
    pub version: String,
    pub accepted_at: When,
    pub source: String,
}

impl From<&TermsAcceptance> for AcceptanceView {
    fn from(a: &TermsAcceptance) -> Self {
        AcceptanceView {
            version: a.version.clone(),
            accepted_at: when(a.accepted_at),
            source: a.source.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct AuditView {
    pub at: When,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub subscriber_id: Option<String>,
    pub detail: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        AuditView {
            at: when(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            subscriber_id: e.subscriber_id.map(|s| s.to_string()),
            detail: e.detail.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct EmailView {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub transport: Option<String>,
    pub last_error: Option<String>,
    pub created_at: When,
    pub sent_at: Option<When>,
}

impl From<&Email> for EmailView {
    fn from(e: &Email) -> Self {
        EmailView {
            to: e.to_addr.clone(),
            subject: e.subject.clone(),
            body: e.body_text.clone(),
            state: e.state.clone(),
            attempts: e.attempts,
            transport: e.transport.clone(),
            last_error: e.last_error.clone(),
            created_at: when(e.created_at),
            sent_at: when_opt(e.sent_at),
        }
    }
}
