//! Buckets: created, listed and deleted by their subscriber; one name space for the whole
//! platform, as in S3. Also the quotas (GB stored, object count) a bucket's writes are held to,
//! and each subscriber's usage.

use super::{acting_subscriber, refuse, Code};
use crate::{audit, billing, App, Ctx, Error, Result};
use maocloud_datastore::storage::{Bucket, SubscriberUsage};
use maocloud_datastore::Scope;
use maocloud_types::{OperatorRole, SubscriberId};
use serde_json::json;

/// Buckets one subscriber may have.
pub const MAX_BUCKETS: usize = 100;
/// Objects per GB of an offer's included storage, when no operator set a count.
pub const OBJECTS_PER_GB: i64 = 10_000;
const GB: i64 = 1_000_000_000;

/// S3's bucket naming rules: 3–63 characters of lowercase letters, digits, dots and hyphens,
/// starting and ending with a letter or digit; no `..`, not an IP address, none of AWS's
/// reserved prefixes and suffixes.
pub fn check_bucket_name(name: &str) -> std::result::Result<(), &'static str> {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Err("must be 3 to 63 characters long");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return Err("may hold only lowercase letters, digits, dots and hyphens");
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge(b[0]) || !edge(b[b.len() - 1]) {
        return Err("must start and end with a letter or a digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err("must not hold two dots in a row or a dot next to a hyphen");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not look like an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") {
        return Err("must not use a prefix or suffix reserved by S3 (xn--, sthree-, -s3alias)");
    }
    Ok(())
}

/// A bucket the caller may act on: absent and someone else's are told apart as S3 does
/// (NoSuchBucket / AccessDenied) only for the S3 endpoint's sake; neither reveals content.
pub(crate) async fn owned_bucket(app: &App, who: SubscriberId, name: &str) -> Result<Bucket> {
    let mut tx = app.db().read().await?;
    match tx.bucket_fetch(name).await {
        Ok(b) if b.subscriber_id == who => Ok(b),
        Ok(_) => Err(refuse(Code::AccessDenied, Some("bucket"), "access denied")),
        Err(maocloud_datastore::Error::NotFound) => Err(refuse(
            Code::NoSuchBucket,
            Some("bucket"),
            "the bucket does not exist",
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn bucket_create(app: &App, ctx: &Ctx, name: &str) -> Result<Bucket> {
    let me = super::writing_subscriber(app, ctx).await?;
    check_bucket_name(name).map_err(|why| refuse(Code::InvalidBucketName, Some("name"), why))?;
    let now = app.now();
    let b = Bucket {
        name: name.to_string(),
        subscriber_id: me,
        cors: None,
        bytes: 0,
        objects: 0,
        created_at: now,
    };
    let mut tx = app.db().write().await?;
    if tx.bucket_list(&Scope::Subscriber(me)).await?.len() >= MAX_BUCKETS {
        return Err(refuse(
            Code::InvalidArgument,
            Some("name"),
            format!("you already have {MAX_BUCKETS} buckets: delete one first"),
        ));
    }
    match tx.bucket_fetch(name).await {
        Ok(other) if other.subscriber_id == me => {
            return Err(refuse(
                Code::BucketAlreadyOwnedByYou,
                Some("name"),
                "you already have a bucket with this name",
            ))
        }
        Ok(_) => {
            return Err(refuse(
                Code::BucketAlreadyExists,
                Some("name"),
                "this bucket name is taken: bucket names are shared by everyone on the platform",
            ))
        }
        Err(maocloud_datastore::Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    tx.bucket_insert(&b).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "bucket.create",
        Some(name),
        Some(me),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    app.meter().add(me, 1, 0, 0);
    Ok(b)
}

/// The caller's buckets (operators: everyone's), with their live totals.
pub async fn bucket_list(app: &App, ctx: &Ctx) -> Result<Vec<Bucket>> {
    if ctx.principal.subscriber().is_none() {
        ctx.require_operator(&[OperatorRole::Support, OperatorRole::Billing])?;
    }
    let mut tx = app.db().read().await?;
    Ok(tx.bucket_list(&ctx.scope()).await?)
}

/// A bucket the acting subscriber owns, as the S3 endpoint sees it: `AccessDenied` for someone
/// else's, `NoSuchBucket` for none, refused while suspended.
pub async fn bucket_owned(app: &App, ctx: &Ctx, name: &str) -> Result<Bucket> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, name).await
}

/// A bucket of the caller's (404 for anyone else's, as every subscriber resource).
pub async fn bucket_get(app: &App, ctx: &Ctx, name: &str) -> Result<Bucket> {
    let mut tx = app.db().read().await?;
    match tx.bucket_fetch(name).await {
        Ok(b)
            if ctx.scope() == Scope::All || Some(b.subscriber_id) == ctx.principal.subscriber() =>
        {
            Ok(b)
        }
        Ok(_) | Err(maocloud_datastore::Error::NotFound) => Err(refuse(
            Code::NoSuchBucket,
            Some("bucket"),
            "the bucket does not exist",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an empty bucket (no objects, no upload in progress).
pub async fn bucket_delete(app: &App, ctx: &Ctx, name: &str) -> Result<()> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, name).await?;
    let mut tx = app.db().write().await?;
    let b = tx.bucket_fetch(name).await?;
    if b.objects > 0 || tx.bucket_upload_count(name).await? > 0 {
        return Err(refuse(
            Code::BucketNotEmpty,
            Some("bucket"),
            "the bucket is not empty: delete its objects and abort its uploads first",
        ));
    }
    tx.bucket_delete(name).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "bucket.delete",
        Some(name),
        Some(me),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores a bucket's CORS rules (the S3 endpoint's JSON form), or removes them.
pub async fn bucket_set_cors(app: &App, ctx: &Ctx, name: &str, cors: Option<&str>) -> Result<()> {
    let me = super::writing_subscriber(app, ctx).await?;
    owned_bucket(app, me, name).await?;
    let mut tx = app.db().write().await?;
    tx.bucket_set_cors(name, cors).await?;
    tx.commit().await?;
    Ok(())
}

/// A bucket's CORS rules, for the S3 endpoint (also answering preflights, unauthenticated).
pub async fn bucket_cors(app: &App, name: &str) -> Result<Option<String>> {
    let mut tx = app.db().read().await?;
    match tx.bucket_fetch(name).await {
        Ok(b) => Ok(b.cors),
        Err(maocloud_datastore::Error::NotFound) => Err(refuse(
            Code::NoSuchBucket,
            Some("bucket"),
            "the bucket does not exist",
        )),
        Err(e) => Err(e.into()),
    }
}

/// A subscriber's object-storage quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Quota {
    pub bytes: i64,
    pub objects: i64,
    /// Set by an operator rather than taken from the offers.
    pub manual: bool,
}

/// The quota: an operator's, or the offers' included storage (GB of 10^9 bytes) and
/// [`OBJECTS_PER_GB`] objects per GB.
pub async fn quota_of(app: &App, who: SubscriberId) -> Result<Quota> {
    let mut tx = app.db().read().await?;
    if let Some((bytes, objects)) = tx.storage_quota_fetch(who).await? {
        return Ok(Quota {
            bytes,
            objects,
            manual: true,
        });
    }
    let gb = billing::included(&tx.subscription_list(&Scope::All, who).await?)?.storage_gb;
    Ok(Quota {
        bytes: gb * GB,
        objects: gb * OBJECTS_PER_GB,
        manual: false,
    })
}

/// Operators set (or clear, with `None`) a subscriber's storage quota.
pub async fn quota_set(
    app: &App,
    ctx: &Ctx,
    who: SubscriberId,
    quota: Option<(i64, i64)>,
) -> Result<Quota> {
    ctx.require_operator(&[OperatorRole::Support, OperatorRole::Billing])?;
    if let Some((bytes, objects)) = quota {
        if bytes < 0 {
            return Err(Error::invalid("bytes", "must not be negative"));
        }
        if objects < 0 {
            return Err(Error::invalid("objects", "must not be negative"));
        }
    }
    let mut tx = app.db().write().await?;
    tx.account_fetch(who.0).await?;
    tx.storage_quota_set(who, quota, app.now()).await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "storage.quota",
        None,
        Some(who),
        json!({"quota": quota}),
    )
    .await?;
    tx.commit().await?;
    quota_of(app, who).await
}

/// What a subscriber stores and may store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Usage {
    pub bytes: i64,
    pub objects: i64,
    pub quota: Quota,
}

pub async fn usage(app: &App, ctx: &Ctx, who: Option<SubscriberId>) -> Result<Usage> {
    let who = match (ctx.principal.subscriber(), who) {
        (Some(me), None) => me,
        (Some(me), Some(w)) if w == me => me,
        (Some(_), Some(_)) => return Err(Error::NotFound),
        (None, Some(w)) => {
            ctx.require_operator(&[OperatorRole::Support, OperatorRole::Billing])?;
            w
        }
        (None, None) => return Err(Error::invalid("subscriber", "is required")),
    };
    let (bytes, objects) = app.db().read().await?.storage_totals(who).await?;
    Ok(Usage {
        bytes,
        objects,
        quota: quota_of(app, who).await?,
    })
}

/// Operators: every subscriber's stored totals.
pub async fn usage_all(app: &App, ctx: &Ctx) -> Result<Vec<SubscriberUsage>> {
    ctx.require_operator(&[OperatorRole::Support, OperatorRole::Billing])?;
    Ok(app.db().read().await?.storage_usage_all().await?)
}
