//! Scrubbing one extent (R-1b): verify every shard, then rebuild the missing and corrupt ones
//! from the others, so that the extent again survives the loss of `m` disks.
//!
//! Verification is by CRC-32C (every chunk), exact file length and trailer; it does not
//! decrypt. A rebuild recovers each block from `k` good chunks, checks its tag (so garbage is
//! never spread), re-encodes it and writes the bad shards like a `put` would (temporary file,
//! fsync, rename, directory fsync). A disk whose directory vanished is recreated first, with a
//! fresh marker. The descriptor is not changed: the rebuilt shard sits on the slot the
//! descriptor names, where `Inner::locate` finds it (see `meta.rs`).
//!
//! A `delete` racing with a scrub of the same extent may leave rebuilt shards behind; they are
//! orphans, found by `stored_ids` like any other.

use crate::engine::{blocking, Inner};
use crate::read::{ExtentReader, Health, Want};
use crate::write::ShardWriter;
use crate::{Error, Extent, Result, ScrubOutcome};
use std::sync::Arc;

pub(crate) async fn scrub(inner: Arc<Inner>, extent: &Extent) -> Result<ScrubOutcome> {
    let reader = ExtentReader::new(&inner, extent)?;
    blocking(move || scrub_blocking(&inner, reader)).await
}

fn scrub_blocking(inner: &Inner, mut reader: ExtentReader) -> Result<ScrubOutcome> {
    let geo = reader.geo;
    let id = reader.id;
    if !reader.moved.is_empty() {
        tracing::warn!(extent = %id, shards = ?reader.moved,
            "the disks recorded for these shards are gone; looking on their slots");
    }
    let mut outcome = ScrubOutcome {
        shards_checked: geo.n() as u64,
        ..ScrubOutcome::default()
    };
    let mut bad = Vec::new();
    for i in 0..geo.n() {
        match reader.verify_shard(i) {
            Health::Good => {}
            Health::Missing => {
                outcome.missing += 1;
                bad.push(i);
            }
            Health::Corrupt => {
                outcome.corrupt += 1;
                bad.push(i);
            }
        }
    }
    if bad.is_empty() {
        return Ok(outcome);
    }
    tracing::warn!(extent = %id, missing = outcome.missing, corrupt = outcome.corrupt, "repairing");

    let mut targets = Vec::new();
    for &i in &bad {
        let Some(d) = reader.disk_of(i) else {
            tracing::warn!(extent = %id, shard = i, "no configured disk for this shard");
            continue;
        };
        match inner.disks[d].prepare() {
            Ok(_) => targets.push((i, d)),
            Err(e) => tracing::warn!(disk = %inner.disks[d].path.display(), error = %e,
                "disk unusable; shard left missing"),
        }
    }
    let mut writer = ShardWriter::create(inner, id, (geo.k, geo.m, geo.block_size), &targets, 0)?;
    for b in 0..geo.blocks() {
        let chunks = reader.read_all_chunks(b);
        match reader.recover(b, &chunks, Want::Ciphertext) {
            Ok(ct) => writer.write_block(&ct, geo.shard_len(b))?,
            Err(Error::Unrecoverable(_, why)) => {
                tracing::error!(extent = %id, reason = %why, "extent cannot be repaired");
                writer.abort();
                outcome.unrecoverable = true;
                return Ok(outcome);
            }
            Err(e) => return Err(e),
        }
    }
    let durable = writer.finish(geo.size)?;
    outcome.repaired = durable.iter().filter(|d| **d).count() as u64;
    Ok(outcome)
}
