//! Object storage (R-1b): the S3 service's use cases, whatever the transport — the S3 endpoint,
//! the REST API, the console and the CLI all call these. Subscribers own access keys and
//! buckets; objects are indexed in the datastore and their bytes live in a [`BlobStore`] (the
//! embedded erasure-coded engine by default). Suspension refuses every request and keeps the
//! data (R-7.1c); quotas come from the offer (or an operator); usage is metered for billing
//! (R-6.1b).

mod buckets;
mod keys;
mod meter;
mod multipart;
mod objects;
mod upkeep;

pub use buckets::*;
pub use keys::*;
pub use maocloud_datastore::storage::{
    Bucket, DayCounters, Part, StorageKey, SubscriberUsage, Upload,
};
pub use meter::{counters, flush_meter, Meter};
pub use multipart::*;
pub use objects::*;
pub use upkeep::*;

use crate::{App, Ctx, Error, Result};
use maocloud_objstore::BlobStore;
use maocloud_types::SubscriberId;
use std::sync::Arc;

/// Which S3 error a refusal is; the S3 endpoint answers with the code of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidBucketName,
    InvalidArgument,
    InvalidDigest,
    BadDigest,
    InvalidPart,
    InvalidPartOrder,
    EntityTooSmall,
    EntityTooLarge,
    InvalidRange,
    PreconditionFailed,
    NotModified,
    AccessDenied,
    QuotaExceeded,
    /// The subscriber is suspended (R-7.1c): nothing is served, nothing is lost.
    Suspended,
    /// Every contract has ended: data is kept read-only until erased (R-7.3c).
    ReadOnly,
    /// This platform runs without object storage.
    NotEnabled,
}

pub(crate) fn refuse(code: Code, field: Option<&'static str>, reason: impl Into<String>) -> Error {
    Error::storage(code, field, reason)
}

/// The blob store attached to the platform.
pub(crate) fn store(app: &App) -> Result<&Arc<dyn BlobStore>> {
    app.blob_store().ok_or_else(|| {
        refuse(
            Code::NotEnabled,
            None,
            "object storage is not enabled on this platform",
        )
    })
}

/// The subscriber acting, refusing operators (they read, they don't write, subscribers' data)
/// and suspended subscribers (R-7.1c).
pub(crate) async fn acting_subscriber(app: &App, ctx: &Ctx) -> Result<SubscriberId> {
    let me = ctx.require_subscriber()?;
    ensure_not_suspended(app, me).await?;
    Ok(me)
}

/// The subscriber acting, for a change to their data: as [`acting_subscriber`], and refused
/// once every contract has ended (R-7.3c: data kept read-only until erased; deleting stays
/// possible — it is theirs to remove early).
pub(crate) async fn writing_subscriber(app: &App, ctx: &Ctx) -> Result<SubscriberId> {
    let me = acting_subscriber(app, ctx).await?;
    let mut tx = app.db().read().await?;
    if crate::termination::all_contracts_ended(&mut tx, me).await? {
        return Err(refuse(
            Code::ReadOnly,
            None,
            "your contract has ended: your buckets are kept read-only until their erasure date; download what you need",
        ));
    }
    Ok(me)
}

/// R-7.3c: erases a subscriber's object storage after the grace period, in the caller's
/// transaction: every bucket with its objects and uploads (their bytes queued for deletion),
/// and every access key revoked. Returns how many buckets.
pub(crate) async fn erase_all(
    tx: &mut maocloud_datastore::Tx,
    who: SubscriberId,
    now: maocloud_types::Timestamp,
) -> Result<usize> {
    let buckets = tx
        .bucket_list(&maocloud_datastore::Scope::Subscriber(who))
        .await?;
    for b in &buckets {
        for extents in tx.bucket_purge(&b.name).await? {
            objects::queue_garbage(tx, &extents, now).await?;
        }
    }
    tx.storage_keys_revoke_all(who, now).await?;
    Ok(buckets.len())
}

/// R-7.1c: a suspended subscriber's requests are refused with the reason; data stays.
pub(crate) async fn ensure_not_suspended(app: &App, who: SubscriberId) -> Result<()> {
    if crate::suspension::is_suspended(app, who).await? {
        return Err(refuse(
            Code::Suspended,
            None,
            "this account is suspended: object storage refuses requests until the suspension is lifted; no data is lost (see the notices in your subscriber area)",
        ));
    }
    Ok(())
}
