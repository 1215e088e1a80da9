//! The shard file format and the geometry that places every chunk in it (R-1b: checksummed).
//!
//! A shard file is `<disk>/shards/<2 hex>/<extent id>.<shard index>`:
//!
//! ```text
//! header   64 bytes   "MAOSHARD", version u16, shard index u16, k u16, m u16,
//!                     block size u32, extent id [16], zeros, crc32c of the 60 bytes before
//! frame    per block  crc32c u32 LE of the bytes | length u32 LE | bytes (this shard's chunk)
//! trailer  16 bytes   extent size u64 LE | "MEND" | crc32c of the 12 bytes before
//! ```
//!
//! All integers are little endian. Every block but the last holds `block_size` plaintext bytes,
//! so every chunk's offset follows from the geometry: a range read seeks straight to its first
//! block. A block's ciphertext (plaintext + 16-byte tag) is zero-padded to `k` equal chunks of
//! an even length (the erasure code's requirement); parity chunks have that same length.

use crate::Uuid;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

pub(crate) const HEADER_LEN: usize = 64;
pub(crate) const FRAME_HEADER_LEN: usize = 8;
pub(crate) const TRAILER_LEN: usize = 16;
/// The AEAD tag appended to each block's ciphertext.
pub(crate) const TAG_LEN: usize = 16;

const MAGIC: &[u8; 8] = b"MAOSHARD";
const VERSION: u16 = 1;
const TRAILER_MAGIC: &[u8; 4] = b"MEND";

/// How an extent of `size` bytes is cut into blocks and shards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    /// Data shards.
    pub k: usize,
    /// Parity shards.
    pub m: usize,
    pub block_size: usize,
    pub size: u64,
}

impl Geometry {
    pub fn n(&self) -> usize {
        self.k + self.m
    }

    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(self.block_size as u64)
    }

    /// Plaintext bytes in block `b`.
    pub fn plain_len(&self, b: u64) -> usize {
        let start = b * self.block_size as u64;
        (self.size - start).min(self.block_size as u64) as usize
    }

    /// Chunk length of every shard of block `b`.
    pub fn shard_len(&self, b: u64) -> usize {
        shard_len_for(self.plain_len(b), self.k)
    }

    /// Where block `b`'s frame starts in every shard file.
    pub fn frame_offset(&self, b: u64) -> u64 {
        let full = (FRAME_HEADER_LEN + shard_len_for(self.block_size, self.k)) as u64;
        HEADER_LEN as u64 + b * full
    }

    /// The exact length of a complete shard file.
    pub fn file_len(&self) -> u64 {
        let blocks = self.blocks();
        let body_end = if blocks == 0 {
            HEADER_LEN as u64
        } else {
            self.frame_offset(blocks - 1) + (FRAME_HEADER_LEN + self.shard_len(blocks - 1)) as u64
        };
        body_end + TRAILER_LEN as u64
    }
}

/// Chunk length for a block of `plain_len` plaintext bytes split `k` ways: the ciphertext
/// (with its tag) divided by `k`, rounded up to an even number of bytes.
pub(crate) fn shard_len_for(plain_len: usize, k: usize) -> usize {
    let s = (plain_len + TAG_LEN).div_ceil(k);
    s + (s & 1)
}

/// The fixed header at the start of every shard file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ShardHeader {
    pub extent: Uuid,
    pub index: u16,
    pub k: u16,
    pub m: u16,
    pub block_size: u32,
}

impl ShardHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&self.index.to_le_bytes());
        h[12..14].copy_from_slice(&self.k.to_le_bytes());
        h[14..16].copy_from_slice(&self.m.to_le_bytes());
        h[16..20].copy_from_slice(&self.block_size.to_le_bytes());
        h[20..36].copy_from_slice(self.extent.as_bytes());
        let crc = crc32c::crc32c(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8; HEADER_LEN]) -> Option<ShardHeader> {
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if &h[0..8] != MAGIC || u16_at(8) != VERSION || crc32c::crc32c(&h[..60]) != u32_at(60) {
            return None;
        }
        Some(ShardHeader {
            index: u16_at(10),
            k: u16_at(12),
            m: u16_at(14),
            block_size: u32_at(16),
            extent: Uuid::from_slice(&h[20..36]).ok()?,
        })
    }

    pub fn read_from(file: &File) -> io::Result<Option<ShardHeader>> {
        let mut h = [0u8; HEADER_LEN];
        match file.read_exact_at(&mut h, 0) {
            Ok(()) => Ok(ShardHeader::decode(&h)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Appends one framed chunk.
pub(crate) fn write_frame(file: &mut File, chunk: &[u8]) -> io::Result<()> {
    let mut head = [0u8; FRAME_HEADER_LEN];
    head[..4].copy_from_slice(&crc32c::crc32c(chunk).to_le_bytes());
    head[4..].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
    file.write_all(&head)?;
    file.write_all(chunk)
}

/// Reads the frame at `offset` into `dst` (whose length is the expected chunk length).
/// `Ok(false)`: the frame is there but its length or checksum is wrong.
pub(crate) fn read_frame(file: &File, offset: u64, dst: &mut [u8]) -> io::Result<bool> {
    let mut head = [0u8; FRAME_HEADER_LEN];
    file.read_exact_at(&mut head, offset)?;
    let crc = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len as usize != dst.len() {
        return Ok(false);
    }
    file.read_exact_at(dst, offset + FRAME_HEADER_LEN as u64)?;
    Ok(crc32c::crc32c(dst) == crc)
}

pub(crate) fn encode_trailer(size: u64) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&size.to_le_bytes());
    t[8..12].copy_from_slice(TRAILER_MAGIC);
    let crc = crc32c::crc32c(&t[..12]);
    t[12..].copy_from_slice(&crc.to_le_bytes());
    t
}

/// Whether the file ends with the trailer of an extent of `size` bytes.
pub(crate) fn trailer_ok(file: &File, geo: &Geometry) -> io::Result<bool> {
    let mut t = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut t, geo.file_len() - TRAILER_LEN as u64)?;
    Ok(t == encode_trailer(geo.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_places_every_chunk() {
        let g = Geometry {
            k: 2,
            m: 2,
            block_size: 100,
            size: 250,
        };
        assert_eq!(g.blocks(), 3);
        assert_eq!(g.plain_len(2), 50);
        assert_eq!(g.shard_len(0), 58); // (100 + 16) / 2
        assert_eq!(g.shard_len(2), 34); // (50 + 16) / 2 = 33, rounded up to even
        assert_eq!(g.frame_offset(2), 64 + 2 * 66);
        assert_eq!(g.file_len(), 64 + 2 * 66 + 8 + 34 + 16);
        let empty = Geometry { size: 0, ..g };
        assert_eq!(empty.blocks(), 0);
        assert_eq!(empty.file_len(), 80);
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = ShardHeader {
            extent: Uuid::from_u128(7),
            index: 3,
            k: 2,
            m: 2,
            block_size: 1 << 20,
        };
        let mut bytes = h.encode();
        assert_eq!(ShardHeader::decode(&bytes), Some(h));
        bytes[11] ^= 1;
        assert_eq!(ShardHeader::decode(&bytes), None);
    }
}
