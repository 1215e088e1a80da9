//! What an offer promises: a monthly flat fee excluding VAT, a VAT rate, inclusions that
//! become quotas, prices for usage beyond them, and an optional 12-month commitment (R-7a).
//! A subscription keeps a copy of these terms: a later change of the offer never rewrites it.

use maocloud_types::Cents;
use serde::{Deserialize, Serialize};

/// Quantities included in the monthly fee (and the subscriber's quotas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inclusions {
    pub vcpus: i64,
    pub ram_mib: i64,
    pub disk_gib: i64,
    pub vms: i64,
    pub storage_gb: i64,
    pub egress_gb: i64,
    pub public_ips: i64,
}

/// Prices, excluding VAT, of usage beyond the inclusions (billed in arrears, R-6.1b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsagePrices {
    /// Per GB-month stored beyond `storage_gb`.
    pub storage_gb_month: Cents,
    /// Per GB of egress beyond `egress_gb`.
    pub egress_gb: Cents,
    /// Per public IP-month beyond `public_ips`.
    pub public_ip_month: Cents,
}

/// The contractual terms of an offer, as copied into each subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferTerms {
    pub name: String,
    /// Monthly flat fee, excluding VAT.
    pub monthly_price: Cents,
    /// VAT rate in basis points (2000 = 20 %).
    pub vat_rate_bp: i64,
    pub includes: Inclusions,
    pub usage: UsagePrices,
    /// 0 (none) or 12 months (R-7a).
    pub commitment_months: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct TermsError {
    pub field: &'static str,
    pub reason: &'static str,
}

/// Largest amount accepted anywhere in an offer: 1,000,000.00 EUR.
pub const MAX_PRICE: Cents = Cents(100_000_000);

impl OfferTerms {
    /// Checks the terms are sane: no negative or absurd amount, a known VAT rate, a commitment
    /// of 0 or 12 months.
    pub fn validate(&self) -> Result<(), TermsError> {
        let err = |field, reason| Err(TermsError { field, reason });
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return err("name", "must be 1 to 100 characters");
        }
        for (field, v) in [
            ("monthly_price_cents", self.monthly_price),
            ("usage.storage_gb_month_cents", self.usage.storage_gb_month),
            ("usage.egress_gb_cents", self.usage.egress_gb),
            ("usage.public_ip_month_cents", self.usage.public_ip_month),
        ] {
            if v.0 < 0 || v > MAX_PRICE {
                return err(field, "must be between 0 and 100000000 cents");
            }
        }
        // French rates: standard, intermediate, reduced, super-reduced, and 0 (exports, reverse charge).
        if ![2000, 1000, 550, 210, 0].contains(&self.vat_rate_bp) {
            return err(
                "vat_rate_bp",
                "must be a French VAT rate: 2000, 1000, 550, 210 or 0",
            );
        }
        let i = &self.includes;
        for (field, v) in [
            ("includes.vcpus", i.vcpus),
            ("includes.ram_mib", i.ram_mib),
            ("includes.disk_gib", i.disk_gib),
            ("includes.vms", i.vms),
            ("includes.storage_gb", i.storage_gb),
            ("includes.egress_gb", i.egress_gb),
            ("includes.public_ips", i.public_ips),
        ] {
            if !(0..=10_000_000).contains(&v) {
                return err(field, "must be between 0 and 10000000");
            }
        }
        if ![0, 12].contains(&self.commitment_months) {
            return err("commitment_months", "must be 0 or 12");
        }
        Ok(())
    }

    /// Whether a subscriber using `used` fits in these inclusions; the first quantity that does
    /// not fit is named (R-3.2: an offer change happens only if current resources fit).
    pub fn fits(&self, used: &Inclusions) -> Result<(), &'static str> {
        let i = &self.includes;
        for (name, have, need) in [
            ("vCPUs", i.vcpus, used.vcpus),
            ("RAM", i.ram_mib, used.ram_mib),
            ("disk", i.disk_gib, used.disk_gib),
            ("virtual machines", i.vms, used.vms),
            ("object storage", i.storage_gb, used.storage_gb),
            ("public IPs", i.public_ips, used.public_ips),
        ] {
            if need > have {
                return Err(name);
            }
        }
        Ok(())
    }
}
