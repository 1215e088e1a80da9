//! How the records use cases return look to templates: plain serialisable views with
//! timestamps already formatted. No secret (password hash, TOTP secret) is ever copied here.

use super::view::{when, when_opt, When};
use maocloud_app::billing::{
    InvoiceRecord, Offer, Outstanding, Payment, PrintItem, SubscriptionView,
};
use maocloud_app::model::{
    Account, ApiToken, AuditEntry, Email, Message, SubscriberProfile, SubscriberSummary,
    TermsAcceptance,
};
use maocloud_billing::{Inclusions, OfferTerms};
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

// --- Billing: amounts stay integer cents here; templates format them with `money(…)`. ---

#[derive(Serialize)]
pub struct OfferView {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub monthly_price: i64,
    pub monthly_vat: i64,
    pub monthly_price_incl: i64,
    pub vat_rate_bp: i64,
    pub includes: Inclusions,
    pub storage_gb_month: i64,
    pub egress_gb: i64,
    pub public_ip_month: i64,
    pub commitment_months: i64,
    pub multiple_allowed: bool,
    pub active: bool,
    pub created_at: When,
    pub retired_at: Option<When>,
}

impl OfferView {
    pub fn new(o: &Offer, t: &OfferTerms) -> Self {
        // The VAT of one month's fee, rounded as the invoice rounds it.
        let vat = t
            .monthly_price
            .mul_div_round(t.vat_rate_bp, 10_000)
            .map_or(0, |c| c.0);
        OfferView {
            id: o.id.to_string(),
            code: o.code.clone(),
            name: t.name.clone(),
            description: o.description.clone(),
            monthly_price: t.monthly_price.0,
            monthly_vat: vat,
            monthly_price_incl: t.monthly_price.0 + vat,
            vat_rate_bp: t.vat_rate_bp,
            includes: t.includes,
            storage_gb_month: t.usage.storage_gb_month.0,
            egress_gb: t.usage.egress_gb.0,
            public_ip_month: t.usage.public_ip_month.0,
            commitment_months: t.commitment_months,
            multiple_allowed: o.multiple_allowed,
            active: o.status == "active",
            created_at: when(o.created_at),
            retired_at: when_opt(o.retired_at),
        }
    }
}

#[derive(Serialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub offer_id: String,
    pub offer_name: String,
    pub monthly_price: i64,
    pub vat_rate_bp: i64,
    pub status: String,
    pub start_date: String,
    pub commitment_end: Option<String>,
    pub billed_until: String,
}

impl From<&SubscriptionView> for SubscriptionRow {
    fn from(v: &SubscriptionView) -> Self {
        SubscriptionRow {
            id: v.sub.id.to_string(),
            offer_id: v.sub.offer_id.to_string(),
            offer_name: v.terms.name.clone(),
            monthly_price: v.terms.monthly_price.0,
            vat_rate_bp: v.terms.vat_rate_bp,
            status: v.sub.status.clone(),
            start_date: v.sub.start_date.clone(),
            commitment_end: v.sub.commitment_end.clone(),
            billed_until: v.sub.billed_until.clone(),
        }
    }
}

/// An invoice or credit note in a list.
#[derive(Serialize)]
pub struct DocumentRow {
    pub id: String,
    pub kind: String,
    pub number: String,
    pub issue_date: String,
    pub due_date: Option<String>,
    pub total_excl: i64,
    pub total_vat: i64,
    pub total_incl: i64,
    pub url: String,
    pub pdf_url: String,
    /// The VAT rates of the document (a partial credit note names one of them).
    pub vat_rates: Vec<i64>,
}

fn document_path(kind: &str) -> &'static str {
    match kind {
        "invoice" => "/account/invoices",
        _ => "/account/credit-notes",
    }
}

impl From<&InvoiceRecord> for DocumentRow {
    fn from(d: &InvoiceRecord) -> Self {
        let base = document_path(&d.kind);
        DocumentRow {
            id: d.id.to_string(),
            kind: d.kind.clone(),
            number: d.number.clone(),
            issue_date: d.issue_date.clone(),
            due_date: d.due_date.clone(),
            total_excl: d.total_excl.0,
            total_vat: d.total_vat.0,
            total_incl: d.total_incl.0,
            url: format!("{base}/{}", d.id),
            pdf_url: format!("{base}/{}/pdf", d.id),
            vat_rates: d
                .vat
                .as_array()
                .map(|a| a.iter().filter_map(|v| v["rate_bp"].as_i64()).collect())
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
pub struct LineView {
    pub description: String,
    pub period_start: String,
    pub period_end: String,
    pub quantity_milli: i64,
    pub unit_price: i64,
    pub amount: i64,
    pub vat_rate_bp: i64,
}

#[derive(Serialize)]
pub struct VatView {
    pub rate_bp: i64,
    pub base: i64,
    pub vat: i64,
}

#[derive(Serialize)]
pub struct PartyView {
    pub name: String,
    pub company_name: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
}

impl PartyView {
    fn of(v: &serde_json::Value, id_key: &str) -> Self {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        PartyView {
            name: s("name").unwrap_or_default(),
            company_name: s("company_name"),
            address_line1: s("address_line1").unwrap_or_default(),
            address_line2: s("address_line2"),
            postal_code: s("postal_code").unwrap_or_default(),
            city: s("city").unwrap_or_default(),
            country: s("country").unwrap_or_default(),
            company_id: s(id_key),
            vat_number: s("vat_number"),
        }
    }
}

/// One document with its lines, as issued (nothing is recomputed).
#[derive(Serialize)]
pub struct DocumentView {
    #[serde(flatten)]
    pub row: DocumentRow,
    pub subscriber_id: String,
    pub seller: PartyView,
    pub buyer: PartyView,
    pub lines: Vec<LineView>,
    pub vat: Vec<VatView>,
    pub note: Option<String>,
}

impl From<&InvoiceRecord> for DocumentView {
    fn from(d: &InvoiceRecord) -> Self {
        let (lines, vat) = maocloud_app::billing::stored_parts(d);
        DocumentView {
            row: DocumentRow::from(d),
            subscriber_id: d.subscriber_id.to_string(),
            seller: PartyView::of(&d.seller, "siren"),
            buyer: PartyView::of(&d.buyer, "company_id"),
            lines: lines
                .into_iter()
                .map(|l| LineView {
                    description: l.description,
                    period_start: l.period_start,
                    period_end: l.period_end,
                    quantity_milli: l.quantity_milli,
                    unit_price: l.unit_price_cents,
                    amount: l.amount_cents,
                    vat_rate_bp: l.vat_rate_bp,
                })
                .collect(),
            vat: vat
                .into_iter()
                .map(|v| VatView {
                    rate_bp: v.rate_bp,
                    base: v.base_cents,
                    vat: v.vat_cents,
                })
                .collect(),
            note: d.note.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct OutstandingView {
    pub invoice_id: String,
    pub number: String,
    pub due_date: Option<String>,
    pub total_incl: i64,
    pub paid: i64,
    pub credited: i64,
    pub remaining: i64,
}

impl From<&Outstanding> for OutstandingView {
    fn from(o: &Outstanding) -> Self {
        OutstandingView {
            invoice_id: o.invoice_id.to_string(),
            number: o.number.clone(),
            due_date: o.due_date.clone(),
            total_incl: o.total_incl.0,
            paid: o.paid.0,
            credited: o.credited.0,
            remaining: o.remaining().0,
        }
    }
}

#[derive(Serialize)]
pub struct PaymentView {
    pub amount: i64,
    pub method: String,
    pub reference: String,
    pub received_on: String,
    pub recorded_by: String,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        PaymentView {
            amount: p.amount.0,
            method: p.method.clone(),
            reference: p.reference.clone(),
            received_on: p.received_on.clone(),
            recorded_by: p.recorded_by.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct PrintItemView {
    pub invoice_id: String,
    pub url: String,
    pub number: String,
    pub subscriber_id: String,
    pub queued_at: When,
    pub mailed_at: Option<When>,
}

impl From<&PrintItem> for PrintItemView {
    fn from(p: &PrintItem) -> Self {
        // The queue holds credit notes too (their series is `A…`), and says so only by number.
        let kind = if p.number.starts_with('A') {
            "credit_note"
        } else {
            "invoice"
        };
        PrintItemView {
            url: format!("{}/{}", document_path(kind), p.invoice_id),
            invoice_id: p.invoice_id.to_string(),
            number: p.number.clone(),
            subscriber_id: p.subscriber_id.to_string(),
            queued_at: when(p.queued_at),
            mailed_at: when_opt(p.mailed_at),
        }
    }
}

/// The balance: what is due, the invoices still open, the payments received.
#[derive(Serialize)]
pub struct BalanceView {
    pub due: i64,
    pub open: Vec<OutstandingView>,
    pub payments: Vec<PaymentView>,
}

impl BalanceView {
    pub fn new(b: &(Vec<Outstanding>, maocloud_types::Cents, Vec<Payment>)) -> Self {
        BalanceView {
            due: b.1 .0,
            open: b.0.iter().map(OutstandingView::from).collect(),
            payments: b.2.iter().map(PaymentView::from).collect(),
        }
    }
}
