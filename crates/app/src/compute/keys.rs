//! SSH public keys a subscriber registers and puts into their VMs (served by the metadata
//! service and the cloud-init seed). A key is checked to be a real OpenSSH public key.

use crate::{audit, App, Ctx, Error, Result};
use base64::Engine;
use maocloud_datastore::compute::SshKey;
use maocloud_types::SshKeyId;
use serde_json::json;
use sha2::Digest;

const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks an OpenSSH public key line (`type base64 [comment]`) and returns it normalised (one
/// line, single spaces) with its SHA256 fingerprint as `ssh-keygen -l` prints it.
pub fn parse(line: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::invalid("public_key", why.to_string());
    let line = line.trim();
    if line.contains(['\n', '\r']) {
        return Err(bad("must be a single line"));
    }
    let mut parts = line.split_whitespace();
    let kind = parts.next().ok_or_else(|| bad("is empty"))?;
    if !TYPES.contains(&kind) {
        return Err(bad(
            "is not an OpenSSH public key (ssh-ed25519, ssh-rsa or ecdsa-sha2-…)",
        ));
    }
    let b64 = parts
        .next()
        .ok_or_else(|| bad("lacks the base64 key after the type"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("has a key part that is not base64"))?;
    // The blob starts with the key type as an SSH string: u32 length then the name.
    let ok = blob.len() > 4 + kind.len() && {
        let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        n == kind.len() && &blob[4..4 + n] == kind.as_bytes()
    };
    if !ok {
        return Err(bad("has a key part that does not match its type"));
    }
    let comment: Vec<&str> = parts.collect();
    let comment = comment.join(" ");
    if comment.chars().count() > 200 {
        return Err(bad("has a comment longer than 200 characters"));
    }
    let normal = if comment.is_empty() {
        format!("{kind} {b64}")
    } else {
        format!("{kind} {b64} {comment}")
    };
    let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob));
    Ok((normal, format!("SHA256:{fp}")))
}

/// A key's name (SSH or S3): 1 to 64 printable characters, trimmed.
pub(crate) fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 64 printable characters",
        ));
    }
    Ok(name.to_string())
}

pub async fn add(app: &App, ctx: &Ctx, name: &str, public_key: &str) -> Result<SshKey> {
    let owner = ctx.require_subscriber()?;
    let name = check_name(name)?;
    let (public_key, fingerprint) = parse(public_key)?;
    let now = app.now();
    let key = SshKey {
        id: SshKeyId::new(),
        subscriber_id: owner,
        name,
        public_key,
        fingerprint,
        created_at: now,
    };
    let mut tx = app.db().write().await?;
    match tx.ssh_key_insert(&key).await {
        Err(maocloud_datastore::Error::Conflict(_)) => {
            return Err(Error::Conflict {
                field: Some("name".into()),
                reason: "you already have an SSH key with this name".into(),
            })
        }
        r => r?,
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "ssh_key.add",
        Some(&key.id.to_string()),
        Some(owner),
        json!({"fingerprint": key.fingerprint}),
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Vec<SshKey>> {
    let mut tx = app.db().read().await?;
    Ok(tx.ssh_key_list(&ctx.scope()).await?)
}

/// A key by id or name.
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<SshKey> {
    let mut tx = app.db().read().await?;
    Ok(tx.ssh_key_fetch(&ctx.scope(), id).await?)
}

/// Removes a key. VMs made with it keep it (it was copied into them at creation).
pub async fn delete(app: &App, ctx: &Ctx, id: &str) -> Result<()> {
    let owner = ctx.require_subscriber()?;
    let mut tx = app.db().write().await?;
    let key = tx.ssh_key_fetch(&ctx.scope(), id).await?;
    tx.ssh_key_delete(key.id).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "ssh_key.delete",
        Some(&key.id.to_string()),
        Some(owner),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl demo@maocloud";

    #[test]
    fn accepts_a_real_key_and_fingerprints_it() {
        let (k, fp) = super::parse(&format!("  {ED}  ")).unwrap();
        assert_eq!(k, ED);
        assert!(fp.starts_with("SHA256:") && fp.len() == 50, "{fp}");
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        for bad in [
            "",
            "hello world",
            "ssh-ed25519 not-base64!",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            "ssh-ed25519 AAAA\nssh-ed25519 AAAA",
        ] {
            let e = super::parse(bad).unwrap_err();
            assert!(e.to_string().contains("public_key"), "{bad}: {e}");
        }
    }
}
