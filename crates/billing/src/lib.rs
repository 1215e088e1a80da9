//! Billing arithmetic, free of I/O: calendar periods in Europe/Paris, pro rata by the day,
//! offer terms, usage beyond the inclusion, invoice lines, VAT by rate and totals, invoice
//! numbers. Everything here is deterministic integer arithmetic on cents, so every rule of
//! is tested exactly; the application services store and issue what it computes.

pub mod calendar;
pub mod invoice;
pub mod offer;
pub mod sepa;

pub use calendar::{days_in_month, month_end, month_start, paris_date, Period};
pub use invoice::{Draft, DraftLine, LineKind, VatBreakdown};
pub use offer::{Inclusions, OfferTerms, UsagePrices};
