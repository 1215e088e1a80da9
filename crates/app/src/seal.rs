//! Encryption at rest for what must never sit in clear in the database: proof
//! documents, TOTP secrets, attachments, exports. XChaCha20-Poly1305 under the platform's data
//! key, kept in `--data-key-file` (default `<data_dir>/data.key`; created on first use, mode
//! 0600). Replicas of one platform must share that key.

use crate::{App, Error, Result};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use std::io::Write;

const KEY_FILE: &str = "data.key";

/// The platform's 32-byte data key (object storage wraps each object's key with it, R-9.4).
pub fn key_bytes(app: &App) -> Result<[u8; 32]> {
    if let Some(k) = app.inner.sealing_key.get() {
        return Ok(*k);
    }
    let k = read_or_create(app)?;
    Ok(*app.inner.sealing_key.get_or_init(|| k))
}

/// Reads `data.key`, creating it on first use.
fn read_or_create(app: &App) -> Result<[u8; 32]> {
    let path = app
        .settings()
        .data_key_file
        .clone()
        .unwrap_or_else(|| app.settings().data_dir.join(KEY_FILE));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(Error::internal)?;
            }
            let k = XChaCha20Poly1305::generate_key(&mut OsRng);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(&path) {
                Ok(mut f) => {
                    f.write_all(&k).map_err(Error::internal)?;
                    f.sync_all().map_err(Error::internal)?;
                    k.to_vec()
                }
                // Another task created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::read(&path).map_err(Error::internal)?
                }
                Err(e) => return Err(Error::internal(e)),
            }
        }
        Err(e) => return Err(Error::internal(e)),
    };
    bytes
        .try_into()
        .map_err(|_| Error::Internal(format!("{} is not a 32-byte key", path.display())))
}

fn key(app: &App) -> Result<XChaCha20Poly1305> {
    Ok(XChaCha20Poly1305::new(&key_bytes(app)?.into()))
}

/// Seals `plain`: base64 of nonce ‖ ciphertext.
pub fn seal(app: &App, plain: &[u8]) -> Result<String> {
    let cipher = key(app)?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = nonce.to_vec();
    out.extend(cipher.encrypt(&nonce, plain).map_err(Error::internal)?);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Opens what [`seal`] sealed; fails if it was tampered with or the key changed.
pub fn open(app: &App, sealed: &str) -> Result<Vec<u8>> {
    let cipher = key(app)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(Error::internal)?;
    if raw.len() < 24 {
        return Err(Error::Internal("sealed data too short".into()));
    }
    let (nonce, body) = raw.split_at(24);
    cipher
        .decrypt(nonce.into(), body)
        .map_err(|_| Error::Internal("sealed data cannot be opened with this data key".into()))
}
