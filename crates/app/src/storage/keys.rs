//! S3 access keys: a subscriber creates, lists and revokes them; the secret is shown once and
//! kept sealed (SigV4 needs it in clear to check a signature, so it can't be hashed). The S3
//! endpoint resolves a key to its secret and owner here.

use super::{acting_subscriber, Code};
use crate::{audit, seal, App, Ctx, Error, Result};
use maocloud_datastore::storage::StorageKey;
use maocloud_types::SubscriberId;
use rand::Rng;
use serde_json::json;

/// How long a resolved key is trusted without asking the database again. A revocation in this
/// process takes effect at once; one made through another replica, within this delay.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keys resolved recently: the S3 endpoint resolves the key of every request (twice: to check
/// the signature, then to know whose it is).
#[derive(Default)]
pub struct KeyCache(
    std::sync::Mutex<std::collections::HashMap<String, (String, SubscriberId, std::time::Instant)>>,
);

impl KeyCache {
    fn get(&self, id: &str) -> Option<(String, SubscriberId)> {
        let m = self.0.lock().expect("key cache lock");
        m.get(id)
            .filter(|(_, _, at)| at.elapsed() < CACHE_TTL)
            .map(|(s, w, _)| (s.clone(), *w))
    }
    fn put(&self, id: &str, secret: &str, who: SubscriberId) {
        let mut m = self.0.lock().expect("key cache lock");
        if m.len() > 10_000 {
            m.retain(|_, (_, _, at)| at.elapsed() < CACHE_TTL);
        }
        m.insert(
            id.to_string(),
            (secret.to_string(), who, std::time::Instant::now()),
        );
    }
    /// Forgets every key of `who` (or all keys): after a revocation.
    pub(crate) fn forget(&self, who: Option<SubscriberId>) {
        let mut m = self.0.lock().expect("key cache lock");
        match who {
            Some(w) => m.retain(|_, (_, owner, _)| *owner != w),
            None => m.clear(),
        }
    }
}

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
    let name = crate::compute::keys::check_name(name)?;
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
        name,
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
    app.storage_keys().forget(Some(me));
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
    if let Some(hit) = app.storage_keys().get(access_key) {
        return Ok(hit);
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
    app.storage_keys()
        .put(access_key, &secret, key.subscriber_id);
    Ok((secret, key.subscriber_id))
}
