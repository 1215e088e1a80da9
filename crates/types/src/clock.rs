//! Time: the one `Timestamp` type stored and shown everywhere, and the injectable `Clock` every
//! date rule reads, so tests (and test clocks) decide what "now" is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub use jiff::Timestamp;

/// Where "now" comes from. Production uses [`SystemClock`]; tests use [`FixedClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to. Cloning shares the same instant.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<AtomicI64>);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(at.as_microsecond())))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_microsecond(), Ordering::SeqCst);
    }
    pub fn advance(&self, by: jiff::SignedDuration) {
        let us = i64::try_from(by.as_micros()).expect("advance fits in i64 microseconds");
        self.0.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.0.load(Ordering::SeqCst)).expect("clock within range")
    }
}

/// Microseconds since the Unix epoch: how timestamps are stored in the database.
pub fn to_micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the epoch rather than panic.
pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}
