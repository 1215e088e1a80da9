//! The embedded engine: its configuration, opening the disks, where each shard of an extent
//! lives, and the `BlobStore` operations that need no coding (delete, orphans, status). The
//! write path is `write.rs`, the read path `read.rs`, repair `scrub.rs`.

use crate::disk::Disk;
use crate::meta::{ExtentMeta, Placement};
use crate::{
    read, scrub, write, BlobStore, ByteStream, Error, Extent, Result, ScrubOutcome, StoreStatus,
    Uuid,
};
use chacha20poly1305::Key;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Plaintext bytes per block unless configured otherwise.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// Largest block accepted (a chunk's length is framed as a u32).
const MAX_BLOCK_SIZE: usize = 1 << 30;

pub struct EngineConfig {
    /// One directory per disk; at least 1. Their order matters: it is how a replaced disk is
    /// found again (see `meta.rs`).
    pub disks: Vec<PathBuf>,
    /// Parity shards per block; data shards = `disks.len() - parity` (must be >= 1).
    pub parity: usize,
    /// Plaintext bytes per block.
    pub block_size: usize,
    /// Wraps each extent's random data key. Losing it loses every object.
    pub master_key: [u8; 32],
}

impl EngineConfig {
    /// A configuration with the default block size (1 MiB).
    pub fn new(disks: Vec<PathBuf>, parity: usize, master_key: [u8; 32]) -> EngineConfig {
        EngineConfig {
            disks,
            parity,
            block_size: DEFAULT_BLOCK_SIZE,
            master_key,
        }
    }
}

/// Object storage on local disk directories: erasure-coded, checksummed, encrypted at rest
/// (R-1b, R-9.4). Cheap to clone; clones share the disks.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub disks: Vec<Disk>,
    pub data: usize,
    pub parity: usize,
    pub block_size: usize,
    pub master: Key,
}

fn invalid(msg: String) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, msg))
}

impl Engine {
    /// Opens (creating when missing) every disk directory and its marker. A disk that cannot be
    /// prepared is logged and left offline, as long as enough remain to read (`data` disks).
    pub fn open(cfg: EngineConfig) -> Result<Engine> {
        let n = cfg.disks.len();
        if n == 0 {
            return Err(invalid("no disk directory configured".into()));
        }
        if cfg.parity >= n {
            return Err(invalid(format!(
                "{} parity shards need more than {n} disks (at least one data shard)",
                cfg.parity
            )));
        }
        if n > u16::MAX as usize {
            return Err(invalid(format!("{n} disks is too many")));
        }
        let data = n - cfg.parity;
        if cfg.parity > 0 && !reed_solomon_simd::ReedSolomonEncoder::supports(data, cfg.parity) {
            return Err(invalid(format!(
                "{data} data + {} parity shards is unsupported",
                cfg.parity
            )));
        }
        if cfg.block_size == 0 || cfg.block_size > MAX_BLOCK_SIZE {
            return Err(invalid(format!(
                "block size {} is out of range",
                cfg.block_size
            )));
        }
        for (i, a) in cfg.disks.iter().enumerate() {
            if cfg.disks[..i].contains(a) {
                return Err(invalid(format!("disk {} is listed twice", a.display())));
            }
        }
        let disks: Vec<Disk> = cfg.disks.into_iter().map(Disk::new).collect();
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for (i, d) in disks.iter().enumerate() {
            match d.prepare() {
                Ok(id) => {
                    if let Some(j) = seen.insert(id, i) {
                        return Err(invalid(format!(
                            "{} and {} carry the same disk id {id} (a copied directory?)",
                            disks[j].path.display(),
                            d.path.display()
                        )));
                    }
                }
                Err(e) => {
                    tracing::warn!(disk = %d.path.display(), error = %e, "disk offline")
                }
            }
        }
        if seen.len() < data {
            return Err(Error::NoQuorum(format!(
                "only {} of {n} disks are usable, {data} are needed to read",
                seen.len()
            )));
        }
        let inner = Inner {
            disks,
            data,
            parity: cfg.parity,
            block_size: cfg.block_size,
            master: Key::from(cfg.master_key),
        };
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }
}

impl Inner {
    /// The disk a new extent's shard `index` goes to: rotated by the id so that shard 0 (and
    /// the work of reading it) is spread over all disks.
    pub fn slot_for(&self, extent: Uuid, index: usize) -> usize {
        let n = self.disks.len();
        let rotation = (extent.as_u64_pair().1 % n as u64) as usize;
        (index + rotation) % n
    }

    /// The disk holding a shard: the one whose id was recorded, else (the disk was replaced,
    /// or the configuration reordered and the id is gone) the recorded slot. `matched` says
    /// whether the recorded id was found.
    pub fn locate(&self, p: Placement) -> Option<(usize, bool)> {
        let slot = p.slot as usize;
        if slot < self.disks.len() && self.disks[slot].id() == Some(p.disk) {
            return Some((slot, true));
        }
        if let Some(j) = self.disks.iter().position(|d| d.id() == Some(p.disk)) {
            return Some((j, true));
        }
        (slot < self.disks.len()).then_some((slot, false))
    }
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(io::Error::other(format!("storage task failed: {e}"))))?
}

fn remove_if_present(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl BlobStore for Engine {
    async fn put(&self, id: Uuid, body: ByteStream) -> Result<Extent> {
        write::put(self.inner.clone(), id, body).await
    }

    fn get(
        &self,
        extent: &Extent,
        range: std::ops::Range<u64>,
    ) -> futures::stream::BoxStream<'static, Result<bytes::Bytes>> {
        read::get(self.inner.clone(), extent, range)
    }

    async fn delete(&self, extent: &Extent) -> Result<()> {
        let meta = ExtentMeta::parse(extent)?;
        let inner = self.inner.clone();
        let id = extent.id;
        blocking(move || {
            // Every disk, not only the recorded ones: a shard may have been rebuilt elsewhere.
            let mut first_err = None;
            for d in &inner.disks {
                for i in 0..meta.shards.len() {
                    if let Err(e) = remove_if_present(&d.shard_path(id, i)) {
                        tracing::warn!(disk = %d.path.display(), %id, error = %e, "shard not removed");
                        first_err.get_or_insert(e);
                    }
                }
            }
            first_err.map_or(Ok(()), |e| Err(e.into()))
        })
        .await
    }

    async fn scrub(&self, extent: &Extent) -> Result<ScrubOutcome> {
        scrub::scrub(self.inner.clone(), extent).await
    }

    async fn stored_ids(&self, older_than: Duration) -> Result<Vec<Uuid>> {
        let inner = self.inner.clone();
        blocking(move || stored_ids(&inner, older_than)).await
    }

    async fn remove_orphan(&self, id: Uuid) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || {
            let prefix = format!("{id}.");
            for d in &inner.disks {
                let entries = match std::fs::read_dir(d.shard_dir(id)) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                for entry in entries {
                    let entry = entry?;
                    if entry.file_name().to_string_lossy().starts_with(&prefix) {
                        remove_if_present(&entry.path())?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    fn status(&self) -> StoreStatus {
        StoreStatus {
            data_shards: self.inner.data,
            parity_shards: self.inner.parity,
            block_size: self.inner.block_size,
            disks: self.inner.disks.iter().map(|d| d.status()).collect(),
        }
    }
}

/// Extents whose newest shard file is older than `older_than`; removes stale temporary files
/// on the way. File times are the filesystem's, so this compares them with the system clock
/// (not an application clock).
fn stored_ids(inner: &Inner, older_than: Duration) -> Result<Vec<Uuid>> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut newest: HashMap<Uuid, SystemTime> = HashMap::new();
    for d in &inner.disks {
        match std::fs::read_dir(d.tmp_dir()) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let stale = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t < cutoff);
                    if stale {
                        tracing::info!(file = %entry.path().display(), "removing stale temporary file");
                        remove_if_present(&entry.path())?;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let prefixes = match std::fs::read_dir(d.shards_dir()) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for prefix in prefixes.flatten() {
            let Ok(files) = std::fs::read_dir(prefix.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let Some(id) = name
                    .split_once('.')
                    .and_then(|(id, _)| Uuid::parse_str(id).ok())
                else {
                    continue;
                };
                let Ok(modified) = file.metadata().and_then(|m| m.modified()) else {
                    continue;
                };
                let t = newest.entry(id).or_insert(modified);
                *t = (*t).max(modified);
            }
        }
    }
    let mut ids: Vec<Uuid> = newest
        .into_iter()
        .filter(|(_, t)| *t < cutoff)
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    Ok(ids)
}
