//! Shared vocabulary of Maocloud: typed ids, money in integer cents, time and the injectable clock,
//! roles and principals, and the validators for what subscribers type in (email, SIREN/SIRET, VAT).
//!
//! This crate knows nothing about HTTP, SQL or I/O: every other crate depends on it, it depends on
//! none of them.

pub mod clock;
pub mod id;
pub mod money;
pub mod page;
pub mod principal;
pub mod validate;

pub use clock::{Clock, FixedClock, SystemClock, Timestamp};
pub use id::*;
pub use money::Cents;
pub use page::{Page, PageRequest};
pub use principal::{OperatorRole, Principal};

/// Compares two secrets in time that depends on their length only, so a guess cannot be
/// refined by timing. Different lengths are simply unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
