//! Keeping the store whole and billed: deleting the bytes of extents no row names any more,
//! sweeping orphans a crash left between writing bytes and committing, the scrub that verifies
//! every shard and repairs what is missing or corrupt (R-1b), and the hourly storage sample
//! that becomes GB-months on the invoice (R-6.1b).

use super::store;
use crate::{App, Ctx, Error, Result};
use maocloud_billing::calendar::paris_date;
use maocloud_objstore::{Extent, StoreStatus};
use maocloud_types::{OperatorRole, Timestamp};
use std::sync::Mutex;
use std::time::Duration;

/// How long replaced bytes stay readable: a GET that started before an overwrite finishes.
pub const GARBAGE_GRACE: Duration = Duration::from_secs(60);
/// Bytes on disk with no row for this long are orphans of a crash.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Deletes the bytes of extents let go of more than `grace` ago; returns how many.
pub async fn collect_garbage(app: &App, grace: Duration) -> Result<usize> {
    let store = store(app)?.clone();
    let before = app
        .now()
        .checked_sub(jiff::SignedDuration::try_from(grace).map_err(Error::internal)?)
        .map_err(Error::internal)?;
    let mut done = 0;
    loop {
        let batch = app.db().read().await?.garbage_peek(before, 200).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for (id, json) in batch {
            let extent: Extent = serde_json::from_str(&json).map_err(Error::internal)?;
            store.delete(&extent).await.map_err(Error::internal)?;
            let mut tx = app.db().write().await?;
            tx.garbage_done(&id).await?;
            tx.commit().await?;
            done += 1;
        }
    }
}

/// Removes bytes older than `age` that no row names; returns how many extents.
pub async fn sweep_orphans(app: &App, age: Duration) -> Result<usize> {
    let store = store(app)?.clone();
    let ids: Vec<String> = store
        .stored_ids(age)
        .await
        .map_err(Error::internal)?
        .into_iter()
        .map(|u| u.to_string())
        .collect();
    let known = app.db().read().await?.extents_known(&ids).await?;
    let mut removed = 0;
    for id in ids.iter().filter(|i| !known.contains(i)) {
        let uuid = id.parse().map_err(Error::internal)?;
        store.remove_orphan(uuid).await.map_err(Error::internal)?;
        tracing::info!(extent = %id, "removed the bytes of an interrupted write");
        removed += 1;
    }
    Ok(removed)
}

/// Where the scrub stands, for `maocloud storage status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScrubProgress {
    /// Objects verified in the pass under way.
    pub objects_checked: u64,
    /// Objects in the index when the pass started.
    pub objects_total: u64,
    pub missing: u64,
    pub corrupt: u64,
    pub repaired: u64,
    /// Objects that lost more shards than the parity can rebuild.
    pub unrecoverable: Vec<String>,
    pub pass_started_at: Option<Timestamp>,
    pub last_pass_finished_at: Option<Timestamp>,
    #[serde(skip)]
    cursor: Option<(String, String)>,
}

/// The scrub's state, kept in memory by the process that runs it.
#[derive(Default)]
pub struct Scrubber(Mutex<ScrubProgress>);

impl Scrubber {
    pub fn progress(&self) -> ScrubProgress {
        self.0.lock().expect("scrub lock").clone()
    }
}

/// Verifies (and repairs) up to `batch` objects, continuing where the last step stopped;
/// returns true when a pass just finished.
pub async fn scrub_step(app: &App, batch: i64) -> Result<bool> {
    let store = store(app)?.clone();
    let cursor = {
        let mut p = app.scrubber().0.lock().expect("scrub lock");
        if p.pass_started_at.is_none() {
            *p = ScrubProgress {
                pass_started_at: Some(app.now()),
                last_pass_finished_at: p.last_pass_finished_at,
                ..Default::default()
            };
        }
        p.cursor.clone()
    };
    if cursor.is_none() {
        let total: i64 = app
            .db()
            .read()
            .await?
            .storage_usage_all()
            .await?
            .iter()
            .map(|u| u.objects)
            .sum();
        app.scrubber().0.lock().expect("scrub lock").objects_total = total as u64;
    }
    let rows = app
        .db()
        .read()
        .await?
        .object_scan(
            cursor.as_ref().map(|(b, k)| (b.as_str(), k.as_str())),
            batch,
        )
        .await?;
    for o in &rows {
        // The batch was read a while ago: an object deleted or overwritten since (its bytes
        // perhaps already collected) is not scrubbed, nor reported as lost.
        if !still_current(app, o).await? {
            let mut p = app.scrubber().0.lock().expect("scrub lock");
            p.cursor = Some((o.bucket.clone(), o.key.clone()));
            continue;
        }
        let extents: Vec<Extent> = serde_json::from_str(&o.extents).map_err(Error::internal)?;
        let mut lost = false;
        let mut sum = maocloud_objstore::ScrubOutcome::default();
        for e in &extents {
            let r = store.scrub(e).await.map_err(Error::internal)?;
            sum.missing += r.missing;
            sum.corrupt += r.corrupt;
            sum.repaired += r.repaired;
            lost |= r.unrecoverable;
        }
        if lost && !still_current(app, o).await? {
            continue;
        }
        if sum.missing + sum.corrupt > 0 {
            tracing::warn!(bucket = %o.bucket, key = %o.key, missing = sum.missing, corrupt = sum.corrupt, repaired = sum.repaired, "scrub found damaged shards");
        }
        let mut p = app.scrubber().0.lock().expect("scrub lock");
        p.objects_checked += 1;
        p.missing += sum.missing;
        p.corrupt += sum.corrupt;
        p.repaired += sum.repaired;
        if lost {
            tracing::error!(bucket = %o.bucket, key = %o.key, "object lost more shards than the parity can rebuild");
            p.unrecoverable.push(format!("{}/{}", o.bucket, o.key));
        }
        p.cursor = Some((o.bucket.clone(), o.key.clone()));
    }
    if (rows.len() as i64) < batch {
        let mut p = app.scrubber().0.lock().expect("scrub lock");
        p.cursor = None;
        p.pass_started_at = None;
        p.last_pass_finished_at = Some(app.now());
        return Ok(true);
    }
    Ok(false)
}

async fn still_current(app: &App, o: &maocloud_datastore::storage::Object) -> Result<bool> {
    match app.db().read().await?.object_fetch(&o.bucket, &o.key).await {
        Ok(now) => Ok(now.version == o.version),
        Err(maocloud_datastore::Error::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs a whole scrub pass now (tests, `maocloud storage scrub`).
pub async fn scrub_all(app: &App) -> Result<ScrubProgress> {
    loop {
        if scrub_step(app, 100).await? {
            let mut p = app.scrubber().progress();
            p.pass_started_at = None;
            return Ok(p);
        }
    }
}

/// Records `hours` of storage for every subscriber as byte-hours, at their current totals
/// (the sampler calls this every hour; the invoice turns byte-hours into GB-months).
pub async fn sample_usage(app: &App, hours: i64) -> Result<usize> {
    let day = paris_date(app.now());
    let all = app.db().read().await?.storage_usage_all().await?;
    let mut tx = app.db().write().await?;
    for u in &all {
        if u.bytes > 0 {
            tx.usage_record(
                u.subscriber_id,
                "storage_byte_hours",
                u.bytes.saturating_mul(hours),
                &day.to_string(),
                "storage",
                app.now(),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(all.len())
}

/// Disks, health and repair progress, for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub store: StoreStatus,
    pub scrub: ScrubProgress,
    pub garbage_pending: usize,
}

pub async fn status(app: &App, ctx: &Ctx) -> Result<Status> {
    ctx.require_operator(&[OperatorRole::Support])?;
    let store = store(app)?;
    let garbage = app.db().read().await?.garbage_count().await?;
    Ok(Status {
        store: store.status(),
        scrub: app.scrubber().progress(),
        garbage_pending: garbage as usize,
    })
}
