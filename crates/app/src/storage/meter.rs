//! Request and traffic metering: counted in memory as requests are served (no database write
//! on the hot path), flushed every few seconds into per-day counters and billing's usage
//! records (egress, R-6.1b).

use crate::{App, Result};
use maocloud_billing::calendar::paris_date;
use maocloud_datastore::storage::DayCounters;
use maocloud_types::SubscriberId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counts not yet flushed: `(requests, ingress bytes, egress bytes)` per subscriber.
#[derive(Default)]
pub struct Meter {
    pending: Mutex<HashMap<SubscriberId, (i64, i64, i64)>>,
}

impl Meter {
    pub fn add(&self, who: SubscriberId, requests: i64, ingress: i64, egress: i64) {
        let mut m = self.pending.lock().expect("meter lock");
        let e = m.entry(who).or_default();
        e.0 += requests;
        e.1 += ingress;
        e.2 += egress;
    }

    fn take(&self) -> HashMap<SubscriberId, (i64, i64, i64)> {
        std::mem::take(&mut *self.pending.lock().expect("meter lock"))
    }
}

/// Writes what was counted since the last flush; on failure the counts are put back.
pub async fn flush_meter(app: &App) -> Result<usize> {
    let pending = app.meter().take();
    let day = paris_date(app.now());
    let n = pending.len();
    let mut failed = None;
    for (who, (requests, ingress, egress)) in pending {
        let r = async {
            let mut tx = app.db().write().await?;
            let c = DayCounters {
                day: day.to_string(),
                requests,
                ingress_bytes: ingress,
                egress_bytes: egress,
            };
            tx.storage_counters_add(who, &c).await?;
            if egress > 0 {
                // Billed beyond the offer's included egress (R-6.1b).
                tx.usage_record(who, "egress_bytes", egress, &c.day, "storage", app.now())
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), crate::Error>(())
        }
        .await;
        if let Err(e) = r {
            app.meter().add(who, requests, ingress, egress);
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// A subscriber's counters for the last `days` days (today included), oldest first.
pub async fn counters(app: &App, who: SubscriberId, days: i64) -> Result<Vec<DayCounters>> {
    let today = paris_date(app.now());
    let from = today
        .checked_sub(jiff::Span::new().days(days.clamp(1, 366) - 1))
        .map_err(crate::Error::internal)?;
    Ok(app
        .db()
        .read()
        .await?
        .storage_counters(who, &from.to_string(), &today.to_string())
        .await?)
}
