//! S3 access keys: a subscriber creates, lists and revokes them; the secret is shown once and
//! kept sealed (SigV4 needs it in clear to check a signature, so it can't be hashed). The S3
//! endpoint resolves a key to its secret and owner here.

use super::{acting_subscriber, Code};
use crate::{audit, seal, App, Ctx, Error, Result};
use maocloud_datastore::storage::StorageKey;
use maocloud_types::SubscriberId;
use rand::Rng;
use serde_json::json;

/// At most this many active keys per subscriber.
pub const MAX_KEYS: i64 = 50;

/// A key with its secret, as shown once at creation.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: StorageKey,
    pub secret: String,
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Creates a key for the signed-in subscriber: `MCK` + 17 characters (20 in all, as AWS key
/// ids are) and a 40-character secret.
pub async fn key_create(app: &App, ctx: &Ctx, name: &str) -> Result<NewKey> {
    let me = acting_subscriber(app, ctx).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 64 printable characters",
        ));
    }
    let id = format!(
        "MCK{}",
        random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17)
    );
    let secret = random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        40,
    );
    let now = app.now();
    let key = StorageKey {
        id,
        subscriber_id: me,
        name: name.to_string(),
        secret: seal::seal(app, secret.as_bytes())?,
        status: "active".into(),
        created_at: now,
        revoked_at: None,
    };
    let mut tx = app.db().write().await?;
    if tx.storage_key_count_active(me).await? >= MAX_KEYS {
        return Err(Error::Conflict {
            field: Some("name".into()),
            reason: format!("you already have {MAX_KEYS} active keys: revoke one first"),
        });
    }
    tx.storage_key_insert(&key).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "storage_key.create",
        Some(&key.id),
        Some(me),
        json!({"name": key.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(NewKey { key, secret })
}

/// The keys the caller may see (a subscriber's own; operators see all), revoked ones included.
pub async fn key_list(app: &App, ctx: &Ctx) -> Result<Vec<StorageKey>> {
    let mut tx = app.db().read().await?;
    Ok(tx.storage_key_list(&ctx.scope()).await?)
}

/// Revokes a key at once: the next request signed with it is refused.
pub async fn key_revoke(app: &App, ctx: &Ctx, id: &str) -> Result<StorageKey> {
    // Revoking stays possible while suspended: it only ever reduces access.
    let me = ctx.require_subscriber()?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let key = tx.storage_key_fetch(&ctx.scope(), id).await?;
    if !tx.storage_key_revoke(&key.id, now).await? {
        return Err(Error::Conflict {
            field: None,
            reason: "this key is already revoked".into(),
        });
    }
    audit::record(
        &mut tx,
        ctx,
        now,
        "storage_key.revoke",
        Some(&key.id),
        Some(me),
        json!({}),
    )
    .await?;
    let key = tx.storage_key_fetch(&ctx.scope(), id).await?;
    tx.commit().await?;
    Ok(key)
}

/// What the S3 endpoint learns from an access key id: the secret to check the signature with,
/// and whose request it is. Unknown and revoked keys are refused alike.
pub async fn key_resolve(app: &App, access_key: &str) -> Result<(String, SubscriberId)> {
    let denied = || {
        super::refuse(
            Code::AccessDenied,
            None,
            "the access key does not exist or was revoked",
        )
    };
    if access_key.len() > 128 {
        return Err(denied());
    }
    let mut tx = app.db().read().await?;
    let key = match tx
        .storage_key_fetch(&maocloud_datastore::Scope::All, access_key)
        .await
    {
        Ok(k) if k.status == "active" => k,
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => return Err(denied()),
        Err(e) => return Err(e.into()),
    };
    let secret = String::from_utf8(seal::open(app, &key.secret)?).map_err(Error::internal)?;
    Ok((secret, key.subscriber_id))
}
