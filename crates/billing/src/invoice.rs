//! Composing an invoice (R-6.1a, R-6.1b, R-3.2): flat fees in advance (pro rata by the day for
//! a partial month), usage beyond the inclusion in arrears, offer-change adjustments pro rata
//! from the change date; VAT per rate and totals excluding and including VAT.

use crate::calendar::{days_in_month, Period};
use crate::offer::OfferTerms;
use maocloud_types::Cents;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// The flat fee for a coming period.
    Advance,
    /// Usage beyond the inclusion for a past month.
    Arrears,
    /// Offer change: the old fee credited and the new fee charged from the change date.
    Adjustment,
}

/// What a line charges for, so its wording can be written in the invoice's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "what")]
pub enum Item {
    Subscription {
        offer: String,
    },
    StorageOverage,
    EgressOverage,
    PublicIpOverage,
    ChangeCredit {
        offer: String,
    },
    ChangeCharge {
        offer: String,
    },
    /// R-7.3c: flat fee prepaid for days after the end of a terminated contract, credited.
    TerminationCredit {
        offer: String,
    },
    /// R-7.2c: a monthly fee still due up to the end of the initial commitment.
    CommitmentDue {
        offer: String,
    },
    /// compensation granted for an incident.
    Compensation {
        incident: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftLine {
    pub kind: LineKind,
    pub item: Item,
    pub period: (jiff::civil::Date, jiff::civil::Date),
    /// Quantity in thousandths (1000 = 1 month, 1 GB…).
    pub quantity_milli: i64,
    /// Unit price excluding VAT.
    pub unit_price: Cents,
    /// Amount excluding VAT (negative for credits).
    pub amount: Cents,
    pub vat_rate_bp: i64,
}

/// Usage of one subscription over one month, in base units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes stored × hours.
    pub storage_byte_hours: i128,
    pub egress_bytes: i128,
    /// Public IPs × hours.
    pub public_ip_hours: i128,
}

/// VAT for one rate: the base (sum of lines at that rate) and the tax, rounded once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatBreakdown {
    pub rate_bp: i64,
    pub base: Cents,
    pub vat: Cents,
}

/// An invoice being composed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub lines: Vec<DraftLine>,
}

fn round_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d.abs() {
        q + n.signum() * d.signum()
    } else {
        q
    }
}

/// The flat fee of `terms` for `period` (a whole month, or pro rata by the day).
pub fn advance_line(terms: &OfferTerms, period: Period) -> DraftLine {
    let dim = days_in_month(period.start);
    let days = period.days();
    let amount = terms
        .monthly_price
        .mul_div_round(days, dim)
        .expect("fees fit in i64");
    DraftLine {
        kind: LineKind::Advance,
        item: Item::Subscription {
            offer: terms.name.clone(),
        },
        period: (period.start, period.end),
        quantity_milli: round_div(i128::from(days) * 1000, i128::from(dim)) as i64,
        unit_price: terms.monthly_price,
        amount,
        vat_rate_bp: terms.vat_rate_bp,
    }
}

/// an offer change on `period.start` credits the old fee and charges the new one for the
/// rest of that month, pro rata by the day. No fee for the change itself.
pub fn change_lines(old: &OfferTerms, new: &OfferTerms, period: Period) -> [DraftLine; 2] {
    let mut credit = advance_line(old, period);
    credit.kind = LineKind::Adjustment;
    credit.item = Item::ChangeCredit {
        offer: old.name.clone(),
    };
    credit.amount = Cents(-credit.amount.0);
    credit.quantity_milli = -credit.quantity_milli;
    let mut charge = advance_line(new, period);
    charge.kind = LineKind::Adjustment;
    charge.item = Item::ChangeCharge {
        offer: new.name.clone(),
    };
    [credit, charge]
}

/// R-7.3c: credits the flat fee of `terms` prepaid for `period` (after a contract's end), one
/// line per month, pro rata by the day.
pub fn termination_credit_lines(terms: &OfferTerms, period: Period) -> Vec<DraftLine> {
    months(period)
        .map(|p| {
            let mut l = advance_line(terms, p);
            l.kind = LineKind::Adjustment;
            l.item = Item::TerminationCredit {
                offer: terms.name.clone(),
            };
            l.amount = Cents(-l.amount.0);
            l.quantity_milli = -l.quantity_milli;
            l
        })
        .collect()
}

/// R-7.2c: the monthly fees from the day after a contract's end up to the end of its
/// commitment, one line per month (pro rata by the day for a partial month).
pub fn commitment_lines(terms: &OfferTerms, period: Period) -> Vec<DraftLine> {
    months(period)
        .map(|p| {
            let mut l = advance_line(terms, p);
            l.item = Item::CommitmentDue {
                offer: terms.name.clone(),
            };
            l
        })
        .collect()
}

/// `period` cut at month boundaries.
fn months(period: Period) -> impl Iterator<Item = Period> {
    let mut start = Some(period.start);
    std::iter::from_fn(move || {
        let s = start.filter(|s| *s <= period.end)?;
        let end = crate::calendar::month_end(s).min(period.end);
        start = end.tomorrow().ok();
        Some(Period { start: s, end })
    })
}

const GB: i128 = 1_000_000_000;

/// R-6.1b: usage beyond the inclusion over `month`, in arrears. Months are counted as
/// days × 24 hours. Lines are only written for usage that exceeds the inclusion.
pub fn arrears_lines(terms: &OfferTerms, usage: &Usage, month: Period) -> Vec<DraftLine> {
    let hours = i128::from(month.days()) * 24;
    let mut out = vec![];
    let mut over = |item: Item, used_milli: i128, included: i64, price: Cents| {
        let over_milli = used_milli - i128::from(included) * 1000;
        if over_milli <= 0 || price.0 == 0 {
            return;
        }
        let amount = round_div(over_milli * i128::from(price.0), 1000);
        out.push(DraftLine {
            kind: LineKind::Arrears,
            item,
            period: (month.start, month.end),
            quantity_milli: i64::try_from(over_milli).unwrap_or(i64::MAX),
            unit_price: price,
            amount: Cents(i64::try_from(amount).unwrap_or(i64::MAX)),
            vat_rate_bp: terms.vat_rate_bp,
        });
    };
    over(
        Item::StorageOverage,
        round_div(usage.storage_byte_hours * 1000, GB * hours),
        terms.includes.storage_gb,
        terms.usage.storage_gb_month,
    );
    over(
        Item::EgressOverage,
        round_div(usage.egress_bytes * 1000, GB),
        terms.includes.egress_gb,
        terms.usage.egress_gb,
    );
    over(
        Item::PublicIpOverage,
        round_div(usage.public_ip_hours * 1000, hours),
        terms.includes.public_ips,
        terms.usage.public_ip_month,
    );
    out
}

impl Draft {
    /// VAT per rate, highest rate first; each rate's tax rounded once on its base.
    pub fn vat_breakdown(&self) -> Vec<VatBreakdown> {
        let mut by_rate: BTreeMap<i64, i64> = BTreeMap::new();
        for l in &self.lines {
            *by_rate.entry(l.vat_rate_bp).or_default() += l.amount.0;
        }
        by_rate
            .into_iter()
            .rev()
            .map(|(rate_bp, base)| VatBreakdown {
                rate_bp,
                base: Cents(base),
                vat: Cents(base)
                    .mul_div_round(rate_bp, 10_000)
                    .expect("VAT fits"),
            })
            .collect()
    }
    pub fn total_excl(&self) -> Cents {
        Cents(self.lines.iter().map(|l| l.amount.0).sum())
    }
    pub fn total_vat(&self) -> Cents {
        Cents(self.vat_breakdown().iter().map(|v| v.vat.0).sum())
    }
    pub fn total_incl(&self) -> Cents {
        Cents(self.total_excl().0 + self.total_vat().0)
    }
}

/// a compensation of `amount` excluding VAT, as a credit-note line.
pub fn compensation_line(
    incident: &str,
    amount: Cents,
    vat_rate_bp: i64,
    day: jiff::civil::Date,
) -> DraftLine {
    DraftLine {
        kind: LineKind::Adjustment,
        item: Item::Compensation {
            incident: incident.to_string(),
        },
        period: (day, day),
        quantity_milli: 1000,
        unit_price: amount,
        amount,
        vat_rate_bp,
    }
}

/// `F2026-000123`: series prefix, year, and the gapless sequence number in that series.
pub fn number(prefix: &str, year: i16, seq: i64) -> String {
    format!("{prefix}{year}-{seq:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offer::{Inclusions, UsagePrices};
    use jiff::civil::date;

    fn terms(name: &str, price: i64) -> OfferTerms {
        OfferTerms {
            name: name.into(),
            monthly_price: Cents(price),
            vat_rate_bp: 2000,
            includes: Inclusions {
                storage_gb: 100,
                egress_gb: 1000,
                public_ips: 1,
                ..Default::default()
            },
            usage: UsagePrices {
                storage_gb_month: Cents(2),
                egress_gb: Cents(1),
                public_ip_month: Cents(300),
            },
            commitment_months: 0,
        }
    }

    // R-6.1a: the first period is charged pro rata by the day, in advance.
    #[test]
    fn first_month_is_prorated_by_the_day() {
        let l = advance_line(&terms("S", 3000), Period::rest_of_month(date(2026, 11, 26)));
        // 5 days of November's 30: 30.00 × 5/30 = 5.00
        assert_eq!(l.amount, Cents(500));
        assert_eq!(l.quantity_milli, 167);
        let l = advance_line(&terms("S", 999), Period::rest_of_month(date(2028, 2, 15)));
        // 15 days of a leap February's 29: 9.99 × 15/29 = 5.1672… → 5.17
        assert_eq!(l.amount, Cents(517));
        let l = advance_line(&terms("S", 999), Period::month_of(date(2026, 12, 1)));
        assert_eq!((l.amount, l.quantity_milli), (Cents(999), 1000));
    }

    // the new price applies from the change date, pro rata; no change fee.
    #[test]
    fn offer_change_credits_the_old_fee_and_charges_the_new() {
        let [credit, charge] = change_lines(
            &terms("S", 3000),
            &terms("M", 6000),
            Period::rest_of_month(date(2026, 12, 17)),
        );
        // 15 days of December's 31.
        assert_eq!(credit.amount, Cents(-1452)); // 30.00 × 15/31 = 14.516 → 14.52
        assert_eq!(charge.amount, Cents(2903)); // 60.00 × 15/31 = 29.032 → 29.03
        let d = Draft {
            lines: vec![credit, charge],
        };
        assert_eq!(d.total_excl(), Cents(1451));
    }

    // R-6.1b: only usage beyond the inclusion is billed, in arrears.
    #[test]
    fn usage_beyond_the_inclusion() {
        let month = Period::month_of(date(2026, 11, 1)); // 720 hours
        let usage = Usage {
            // 150 GB all month → 50 GB-month over 100 included
            storage_byte_hours: 150 * GB * 720,
            // 1234.5 GB out → 234.5 GB over
            egress_bytes: 1_234_500_000_000,
            // 2 IPs for half the month → 1 IP-month, within the 1 included
            public_ip_hours: 2 * 360,
        };
        let lines = arrears_lines(&terms("S", 3000), &usage, month);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (
                lines[0].item.clone(),
                lines[0].quantity_milli,
                lines[0].amount
            ),
            (Item::StorageOverage, 50_000, Cents(100))
        );
        assert_eq!(
            (
                lines[1].item.clone(),
                lines[1].quantity_milli,
                lines[1].amount
            ),
            (Item::EgressOverage, 234_500, Cents(235))
        );
        assert!(arrears_lines(&terms("S", 3000), &Usage::default(), month).is_empty());
    }

    #[test]
    fn vat_is_computed_per_rate_on_the_base() {
        let mut a = advance_line(&terms("S", 333), Period::month_of(date(2026, 12, 1)));
        let b = a.clone();
        a.vat_rate_bp = 550;
        let d = Draft {
            lines: vec![a, b.clone(), b],
        };
        let v = d.vat_breakdown();
        assert_eq!(
            v,
            vec![
                VatBreakdown {
                    rate_bp: 2000,
                    base: Cents(666),
                    vat: Cents(133)
                },
                VatBreakdown {
                    rate_bp: 550,
                    base: Cents(333),
                    vat: Cents(18)
                },
            ]
        );
        assert_eq!(
            (d.total_excl(), d.total_vat(), d.total_incl()),
            (Cents(999), Cents(151), Cents(1150))
        );
    }

    #[test]
    fn numbers_are_padded_per_series() {
        assert_eq!(number("F", 2026, 123), "F2026-000123");
        assert_eq!(number("A", 2027, 1), "A2027-000001");
    }

    #[test]
    fn r_7_2c_commitment_dues_are_the_remaining_months() {
        // Ends 2027-04-30 in a commitment to 2027-12-31: May..December, 8 whole fees.
        let t = terms("Cloud M", 2_000);
        let l = commitment_lines(
            &t,
            Period {
                start: date(2027, 5, 1),
                end: date(2027, 12, 31),
            },
        );
        assert_eq!(l.len(), 8);
        assert!(l
            .iter()
            .all(|l| l.amount == Cents(2_000) && l.quantity_milli == 1000));
        // Ends on the 20th of a 30-day month: 10/30 of April, then whole months.
        let l = commitment_lines(
            &t,
            Period {
                start: date(2027, 4, 21),
                end: date(2027, 6, 30),
            },
        );
        assert_eq!(
            l.iter().map(|l| l.amount.0).collect::<Vec<_>>(),
            vec![667, 2_000, 2_000]
        );
    }

    #[test]
    fn r_7_3c_prepaid_days_after_the_end_are_credited() {
        // February of a leap year: 29 days; ending on the 10th credits 19/29.
        let t = terms("Cloud M", 2_900);
        let l = termination_credit_lines(
            &t,
            Period {
                start: date(2028, 2, 11),
                end: date(2028, 2, 29),
            },
        );
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].amount, Cents(-1_900));
        assert_eq!(
            l[0].item,
            Item::TerminationCredit {
                offer: "Cloud M".into()
            }
        );
    }
}
