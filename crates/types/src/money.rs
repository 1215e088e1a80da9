//! Money as integer cents of euro: never a float, overflow is an error rather than a wrap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in euro cents. Negative amounts exist (credit notes, balances).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }
    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }
    pub fn checked_mul(self, n: i64) -> Option<Cents> {
        self.0.checked_mul(n).map(Cents)
    }
    /// `self * num / den`, rounded half away from zero — the rounding French invoices use for
    /// pro-rata and VAT amounts. `None` on overflow or a zero denominator.
    pub fn mul_div_round(self, num: i64, den: i64) -> Option<Cents> {
        if den == 0 {
            return None;
        }
        let p = (self.0 as i128).checked_mul(num as i128)?;
        let d = den as i128;
        let q = p / d;
        let r = p % d;
        let q = if 2 * r.abs() >= d.abs() {
            q + (p.signum() * d.signum())
        } else {
            q
        };
        i64::try_from(q).ok().map(Cents)
    }
}

impl fmt::Display for Cents {
    /// `12.34 EUR`, `-0.05 EUR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02} EUR", a / 100, a % 100)
    }
}

impl fmt::Debug for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cents({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_sign() {
        assert_eq!(Cents(1234).to_string(), "12.34 EUR");
        assert_eq!(Cents(-5).to_string(), "-0.05 EUR");
        assert_eq!(Cents(0).to_string(), "0.00 EUR");
    }

    #[test]
    fn mul_div_rounds_half_away_from_zero() {
        // 10.00 EUR for 15 days of a 30-day month
        assert_eq!(Cents(1000).mul_div_round(15, 30), Some(Cents(500)));
        // 9.99 * 1/2 = 4.995 -> 5.00
        assert_eq!(Cents(999).mul_div_round(1, 2), Some(Cents(500)));
        assert_eq!(Cents(-999).mul_div_round(1, 2), Some(Cents(-500)));
        // 20 % VAT of 0.33 = 0.066 -> 0.07
        assert_eq!(Cents(33).mul_div_round(20, 100), Some(Cents(7)));
        assert_eq!(Cents(1).mul_div_round(1, 0), None);
        assert_eq!(Cents(i64::MAX).checked_add(Cents(1)), None);
    }
}
