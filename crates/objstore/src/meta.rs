//! The embedded engine's part of an [`Extent`] descriptor (`Extent::meta`): format version,
//! geometry, where each shard lives, and the key material — the data key only wrapped under
//! the master key, never in clear (R-9.4).
//!
//! ```json
//! { "v": 1, "block_size": 1048576, "data": 2, "parity": 2,
//!   "shards": [{ "slot": 3, "disk": "<disk uuid>" }, …],   // index = shard index
//!   "key": "<base64: nonce ‖ sealed data key ‖ tag>", "nonce": "<base64: 16-byte nonce base>" }
//! ```
//!
//! `slot` is the disk's position in the engine's configured list, `disk` the id in that disk's
//! marker when the extent was written. The engine never rewrites a descriptor: a shard is
//! looked up on the disk carrying the recorded id, and when no disk carries it any more (the
//! disk was replaced or its directory recreated) on the recorded slot.

use crate::shard::Geometry;
use crate::{Error, Extent, Result, Uuid};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExtentMeta {
    pub v: u32,
    pub block_size: u32,
    pub data: u16,
    pub parity: u16,
    pub shards: Vec<Placement>,
    pub key: String,
    pub nonce: String,
}

/// Where one shard was written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Placement {
    pub slot: u16,
    pub disk: Uuid,
}

impl ExtentMeta {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the descriptor serialises")
    }

    pub fn parse(extent: &Extent) -> Result<ExtentMeta> {
        let bad = |why: String| Error::Descriptor(format!("extent {}: {why}", extent.id));
        let meta: ExtentMeta =
            serde_json::from_value(extent.meta.clone()).map_err(|e| bad(e.to_string()))?;
        if meta.v != FORMAT {
            return Err(bad(format!("unknown format version {}", meta.v)));
        }
        if meta.data == 0 || meta.block_size == 0 {
            return Err(bad("zero data shards or zero block size".into()));
        }
        if meta.shards.len() != meta.data as usize + meta.parity as usize {
            return Err(bad(format!(
                "{} placements for {} + {} shards",
                meta.shards.len(),
                meta.data,
                meta.parity
            )));
        }
        meta.nonce_base().map_err(bad)?;
        Ok(meta)
    }

    pub fn nonce_base(&self) -> std::result::Result<[u8; 16], String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.nonce)
            .map_err(|e| format!("nonce is not base64: {e}"))?;
        raw.try_into()
            .map_err(|_| "nonce base is not 16 bytes".to_string())
    }

    pub fn geometry(&self, size: u64) -> Geometry {
        Geometry {
            k: self.data as usize,
            m: self.parity as usize,
            block_size: self.block_size as usize,
            size,
        }
    }
}

pub(crate) fn encode_nonce(nonce: &[u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(nonce)
}
