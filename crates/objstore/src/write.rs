//! The write path: a body becomes an extent (R-1b, R-9.4). A three-stage pipeline over two
//! block buffers: the body is read in async code, the block sealed on one blocking thread,
//! and the previous block erasure-coded and appended to the shard files on another. At the
//! end every shard file is fsynced (in parallel), renamed into `shards/` and its directory
//! fsynced. `ShardWriter` also serves the scrub, which rewrites some shards of an existing
//! extent.

use crate::codec::{self, BlockCipher, Coder};
use crate::engine::{blocking, Inner};
use crate::meta::{encode_nonce, ExtentMeta, Placement, FORMAT};
use crate::shard::{encode_trailer, shard_len_for, write_frame, ShardHeader};
use crate::{disk, ByteStream, Error, Extent, Result, Uuid};
use bytes::Bytes;
use futures::StreamExt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// One shard file being written.
struct Target {
    index: usize,
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    renamed: bool,
    /// Renamed, but its directory's fsync failed: visible, perhaps not durable.
    unsynced: bool,
}

/// Writes shard files of one extent into `tmp/`, then publishes them atomically. A shard whose
/// disk fails is dropped (its temporary file removed) and the write goes on while `quorum`
/// shards remain; dropping an unfinished writer removes its temporary files.
pub(crate) struct ShardWriter {
    id: Uuid,
    k: usize,
    targets: Vec<Target>,
    coder: Coder,
    quorum: usize,
    done: bool,
}

impl ShardWriter {
    /// Opens a temporary file for each `(shard index, disk)` in `targets` and writes its header.
    pub fn create(
        inner: &Inner,
        id: Uuid,
        (k, m, block_size): (usize, usize, usize),
        targets: &[(usize, usize)],
        quorum: usize,
    ) -> Result<ShardWriter> {
        let header = |index: usize| ShardHeader {
            extent: id,
            index: index as u16,
            k: k as u16,
            m: m as u16,
            block_size: block_size as u32,
        };
        let mut w = ShardWriter {
            id,
            k,
            targets: Vec::with_capacity(targets.len()),
            coder: Coder::new(k, m),
            quorum,
            done: false,
        };
        for &(index, d) in targets {
            let disk = &inner.disks[d];
            let mut t = Target {
                index,
                tmp: disk.tmp_path(id, index),
                dest: disk.shard_path(id, index),
                file: None,
                renamed: false,
                unsynced: false,
            };
            let opened = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&t.tmp)
                .and_then(|mut f| {
                    f.write_all(&header(index).encode())?;
                    Ok(f)
                });
            match opened {
                Ok(f) => t.file = Some(f),
                Err(e) => {
                    tracing::warn!(disk = %disk.path.display(), %id, shard = index, error = %e,
                        "shard not written");
                    let _ = fs::remove_file(&t.tmp);
                }
            }
            w.targets.push(t);
        }
        w.check_quorum()?;
        Ok(w)
    }

    fn alive(&self) -> usize {
        self.targets
            .iter()
            .filter(|t| t.file.is_some() || (t.renamed && !t.unsynced))
            .count()
    }

    fn check_quorum(&self) -> Result<()> {
        let alive = self.alive();
        if alive < self.quorum {
            return Err(Error::NoQuorum(format!(
                "extent {}: {alive} shards writable, {} needed",
                self.id, self.quorum
            )));
        }
        Ok(())
    }

    fn fail(t: &mut Target, id: Uuid, what: &str, e: &io::Error) {
        tracing::warn!(file = %t.tmp.display(), %id, shard = t.index, error = %e, "{what} failed");
        t.file = None;
        let _ = fs::remove_file(&t.tmp);
    }

    /// Appends one block: `data` is its padded ciphertext, `k` chunks of `s` bytes.
    pub fn write_block(&mut self, data: &[u8], s: usize) -> Result<()> {
        let (id, k) = (self.id, self.k);
        let need_parity = self
            .targets
            .iter()
            .any(|t| t.index >= k && t.file.is_some());
        let parity = if need_parity {
            self.coder.encode(data, s)?
        } else {
            None
        };
        for t in &mut self.targets {
            let Some(f) = &mut t.file else { continue };
            let chunk = if t.index < k {
                &data[t.index * s..(t.index + 1) * s]
            } else {
                parity
                    .as_ref()
                    .and_then(|p| p.recovery(t.index - k))
                    .expect("parity is computed when a parity shard is written")
            };
            if let Err(e) = write_frame(f, chunk) {
                Self::fail(t, id, "write", &e);
            }
        }
        drop(parity);
        self.check_quorum()
    }

    /// Ends every file with its trailer, makes them durable and visible. Returns, per target
    /// (in the order given), whether that shard is now durable.
    pub fn finish(mut self, size: u64) -> Result<Vec<bool>> {
        let id = self.id;
        let trailer = encode_trailer(size);
        for t in &mut self.targets {
            if let Some(f) = &mut t.file {
                if let Err(e) = f.write_all(&trailer) {
                    Self::fail(t, id, "write", &e);
                }
            }
        }
        // fsync every shard file at once: one slow disk costs its own latency, not the sum.
        let synced: Vec<io::Result<()>> = std::thread::scope(|sc| {
            let handles: Vec<_> = self
                .targets
                .iter()
                .map(|t| t.file.as_ref().map(|f| sc.spawn(move || f.sync_all())))
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Some(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("fsync panicked"))),
                    None => Ok(()),
                })
                .collect()
        });
        for (t, r) in self.targets.iter_mut().zip(synced) {
            if let Err(e) = r {
                Self::fail(t, id, "fsync", &e);
            }
        }
        self.check_quorum().inspect_err(|_| self.abort())?;
        for t in &mut self.targets {
            if t.file.take().is_none() {
                continue;
            }
            match fs::rename(&t.tmp, &t.dest) {
                Ok(()) => t.renamed = true,
                Err(e) => Self::fail(t, id, "rename", &e),
            }
        }
        // The renames are durable once their directories are.
        let mut dirs: Vec<PathBuf> = self
            .targets
            .iter()
            .filter(|t| t.renamed)
            .filter_map(|t| t.dest.parent().map(PathBuf::from))
            .collect();
        dirs.sort();
        dirs.dedup();
        let dir_synced: Vec<(PathBuf, io::Result<()>)> = std::thread::scope(|sc| {
            let handles: Vec<_> = dirs
                .iter()
                .map(|d| (d.clone(), sc.spawn(move || disk::fsync_dir(d))))
                .collect();
            handles
                .into_iter()
                .map(|(d, h)| {
                    (
                        d,
                        h.join()
                            .unwrap_or_else(|_| Err(io::Error::other("fsync panicked"))),
                    )
                })
                .collect()
        });
        for (dir, r) in dir_synced {
            if let Err(e) = r {
                tracing::warn!(dir = %dir.display(), %id, error = %e, "directory fsync failed");
                for t in self
                    .targets
                    .iter_mut()
                    .filter(|t| t.renamed && t.dest.parent() == Some(&dir))
                {
                    // Not counted; left in place for the scrub unless the write fails.
                    t.unsynced = true;
                }
            }
        }
        self.check_quorum().inspect_err(|_| self.abort())?;
        self.done = true;
        Ok(self
            .targets
            .iter()
            .map(|t| t.renamed && !t.unsynced)
            .collect())
    }

    /// Removes everything this writer created, published or not.
    pub fn abort(&mut self) {
        for t in &mut self.targets {
            t.file = None;
            let _ = fs::remove_file(&t.tmp);
            if t.renamed {
                let _ = fs::remove_file(&t.dest);
                t.renamed = false;
            }
        }
        self.done = true;
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if !self.done {
            for t in &mut self.targets {
                t.file = None;
                let _ = fs::remove_file(&t.tmp);
            }
        }
    }
}

/// Seals the blocks of one extent, in order.
struct Sealer {
    cipher: BlockCipher,
    next_block: u64,
    k: usize,
}

impl Sealer {
    /// Encrypts the plaintext block in `buf` in place and pads it to `k` chunks of an even
    /// length, returned.
    fn seal(&mut self, buf: &mut Vec<u8>) -> usize {
        let s = shard_len_for(buf.len(), self.k);
        self.cipher.seal(self.next_block, buf);
        buf.resize(self.k * s, 0);
        self.next_block += 1;
        s
    }
}

type Writing = tokio::task::JoinHandle<(ShardWriter, Vec<u8>, Result<()>)>;

pub(crate) async fn put(inner: Arc<Inner>, id: Uuid, mut body: ByteStream) -> Result<Extent> {
    let (k, m, bs, n) = (
        inner.data,
        inner.parity,
        inner.block_size,
        inner.disks.len(),
    );
    let data_key = codec::random::<32>();
    let nonce_base = codec::random::<16>();
    let shards: Vec<Placement> = (0..n)
        .map(|i| {
            let slot = inner.slot_for(id, i);
            Placement {
                slot: slot as u16,
                disk: inner.disks[slot].id().unwrap_or(Uuid::nil()),
            }
        })
        .collect();
    let meta = ExtentMeta {
        v: FORMAT,
        block_size: bs as u32,
        data: k as u16,
        parity: m as u16,
        shards: shards.clone(),
        key: codec::wrap_key(&inner.master, id, &data_key),
        nonce: encode_nonce(&nonce_base),
    };
    let quorum = if m > 0 { k + 1 } else { k };
    let targets: Vec<(usize, usize)> = shards
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.slot as usize))
        .collect();
    let writer = {
        let inner = inner.clone();
        blocking(move || ShardWriter::create(&inner, id, (k, m, bs), &targets, quorum)).await?
    };

    // A three-stage pipeline over two buffers: while block b is erasure-coded and written,
    // block b+1 is read from the body and sealed.
    let cap = k * shard_len_for(bs, k);
    let mut sealer = Some(Sealer {
        cipher: BlockCipher::new(&data_key, nonce_base, id),
        next_block: 0,
        k,
    });
    let mut writer = Some(writer);
    let mut writing: Option<Writing> = None;
    let mut spare: Option<Vec<u8>> = None;
    let mut carry: Option<Bytes> = None;
    let mut size = 0u64;
    loop {
        let mut buf = spare.take().unwrap_or_else(|| Vec::with_capacity(cap));
        buf.clear();
        let eof = match fill(&mut body, &mut carry, &mut buf, bs).await {
            Ok(eof) => eof,
            Err(e) => {
                let w = match writing.take() {
                    Some(h) => join(h).await.ok().map(|(w, _, _)| w),
                    None => writer.take(),
                };
                if let Some(mut w) = w {
                    blocking(move || {
                        w.abort();
                        Ok(())
                    })
                    .await?;
                }
                return Err(Error::Body(e));
            }
        };
        if buf.is_empty() {
            break;
        }
        size += buf.len() as u64;
        let mut sl = sealer
            .take()
            .expect("the sealer is back from the previous block");
        let sealing = tokio::task::spawn_blocking(move || {
            let s = sl.seal(&mut buf);
            (sl, buf, s)
        });
        if let Some(h) = writing.take() {
            let (w, used, r) = join(h).await?;
            r?;
            writer = Some(w);
            spare = Some(used);
        }
        let (sl, sealed, s) = join(sealing).await?;
        sealer = Some(sl);
        let mut w = writer
            .take()
            .expect("the writer is back from the previous block");
        writing = Some(tokio::task::spawn_blocking(move || {
            let r = w.write_block(&sealed, s);
            (w, sealed, r)
        }));
        if eof {
            break;
        }
    }
    if let Some(h) = writing.take() {
        let (w, _, r) = join(h).await?;
        r?;
        writer = Some(w);
    }
    let w = writer.expect("the writer is back from the last block");
    let durable = blocking(move || w.finish(size)).await?;
    if durable.iter().any(|d| !d) {
        tracing::warn!(%id, durable = durable.iter().filter(|d| **d).count(), shards = n,
            "extent stored degraded; a scrub will restore its missing shards");
    }
    Ok(Extent {
        id,
        size,
        meta: meta.to_value(),
    })
}

async fn join<T>(h: tokio::task::JoinHandle<T>) -> Result<T> {
    h.await
        .map_err(|e| Error::Io(io::Error::other(format!("storage task failed: {e}"))))
}

/// Appends body bytes to `buf` until it holds `want` bytes or the body ends (`Ok(true)`).
/// Bytes beyond `want` stay in `carry` for the next block.
async fn fill(
    body: &mut ByteStream,
    carry: &mut Option<Bytes>,
    buf: &mut Vec<u8>,
    want: usize,
) -> io::Result<bool> {
    loop {
        if let Some(mut chunk) = carry.take() {
            let room = want - buf.len();
            if chunk.len() > room {
                let rest = chunk.split_off(room);
                *carry = Some(rest);
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() == want {
            return Ok(false);
        }
        match body.next().await {
            None => return Ok(true),
            Some(Err(e)) => return Err(e),
            Some(Ok(chunk)) => *carry = Some(chunk),
        }
    }
}
