//! Settings the services read: resolved once at start from flags, environment and file by the
//! binary, then passed in. Defaults here are the defaults RULES.md names where the terms are silent.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The seller named on every invoice (R-6.1e): the provider, from the `[seller]` table of the
/// configuration file. The defaults are the provider named in the shipped terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seller {
    pub name: String,
    /// e.g. "SAS au capital de 10 000 EUR".
    pub legal_form: String,
    pub address_line1: String,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub siren: String,
    pub vat_number: String,
    /// e.g. "RCS Amiens 123 456 789".
    pub registration: String,
    pub email: String,
    /// SEPA creditor identifier (ICS), for direct debits.
    pub sepa_creditor_id: String,
    /// The account direct debits are collected to.
    pub iban: String,
    pub bic: String,
}

impl Default for Seller {
    fn default() -> Self {
        Seller {
            name: "Maocloud".into(),
            legal_form: "SAS".into(),
            address_line1: "3 Rue des Alouettes".into(),
            postal_code: "80120".into(),
            city: "Quend".into(),
            country: "FR".into(),
            siren: "000000000".into(),
            vat_number: "FR00000000000".into(),
            registration: "RCS Amiens (à configurer : [seller] dans maocloud.toml)".into(),
            email: "facturation@maocloud.localhost".into(),
            sepa_creditor_id: "FR00ZZZ000000".into(),
            iban: "FR7630006000011234567890189".into(),
            bic: "AGRIFRPPXXX".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the platform keeps its files (SQLite database, Maildir, later disks and images).
    pub data_dir: PathBuf,
    /// The address people use to reach the console, for links in emails.
    pub public_url: String,
    /// `smtp://…`; when absent, mail goes to `<data_dir>/maildir`.
    pub smtp_url: Option<String>,
    /// The S3 endpoint's address as clients use it, when object storage is on.
    pub s3_url: Option<String>,
    /// The sender of every email.
    pub mail_from: String,
    /// Demo mode: seeded accounts; the demo operator may skip TOTP.
    pub demo: bool,
    /// Operators must use TOTP (always, outside demo mode).
    pub operator_totp_required: bool,
    /// Console session lifetime.
    pub session_ttl_hours: i64,
    /// API token lifetime when the caller does not choose one.
    pub token_default_days: i64,
    /// Failed sign-ins allowed per account, then per IP, within the throttle window.
    pub throttle_per_account: i64,
    pub throttle_per_ip: i64,
    pub throttle_window_minutes: i64,
    /// Lifetimes of emailed links.
    pub verify_email_ttl_hours: i64,
    pub reset_password_ttl_minutes: i64,
    /// Mark cookies `Secure` (browsers accept them on http://localhost too).
    pub cookie_secure: bool,
    /// Who issues the invoices.
    pub seller: Seller,
    /// Days between an invoice's issue and its due date.
    pub invoice_due_days: i64,
    /// Days between the pre-notification of a direct debit and its collection (at least 14).
    pub sepa_prenotification_days: i64,
    /// R-7.1b: days after the payment reminder before non-payment suspends (15).
    pub dunning_days: i64,
    /// R-7.1b: suspend for non-payment automatically, or wait for an operator to confirm.
    pub dunning_auto_suspend: bool,
    /// R-7.1d: days after a proof request before an incomplete file may suspend (15).
    pub incomplete_file_days: i64,
    /// R-7.3c: days a terminated subscriber's data stays read-only before it is erased (30).
    pub termination_grace_days: i64,
    /// The first two octets of the private /16 subscribers' networks are carved from (one /24
    /// per subscriber and host), e.g. `10.213`.
    pub compute_pool: String,
    /// The token remote hypervisor agents join with (`maocloud agent --join URL --token T`).
    pub agent_token: Option<String>,
    /// The support desk's address: tickets' reply addresses are `local+<token>@domain` of it.
    pub support_address: String,
    /// The on-call group's address (an alias), warned when a ticket is about to miss its
    /// target; when absent, every operator with the support role is.
    pub support_oncall: Option<String>,
    /// The Maildir the MTA delivers the support address's mail into (replies by email).
    pub support_intake: PathBuf,
    /// the smallest group an anonymised statistic shows (k-anonymity).
    pub privacy_k: i64,
    /// days personal data is kept once every contract is over (default 3 years, the
    /// CNIL's reference for former customers); invoices are kept 10 years by law, sealed.
    pub retention_days: i64,
    /// The data key's file, e.g. on a secrets mount apart from the data; default
    /// `<data_dir>/data.key`.
    pub data_key_file: Option<PathBuf>,
}

impl Settings {
    /// Defaults for a data directory, as `serve` would start.
    pub fn new(data_dir: PathBuf) -> Settings {
        Settings {
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            s3_url: None,
            mail_from: "Maocloud <no-reply@maocloud.localhost>".into(),
            demo: false,
            operator_totp_required: true,
            session_ttl_hours: 12,
            token_default_days: 90,
            throttle_per_account: 5,
            throttle_per_ip: 30,
            throttle_window_minutes: 15,
            verify_email_ttl_hours: 48,
            reset_password_ttl_minutes: 60,
            cookie_secure: true,
            seller: Seller::default(),
            invoice_due_days: 15,
            sepa_prenotification_days: 14,
            dunning_days: 15,
            dunning_auto_suspend: true,
            incomplete_file_days: 15,
            termination_grace_days: 30,
            compute_pool: "10.213".into(),
            agent_token: None,
            support_address: "support@maocloud.localhost".into(),
            support_oncall: None,
            support_intake: data_dir.join("support-intake"),
            privacy_k: 5,
            retention_days: 3 * 365,
            data_key_file: None,
            data_dir,
        }
    }
}
