//! Encryption at rest and erasure coding of one block (R-9.4 encryption, R-1b redundancy).
//!
//! Each extent has its own random 32-byte data key; it is stored only wrapped (XChaCha20-
//! Poly1305 under the master key, the extent id as associated data, so a descriptor cannot be
//! pointed at another extent's key). Block `b` is sealed with XChaCha20-Poly1305 under the data
//! key, nonce = the extent's 16-byte random nonce base ‖ `b` (u64 LE), the extent id as
//! associated data: a block moved, swapped or altered fails authentication. The ciphertext is
//! then split into `k` data chunks and `m` Reed-Solomon parity chunks (`reed-solomon-simd`).

use crate::shard::TAG_LEN;
use crate::Uuid;
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use reed_solomon_simd::{EncoderResult, ReedSolomonDecoder, ReedSolomonEncoder};
use std::io;

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Seals a fresh data key under the master key: base64(24-byte nonce ‖ ciphertext ‖ tag).
pub(crate) fn wrap_key(master: &Key, extent: Uuid, data_key: &[u8; 32]) -> String {
    let nonce = random::<24>();
    let mut out = Vec::with_capacity(24 + 32 + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(data_key);
    let tag = XChaCha20Poly1305::new(master)
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            extent.as_bytes(),
            &mut out[24..],
        )
        .expect("a 32-byte message is within XChaCha20-Poly1305's limits");
    out.extend_from_slice(&tag);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Opens a wrapped data key; fails (rather than yielding a wrong key) under another master key
/// or for another extent.
pub(crate) fn unwrap_key(master: &Key, extent: Uuid, wrapped: &str) -> Result<[u8; 32], String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(wrapped)
        .map_err(|e| format!("wrapped key is not base64: {e}"))?;
    if raw.len() != 24 + 32 + TAG_LEN {
        return Err(format!(
            "wrapped key has {} bytes, expected {}",
            raw.len(),
            24 + 32 + TAG_LEN
        ));
    }
    let (nonce, rest) = raw.split_at(24);
    let mut key = [0u8; 32];
    key.copy_from_slice(&rest[..32]);
    XChaCha20Poly1305::new(master)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            extent.as_bytes(),
            &mut key,
            Tag::from_slice(&rest[32..]),
        )
        .map_err(|_| "the data key does not open under this master key".to_string())?;
    Ok(key)
}

/// Seals and opens the blocks of one extent.
pub(crate) struct BlockCipher {
    aead: XChaCha20Poly1305,
    nonce_base: [u8; 16],
    extent: Uuid,
}

impl BlockCipher {
    pub fn new(data_key: &[u8; 32], nonce_base: [u8; 16], extent: Uuid) -> BlockCipher {
        BlockCipher {
            aead: XChaCha20Poly1305::new(Key::from_slice(data_key)),
            nonce_base,
            extent,
        }
    }

    fn nonce(&self, block: u64) -> XNonce {
        let mut n = [0u8; 24];
        n[..16].copy_from_slice(&self.nonce_base);
        n[16..].copy_from_slice(&block.to_le_bytes());
        n.into()
    }

    /// Encrypts the plaintext in `buf` in place and appends the tag.
    pub fn seal(&self, block: u64, buf: &mut Vec<u8>) {
        let tag = self
            .aead
            .encrypt_in_place_detached(&self.nonce(block), self.extent.as_bytes(), buf)
            .expect("a block is within XChaCha20-Poly1305's limits");
        buf.extend_from_slice(&tag);
    }

    /// Authenticates and decrypts `buf[..ct_len]` (ciphertext ‖ tag) in place, truncating `buf`
    /// to the plaintext. On failure `buf` is left as it was and `false` returned.
    pub fn open(&self, block: u64, buf: &mut Vec<u8>, ct_len: usize) -> bool {
        if ct_len < TAG_LEN || ct_len > buf.len() {
            return false;
        }
        let plain_len = ct_len - TAG_LEN;
        let (msg, rest) = buf.split_at_mut(plain_len);
        let tag = Tag::clone_from_slice(&rest[..TAG_LEN]);
        let ok = self
            .aead
            .decrypt_in_place_detached(&self.nonce(block), self.extent.as_bytes(), msg, &tag)
            .is_ok();
        if ok {
            buf.truncate(plain_len);
        }
        ok
    }
}

/// The erasure code for one geometry, with its working space reused block after block.
pub(crate) struct Coder {
    k: usize,
    m: usize,
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
}

fn rs_err(e: reed_solomon_simd::Error) -> io::Error {
    io::Error::other(format!("erasure code: {e}"))
}

impl Coder {
    pub fn new(k: usize, m: usize) -> Coder {
        Coder {
            k,
            m,
            encoder: None,
            decoder: None,
        }
    }

    /// The `m` parity chunks of `data` (`k` chunks of `s` bytes, back to back); `None` when
    /// `m == 0`.
    pub fn encode(&mut self, data: &[u8], s: usize) -> io::Result<Option<EncoderResult<'_>>> {
        if self.m == 0 {
            return Ok(None);
        }
        let (k, m) = (self.k, self.m);
        match &mut self.encoder {
            Some(e) => e.reset(k, m, s).map_err(rs_err)?,
            None => self.encoder = Some(ReedSolomonEncoder::new(k, m, s).map_err(rs_err)?),
        }
        let enc = self.encoder.as_mut().expect("set above");
        for chunk in data.chunks_exact(s).take(k) {
            enc.add_original_shard(chunk).map_err(rs_err)?;
        }
        enc.encode().map(Some).map_err(rs_err)
    }

    /// Rebuilds the `k` data chunks into `out` (`k * s` bytes) from the chunks named in
    /// `chosen` (exactly `k` shard indices, data `0..k` then parity `k..k+m`).
    pub fn reconstruct(
        &mut self,
        chunks: &[Option<Vec<u8>>],
        chosen: &[usize],
        s: usize,
        out: &mut [u8],
    ) -> io::Result<()> {
        let (k, m) = (self.k, self.m);
        let chunk = |i: usize| chunks[i].as_deref().expect("chosen chunks are present");
        let mut have_all_data = true;
        for i in 0..k {
            if chosen.contains(&i) {
                out[i * s..(i + 1) * s].copy_from_slice(chunk(i));
            } else {
                have_all_data = false;
            }
        }
        if have_all_data {
            return Ok(());
        }
        if m == 0 {
            return Err(io::Error::other(
                "a data shard is missing and there is no parity",
            ));
        }
        match &mut self.decoder {
            Some(d) => d.reset(k, m, s).map_err(rs_err)?,
            None => self.decoder = Some(ReedSolomonDecoder::new(k, m, s).map_err(rs_err)?),
        }
        let dec = self.decoder.as_mut().expect("set above");
        for &i in chosen {
            if i < k {
                dec.add_original_shard(i, chunk(i)).map_err(rs_err)?;
            } else {
                dec.add_recovery_shard(i - k, chunk(i)).map_err(rs_err)?;
            }
        }
        let restored = dec.decode().map_err(rs_err)?;
        for i in (0..k).filter(|i| !chosen.contains(i)) {
            let r = restored.restored_original(i).ok_or_else(|| {
                io::Error::other(format!("erasure code did not restore shard {i}"))
            })?;
            out[i * s..(i + 1) * s].copy_from_slice(r);
        }
        Ok(())
    }
}

/// The `k`-element subsets of `0..n`, in lexicographic order (data shards first).
pub(crate) struct Combinations {
    idx: Vec<usize>,
    n: usize,
    first: bool,
    done: bool,
}

impl Combinations {
    pub fn new(n: usize, k: usize) -> Combinations {
        Combinations {
            idx: (0..k).collect(),
            n,
            first: true,
            done: k > n,
        }
    }
}

impl Iterator for Combinations {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        if self.done {
            return None;
        }
        if self.first {
            self.first = false;
            return Some(self.idx.clone());
        }
        let k = self.idx.len();
        let mut i = k;
        while i > 0 {
            i -= 1;
            if self.idx[i] < self.n - k + i {
                self.idx[i] += 1;
                for j in i + 1..k {
                    self.idx[j] = self.idx[j - 1] + 1;
                }
                return Some(self.idx.clone());
            }
        }
        self.done = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_subsets() {
        let all: Vec<_> = Combinations::new(4, 2).collect();
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(Combinations::new(2, 3).count(), 0);
        assert_eq!(Combinations::new(3, 3).count(), 1);
    }

    #[test]
    fn a_block_survives_losing_parity_count_chunks() {
        let (k, m, s) = (3, 2, 10);
        let data: Vec<u8> = (0..(k * s) as u8).collect();
        let mut coder = Coder::new(k, m);
        let parity: Vec<Vec<u8>> = {
            let res = coder.encode(&data, s).unwrap().unwrap();
            res.recovery_iter().map(<[u8]>::to_vec).collect()
        };
        let mut chunks: Vec<Option<Vec<u8>>> = data
            .chunks(s)
            .map(|c| Some(c.to_vec()))
            .chain(parity.into_iter().map(Some))
            .collect();
        chunks[0] = None;
        chunks[2] = None;
        let mut out = vec![0u8; k * s];
        coder.reconstruct(&chunks, &[1, 3, 4], s, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_wrapped_key_opens_only_under_its_master_key_and_extent() {
        let master = Key::from(random::<32>());
        let id = Uuid::from_u128(1);
        let dk = random::<32>();
        let w = wrap_key(&master, id, &dk);
        assert_eq!(unwrap_key(&master, id, &w).unwrap(), dk);
        assert!(unwrap_key(&Key::from(random::<32>()), id, &w).is_err());
        assert!(unwrap_key(&master, Uuid::from_u128(2), &w).is_err());
    }
}
