//! Documents a person receives: invoices and credit notes as PDF/A-3b rendered with typst,
//! carrying their Factur-X (EN 16931) CII XML as `factur-x.xml` with the Factur-X XMP
//! metadata. Pure functions from a [`Document`] to bytes; nothing here touches storage.
//!
//! The crate is separate because typst is the heaviest dependency of the platform: only what
//! renders documents compiles it.

mod facturx;
mod pdf;

pub use facturx::cii_xml;
pub use pdf::render;

use serde::Serialize;

/// Everything printed on an invoice or a credit note (R-6.1e's mandatory mentions).
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub number: String,
    /// `YYYY-MM-DD`.
    pub issue_date: String,
    pub due_date: Option<String>,
    /// The invoice a credit note corrects.
    pub credited_number: Option<String>,
    pub seller: Party,
    pub buyer: Party,
    /// The buyer is a professional: the late-payment penalties and the 40 EUR fixed recovery
    /// fee are stated.
    pub buyer_is_professional: bool,
    pub lines: Vec<Line>,
    pub vat: Vec<Vat>,
    pub total_excl: i64,
    pub total_vat: i64,
    pub total_incl: i64,
    pub note: Option<String>,
    /// Late-payment and recovery terms, in French.
    pub payment_terms: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Party {
    pub name: String,
    pub legal_form: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    /// SIREN (or SIRET).
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub registration: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub description: String,
    pub period_start: String,
    pub period_end: String,
    pub quantity_milli: i64,
    pub unit_price: i64,
    pub amount: i64,
    pub vat_rate_bp: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vat {
    pub rate_bp: i64,
    pub base: i64,
    pub vat: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("typst could not lay out the document: {0}")]
    Typst(String),
    #[error("the PDF could not be post-processed: {0}")]
    Pdf(String),
}

/// `12.34` from cents (CII amounts and the template use decimal strings).
pub fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// `0.167` from thousandths.
pub fn quantity(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let a = milli.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// `20.00` from basis points.
pub fn percent(bp: i64) -> String {
    format!("{}.{:02}", bp / 100, bp % 100)
}
