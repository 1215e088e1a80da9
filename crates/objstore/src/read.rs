//! The read path: the bytes of a range of an extent, block by block (R-1b). Each chunk's
//! CRC-32C is checked; when a data chunk is missing or corrupt the block is rebuilt from any
//! `k` good chunks; the AEAD tag is the final check, and if it fails despite good
//! CRCs other combinations of chunks are tried before giving up.

use crate::codec::{unwrap_key, BlockCipher, Coder, Combinations};
use crate::engine::Inner;
use crate::meta::ExtentMeta;
use crate::shard::{read_frame, trailer_ok, Geometry, ShardHeader, TAG_LEN};
use crate::{Error, Extent, Result, Uuid};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Most combinations of chunks tried for one block whose tag does not verify.
const MAX_COMBINATIONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Health {
    Good,
    Missing,
    Corrupt,
}

enum FileState {
    Unopened,
    Open(File),
    Gone(Health),
}

struct ShardFile {
    /// `None` when no configured disk can hold it.
    path: Option<PathBuf>,
    disk: Option<usize>,
    state: FileState,
}

/// Reads one extent's shards; keeps them open from block to block.
pub(crate) struct ExtentReader {
    pub id: Uuid,
    pub geo: Geometry,
    cipher: BlockCipher,
    shards: Vec<ShardFile>,
    coder: Coder,
    /// Shards whose recorded disk id is no longer found (the disk was replaced).
    pub moved: Vec<usize>,
}

/// What the caller wants out of a recovered block.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Want {
    Plaintext,
    /// The padded ciphertext, `k * s` bytes, authenticated.
    Ciphertext,
}

impl ExtentReader {
    pub fn new(inner: &Inner, extent: &Extent) -> Result<ExtentReader> {
        let meta = ExtentMeta::parse(extent)?;
        let key = unwrap_key(&inner.master, extent.id, &meta.key)
            .map_err(|e| Error::Descriptor(format!("extent {}: {e}", extent.id)))?;
        let nonce = meta.nonce_base().map_err(Error::Descriptor)?;
        let geo = meta.geometry(extent.size);
        let mut moved = Vec::new();
        let shards = meta
            .shards
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let located = inner.locate(*p);
                if let Some((_, false)) = located {
                    moved.push(i);
                }
                let disk = located.map(|(d, _)| d);
                ShardFile {
                    path: disk.map(|d| inner.disks[d].shard_path(extent.id, i)),
                    disk,
                    state: FileState::Unopened,
                }
            })
            .collect();
        Ok(ExtentReader {
            id: extent.id,
            geo,
            cipher: BlockCipher::new(&key, nonce, extent.id),
            shards,
            coder: Coder::new(geo.k, geo.m),
            moved,
        })
    }

    /// The disk shard `i` belongs on.
    pub fn disk_of(&self, i: usize) -> Option<usize> {
        self.shards[i].disk
    }

    fn file(&mut self, i: usize) -> std::result::Result<&File, Health> {
        let sf = &mut self.shards[i];
        if let FileState::Unopened = sf.state {
            sf.state = match &sf.path {
                None => FileState::Gone(Health::Missing),
                Some(path) => match File::open(path) {
                    Ok(f) => match ShardHeader::read_from(&f) {
                        Ok(Some(h))
                            if h.extent == self.id
                                && h.index as usize == i
                                && h.k as usize == self.geo.k
                                && h.m as usize == self.geo.m
                                && h.block_size as usize == self.geo.block_size =>
                        {
                            FileState::Open(f)
                        }
                        Ok(_) => {
                            tracing::warn!(file = %path.display(), "shard header is wrong");
                            FileState::Gone(Health::Corrupt)
                        }
                        Err(e) => {
                            tracing::warn!(file = %path.display(), error = %e, "shard unreadable");
                            FileState::Gone(Health::Corrupt)
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        FileState::Gone(Health::Missing)
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "shard unreadable");
                        FileState::Gone(Health::Missing)
                    }
                },
            };
        }
        match &sf.state {
            FileState::Open(f) => Ok(f),
            FileState::Gone(h) => Err(*h),
            FileState::Unopened => unreachable!("opened above"),
        }
    }

    /// Reads shard `i`'s chunk of block `b` into `dst` (exactly the chunk length).
    pub fn read_chunk(&mut self, i: usize, b: u64, dst: &mut [u8]) -> Health {
        let offset = self.geo.frame_offset(b);
        let f = match self.file(i) {
            Ok(f) => f,
            Err(h) => return h,
        };
        match read_frame(f, offset, dst) {
            Ok(true) => Health::Good,
            Ok(false) => {
                tracing::warn!(extent = %self.id, shard = i, block = b, "chunk checksum mismatch");
                Health::Corrupt
            }
            Err(e) => {
                tracing::warn!(extent = %self.id, shard = i, block = b, error = %e, "chunk unreadable");
                Health::Corrupt
            }
        }
    }

    /// Checks a whole shard file: header, exact length, every chunk's CRC, trailer.
    pub fn verify_shard(&mut self, i: usize) -> Health {
        let geo = self.geo;
        let len = match self.file(i) {
            Ok(f) => f.metadata().map(|m| m.len()),
            Err(h) => return h,
        };
        if len.ok() != Some(geo.file_len()) {
            return Health::Corrupt;
        }
        let mut scratch = vec![0u8; geo.shard_len(0).max(2)];
        for b in 0..geo.blocks() {
            let s = geo.shard_len(b);
            if self.read_chunk(i, b, &mut scratch[..s]) != Health::Good {
                return Health::Corrupt;
            }
        }
        match self.file(i).map(|f| trailer_ok(f, &geo)) {
            Ok(Ok(true)) => Health::Good,
            _ => Health::Corrupt,
        }
    }

    /// The plaintext of block `b`.
    pub fn read_block(&mut self, b: u64) -> Result<Vec<u8>> {
        let (k, s) = (self.geo.k, self.geo.shard_len(b));
        let ct_len = self.geo.plain_len(b) + TAG_LEN;
        // Fast path: the data chunks, read straight into place.
        let mut buf = vec![0u8; k * s];
        let mut good = vec![false; self.geo.n()];
        for i in 0..k {
            good[i] = self.read_chunk(i, b, &mut buf[i * s..(i + 1) * s]) == Health::Good;
        }
        if good[..k].iter().all(|g| *g) {
            if self.cipher.open(b, &mut buf, ct_len) {
                return Ok(buf);
            }
            tracing::warn!(extent = %self.id, block = b,
                "block fails authentication although its chunks' checksums match");
        }
        // Slow path: gather every good chunk and rebuild.
        let mut chunks: Vec<Option<Vec<u8>>> = (0..k)
            .map(|i| good[i].then(|| buf[i * s..(i + 1) * s].to_vec()))
            .collect();
        drop(buf);
        // Parity chunks, only as many as needed; the rest if that is not enough.
        let n = self.geo.n();
        let mut have = chunks.iter().filter(|c| c.is_some()).count();
        for i in k..n {
            if have >= k {
                break;
            }
            let mut c = vec![0u8; s];
            let ok = self.read_chunk(i, b, &mut c) == Health::Good;
            have += usize::from(ok);
            chunks.push(ok.then_some(c));
        }
        let unread = chunks.len();
        match self.recover(b, &chunks, Want::Plaintext) {
            Err(Error::Unrecoverable(..)) if unread < n => {
                for i in unread..n {
                    let mut c = vec![0u8; s];
                    chunks.push((self.read_chunk(i, b, &mut c) == Health::Good).then_some(c));
                }
                self.recover(b, &chunks, Want::Plaintext)
            }
            r => r,
        }
    }

    /// Every readable chunk of block `b` (`None` for missing or corrupt ones).
    pub fn read_all_chunks(&mut self, b: u64) -> Vec<Option<Vec<u8>>> {
        let s = self.geo.shard_len(b);
        (0..self.geo.n())
            .map(|i| {
                let mut c = vec![0u8; s];
                (self.read_chunk(i, b, &mut c) == Health::Good).then_some(c)
            })
            .collect()
    }

    /// Rebuilds block `b` from good chunks, trying combinations until the tag verifies.
    pub fn recover(&mut self, b: u64, chunks: &[Option<Vec<u8>>], want: Want) -> Result<Vec<u8>> {
        let (k, s) = (self.geo.k, self.geo.shard_len(b));
        let ct_len = self.geo.plain_len(b) + TAG_LEN;
        let avail: Vec<usize> = (0..chunks.len()).filter(|i| chunks[*i].is_some()).collect();
        if avail.len() < k {
            return Err(Error::Unrecoverable(
                self.id,
                format!(
                    "block {b}: {} of {} shards readable, {k} needed",
                    avail.len(),
                    chunks.len()
                ),
            ));
        }
        for combo in Combinations::new(avail.len(), k).take(MAX_COMBINATIONS) {
            let chosen: Vec<usize> = combo.iter().map(|c| avail[*c]).collect();
            let mut buf = vec![0u8; k * s];
            if let Err(e) = self.coder.reconstruct(chunks, &chosen, s, &mut buf) {
                tracing::warn!(extent = %self.id, block = b, error = %e, "reconstruction failed");
                continue;
            }
            match want {
                Want::Plaintext => {
                    if self.cipher.open(b, &mut buf, ct_len) {
                        return Ok(buf);
                    }
                }
                Want::Ciphertext => {
                    let mut check = buf[..ct_len].to_vec();
                    if self.cipher.open(b, &mut check, ct_len) {
                        return Ok(buf);
                    }
                }
            }
            tracing::warn!(extent = %self.id, block = b, shards = ?chosen,
                "rebuilt block fails authentication");
        }
        Err(Error::Unrecoverable(
            self.id,
            format!("block {b}: no combination of readable shards authenticates"),
        ))
    }
}

/// The stream behind `BlobStore::get`: one blocking read per block, one block in memory.
pub(crate) fn get(
    inner: Arc<Inner>,
    extent: &Extent,
    range: std::ops::Range<u64>,
) -> BoxStream<'static, Result<Bytes>> {
    if range.start > range.end || range.end > extent.size {
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "range {range:?} is outside extent {} of {} bytes",
                extent.id, extent.size
            ),
        );
        return stream::once(async move { Err(Error::Io(e)) }).boxed();
    }
    let reader = match ExtentReader::new(&inner, extent) {
        Ok(r) => r,
        Err(e) => return stream::once(async move { Err(e) }).boxed(),
    };
    if range.is_empty() {
        return stream::empty().boxed();
    }
    let bs = reader.geo.block_size as u64;
    let (start, end) = (range.start, range.end);
    let last = (end - 1) / bs;
    stream::try_unfold((reader, start / bs), move |(mut reader, b)| async move {
        if b > last {
            return Ok(None);
        }
        let (reader, block) = tokio::task::spawn_blocking(move || {
            let r = reader.read_block(b);
            (reader, r)
        })
        .await
        .map_err(|e| Error::Io(io::Error::other(format!("storage task failed: {e}"))))?;
        let block = block?;
        let block_start = b * bs;
        let from = start.saturating_sub(block_start) as usize;
        let to = ((end - block_start) as usize).min(block.len());
        Ok(Some((Bytes::from(block).slice(from..to), (reader, b + 1))))
    })
    .boxed()
}
