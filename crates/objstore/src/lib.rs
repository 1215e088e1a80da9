//! The object-storage engine behind Maocloud's S3 service: the `BlobStore` boundary and its
//! embedded implementation, `Engine` (R-1b: data kept in more than one place, checksummed,
//! encrypted at rest).
//!
//! This crate knows nothing of SQL, HTTP, subscribers or buckets. It stores *extents*:
//! immutable byte streams named by a UUID. The caller keeps its own index (bucket, key → the
//! [`Extent`] descriptors, as JSON in its database) and asks this crate for bytes. It is its own
//! crate because it is the one place that touches the disks holding subscribers' objects, and
//! so that a provider who outgrows one machine can put a distributed store behind the same
//! trait.
//!
//! The embedded engine cuts an extent into blocks, encrypts each block (XChaCha20-Poly1305
//! under a per-extent data key wrapped by the master key, R-9.4), splits the ciphertext into
//! `k` data shards plus `m` Reed-Solomon parity shards, and writes shard `i` to its own disk
//! directory, each chunk framed with a CRC-32C. Reads verify and reconstruct; `scrub` rewrites
//! what is missing or corrupt. The on-disk format is described in `shard.rs`, the descriptor in
//! `meta.rs`.

mod codec;
mod disk;
mod engine;
mod meta;
mod read;
mod scrub;
mod shard;
mod write;

#[cfg(test)]
mod tests;

pub use engine::{Engine, EngineConfig, DEFAULT_BLOCK_SIZE};
pub use uuid::Uuid;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Descriptor of a stored extent; the caller stores it (serde JSON) and hands it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Extent {
    pub id: Uuid,
    pub size: u64,
    /// Backend-specific (for the embedded engine: block size, data/parity counts, the disk ids
    /// holding each shard, the wrapped data key, nonce base). Opaque to callers.
    pub meta: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input stream failed; the caller's own io::Error is kept (callers use it to signal
    /// e.g. a quota overrun), nothing was stored.
    #[error("reading the body: {0}")]
    Body(std::io::Error),
    /// Too few healthy shards to read a block (more disks lost than the parity count).
    #[error("extent {0} is unreadable: {1}")]
    Unrecoverable(Uuid, String),
    /// Not enough disks answered to make a write durable (write quorum).
    #[error("not enough disks: {0}")]
    NoQuorum(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("extent descriptor: {0}")]
    Descriptor(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A body to store: chunks of any size, in order.
pub type ByteStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// The boundary between the S3 service and where bytes live. The embedded [`Engine`] is one
/// implementation; a provider who outgrows one machine implements it over a distributed store.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `body` as a new extent `id`; returns only once it is durable (every shard written,
    /// fsynced and atomically renamed, directory fsynced). On any error nothing remains visible
    /// (temporary files removed).
    async fn put(&self, id: Uuid, body: ByteStream) -> Result<Extent>;
    /// The bytes `range` (start..end, end <= size) of the extent, as a stream of chunks (at most
    /// one block in memory at a time per stream). Verifies checksums, reconstructs from parity
    /// when shards are missing or corrupt.
    fn get(
        &self,
        extent: &Extent,
        range: std::ops::Range<u64>,
    ) -> futures::stream::BoxStream<'static, Result<bytes::Bytes>>;
    /// Removes the extent's shards (idempotent: missing shards are fine).
    async fn delete(&self, extent: &Extent) -> Result<()>;
    /// Verifies every shard of the extent and rewrites missing or corrupt ones from the others.
    async fn scrub(&self, extent: &Extent) -> Result<ScrubOutcome>;
    /// Ids of extents with shards on disk whose newest shard file is older than `older_than`
    /// (the caller deletes those it has no record of: orphans of a crash between `put` and the
    /// caller's commit).
    async fn stored_ids(&self, older_than: std::time::Duration) -> Result<Vec<Uuid>>;
    /// Removes every shard of an id the caller has no record of.
    async fn remove_orphan(&self, id: Uuid) -> Result<()>;
    /// Disks and their health, for `maocloud storage status`.
    fn status(&self) -> StoreStatus;
}

/// What one `scrub` of one extent found and did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ScrubOutcome {
    /// Shards examined (data + parity).
    pub shards_checked: u64,
    /// Shards whose file was absent (or whose disk was).
    pub missing: u64,
    /// Shards present but damaged: bad header, a chunk failing its CRC, wrong length.
    pub corrupt: u64,
    /// Shards rewritten from the others (durably).
    pub repaired: u64,
    /// Some block had fewer than `k` good shards: nothing was rewritten.
    pub unrecoverable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreStatus {
    pub data_shards: usize,
    pub parity_shards: usize,
    pub block_size: usize,
    pub disks: Vec<DiskStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskStatus {
    pub path: PathBuf,
    /// The id in the disk's marker file, when it could be read.
    pub id: Option<Uuid>,
    /// The directory and its marker are there and carry the id the engine knows.
    pub online: bool,
    pub total_bytes: u64,
    pub free_bytes: u64,
}
