//! Objects: put (streamed into the blob store, then indexed in one transaction, so an object is
//! whole or absent, never torn), read, head, list (prefix, delimiter, pagination in S3's byte
//! order), copy and delete. Quotas are enforced while the body streams and again at commit.

use super::{acting_subscriber, buckets::owned_bucket, refuse, store, Code};
use crate::{App, Ctx, Error, Result};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use maocloud_datastore::storage::Object;
use maocloud_objstore::{ByteStream, Extent, Uuid};
use maocloud_types::{SubscriberId, Timestamp};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The largest object a single PUT (or a single part) may carry, as S3: 5 GiB.
pub const MAX_PUT: u64 = 5 << 30;
/// The longest key, in bytes, as S3.
pub const MAX_KEY: usize = 1024;

/// What an object carries besides its bytes: user metadata, the standard headers it was
/// stored with, the checksums it was sent with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `(algorithm, base64 value)`, e.g. `("crc32c", "yZRlqg==")`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<(String, String)>,
    /// Part count, for an object made by a multipart upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
}

/// An object as the transports show it.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Quoted, as S3 sends it.
    pub etag: String,
    pub content_type: Option<String>,
    pub meta: ObjectMeta,
    pub modified_at: Timestamp,
    pub(crate) owner: SubscriberId,
    pub(crate) extents: Vec<Extent>,
}

impl ObjectInfo {
    fn from_row(o: Object, owner: SubscriberId) -> Result<ObjectInfo> {
        Ok(ObjectInfo {
            meta: serde_json::from_str(&o.metadata).map_err(Error::internal)?,
            extents: serde_json::from_str(&o.extents).map_err(Error::internal)?,
            bucket: o.bucket,
            key: o.key,
            size: o.size as u64,
            etag: o.etag,
            content_type: o.content_type,
            modified_at: o.modified_at,
            owner,
        })
    }
}

/// Checks run once the body is stored and before the object becomes visible: they return the
/// checksums to keep with the object, or refuse it (a checksum the client sent doesn't match).
pub type Verify = Box<dyn FnOnce() -> Result<Vec<(String, String)>> + Send>;

/// A body to store.
pub struct Body {
    pub stream: ByteStream,
    /// The length the client declared, checked against what arrives.
    pub length: Option<u64>,
    /// `Content-MD5`, base64, as sent.
    pub content_md5: Option<String>,
    pub verify: Option<Verify>,
}

impl Body {
    /// A body from bytes in memory (the console's uploads, tests).
    pub fn from_bytes(b: Bytes) -> Body {
        let len = b.len() as u64;
        Body {
            stream: futures::stream::once(async move { Ok(b) }).boxed(),
            length: Some(len),
            content_md5: None,
            verify: None,
        }
    }
}

/// What a write is conditioned on (`If-Match` / `If-None-Match`).
#[derive(Debug, Clone, Default)]
pub struct WriteIf {
    /// An ETag, or `*`: the object must exist (with this ETag).
    pub if_match: Option<String>,
    /// `*`: the object must not exist.
    pub if_none_match: Option<String>,
}

/// The key rules: 1 to 1,024 bytes of UTF-8 (the transports hand us strings).
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(refuse(
            Code::InvalidArgument,
            Some("key"),
            "must be 1 to 1024 bytes long",
        ));
    }
    Ok(())
}

fn unquote(e: &str) -> &str {
    e.trim().trim_start_matches("W/").trim_matches('"')
}

fn check_write_if(cond: &WriteIf, current: Option<&Object>) -> Result<()> {
    let failed = |why: &str| refuse(Code::PreconditionFailed, None, why.to_string());
    if let Some(m) = &cond.if_match {
        match current {
            None => return Err(failed("the object does not exist (If-Match)")),
            Some(o) if m.trim() != "*" && unquote(m) != unquote(&o.etag) => {
                return Err(failed("the object's ETag does not match (If-Match)"))
            }
            _ => {}
        }
    }
    if let Some(m) = &cond.if_none_match {
        if let Some(o) = current {
            if m.trim() == "*" || unquote(m) == unquote(&o.etag) {
                return Err(failed("the object already exists (If-None-Match)"));
            }
        }
    }
    Ok(())
}

/// A refusal raised while the body streams; it travels through the blob store as an io::Error.
#[derive(Debug)]
struct StreamRefusal(Error);
impl std::fmt::Display for StreamRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for StreamRefusal {}

fn stream_refusal(e: Error) -> std::io::Error {
    std::io::Error::other(StreamRefusal(e))
}

/// The outcome of streaming a body into the blob store.
pub(crate) struct Stored {
    pub extent: Extent,
    pub md5: [u8; 16],
    /// What the body's [`Verify`] check kept.
    pub checksums: Vec<(String, String)>,
}

/// Streams `body` into the blob store as extent `id`, refusing more than `limit` bytes
/// (`over`: the refusal then), a length or MD5 that doesn't match what was declared, and what
/// the body's own check refuses; refused bytes are discarded.
pub(crate) async fn store_body(
    app: &App,
    id: Uuid,
    body: Body,
    limit: u64,
    over: fn(u64) -> Error,
) -> Result<Stored> {
    let store = store(app)?.clone();
    let hasher = Arc::new(Mutex::new((Md5::new(), 0u64)));
    let h = hasher.clone();
    let declared = body.length;
    let counted = body.stream.map(move |chunk| {
        let chunk = chunk?;
        let mut g = h.lock().expect("hasher lock");
        g.1 += chunk.len() as u64;
        if g.1 > limit {
            return Err(stream_refusal(over(limit)));
        }
        if declared.is_some_and(|d| g.1 > d) {
            return Err(stream_refusal(refuse(
                Code::InvalidArgument,
                Some("content-length"),
                "the body is longer than its declared Content-Length",
            )));
        }
        g.0.update(&chunk);
        Ok(chunk)
    });
    let extent = match store.put(id, counted.boxed()).await {
        Ok(e) => e,
        Err(maocloud_objstore::Error::Body(io)) => {
            return Err(
                match io.into_inner().map(|b| b.downcast::<StreamRefusal>()) {
                    Some(Ok(r)) => r.0,
                    Some(Err(other)) => refuse(
                        Code::InvalidArgument,
                        None,
                        format!("the request body could not be read: {other}"),
                    ),
                    None => refuse(
                        Code::InvalidArgument,
                        None,
                        "the request body could not be read",
                    ),
                },
            )
        }
        Err(e) => return Err(Error::internal(e)),
    };
    let (md5, len) = {
        let mut g = hasher.lock().expect("hasher lock");
        let (h, n) = std::mem::replace(&mut *g, (Md5::new(), 0));
        (h.finalize(), n)
    };
    let md5: [u8; 16] = md5.into();
    let mismatch = if declared.is_some_and(|d| d != len) {
        Some(refuse(
            Code::InvalidArgument,
            Some("content-length"),
            "the body is shorter than its declared Content-Length",
        ))
    } else if let Some(sent) = &body.content_md5 {
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(sent.trim()) {
            Ok(b) if b.len() == 16 && b == md5 => None,
            Ok(b) if b.len() == 16 => Some(refuse(
                Code::BadDigest,
                Some("content-md5"),
                "the Content-MD5 you specified did not match what we received",
            )),
            _ => Some(refuse(
                Code::InvalidDigest,
                Some("content-md5"),
                "the Content-MD5 you specified is not a base64 MD5",
            )),
        }
    } else {
        None
    };
    let checked = match (mismatch, body.verify) {
        (Some(e), _) => Err(e),
        (None, Some(verify)) => verify(),
        (None, None) => Ok(vec![]),
    };
    match checked {
        Ok(checksums) => Ok(Stored {
            extent,
            md5,
            checksums,
        }),
        Err(e) => {
            discard(app, &extent).await;
            Err(e)
        }
    }
}

/// Removes an extent no row names (a refused write).
pub(crate) async fn discard(app: &App, extent: &Extent) {
    if let Ok(s) = store(app) {
        if let Err(e) = s.delete(extent).await {
            tracing::warn!(extent = %extent.id, error = %e, "could not remove a refused write; the orphan sweep will");
        }
    }
}

fn quota_refusal(what: &str) -> Error {
    refuse(
        Code::QuotaExceeded,
        None,
        format!("this write would exceed your object storage quota ({what}); free some space or move to a larger offer"),
    )
}

fn over_quota(_: u64) -> Error {
    quota_refusal("GB stored")
}

fn too_large(limit: u64) -> Error {
    refuse(
        Code::EntityTooLarge,
        None,
        format!("a single upload may carry at most {limit} bytes: use a multipart upload"),
    )
}

/// A new object, streamed from `body`.
pub struct PutObject {
    pub bucket: String,
    pub key: String,
    pub content_type: Option<String>,
    pub meta: ObjectMeta,
    pub cond: WriteIf,
}

pub async fn put_object(app: &App, ctx: &Ctx, put: PutObject, body: Body) -> Result<ObjectInfo> {
    let me = super::writing_subscriber(app, ctx).await?;
    owned_bucket(app, me, &put.bucket).await?;
    check_key(&put.key)?;
    let existing = current(app, &put.bucket, &put.key).await?;
    check_write_if(&put.cond, existing.as_ref())?;
    let quota = super::quota_of(app, me).await?;
    let (bytes, objects) = app.db().read().await?.storage_totals(me).await?;
    let (bytes_left, objects_left) = (quota.bytes - bytes, quota.objects - objects);
    // An overwrite replaces an object: it needs no room in the count, and gets back its bytes.
    let bytes_left = bytes_left + existing.as_ref().map_or(0, |o| o.size);
    if objects_left < 1 && existing.is_none() {
        return Err(quota_refusal("object count"));
    }
    if body.length.is_some_and(|l| l > MAX_PUT) {
        return Err(too_large(MAX_PUT));
    }
    if body.length.is_some_and(|l| l as i64 > bytes_left) {
        return Err(quota_refusal("GB stored"));
    }
    let limit = (bytes_left.max(0) as u64).min(MAX_PUT);
    let over = if limit == MAX_PUT {
        too_large
    } else {
        over_quota
    };
    let version = Uuid::now_v7();
    let stored = store_body(app, version, body, limit, over).await?;
    let size = stored.extent.size;
    let etag = format!("\"{}\"", hex(&stored.md5));
    let meta = ObjectMeta {
        checksums: stored.checksums,
        ..put.meta
    };
    let info = commit_object(
        app,
        me,
        &put.bucket,
        &put.key,
        &put.cond,
        version,
        size,
        etag,
        put.content_type,
        meta,
        vec![stored.extent],
        None,
        &quota,
    )
    .await?;
    app.meter().add(me, 1, size as i64, 0);
    Ok(info)
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn current(app: &App, bucket: &str, key: &str) -> Result<Option<Object>> {
    match app.db().read().await?.object_fetch(bucket, key).await {
        Ok(o) => Ok(Some(o)),
        Err(maocloud_datastore::Error::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes an object visible in one transaction: conditions and quota checked again (writes
/// race), the extents claimed, the replaced object's extents queued for deletion. On refusal
/// the new extents are discarded.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn commit_object(
    app: &App,
    me: SubscriberId,
    bucket: &str,
    key: &str,
    cond: &WriteIf,
    version: Uuid,
    size: u64,
    etag: String,
    content_type: Option<String>,
    meta: ObjectMeta,
    extents: Vec<Extent>,
    completes: Option<(&str, &[i64])>,
    quota: &super::Quota,
) -> Result<ObjectInfo> {
    let now = app.now();
    let row = Object {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version: version.to_string(),
        size: size as i64,
        etag,
        content_type,
        metadata: serde_json::to_string(&meta).map_err(Error::internal)?,
        extents: serde_json::to_string(&extents).map_err(Error::internal)?,
        modified_at: now,
    };
    let attempt = async {
        let mut tx = app.db().write().await?;
        let existing = match tx.object_fetch(bucket, key).await {
            Ok(o) => Some(o),
            Err(maocloud_datastore::Error::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        check_write_if(cond, existing.as_ref())?;
        if let Some((upload, chosen)) = completes {
            // The upload goes as the object appears; parts not chosen become garbage.
            let parts = tx.upload_delete(upload).await?;
            if parts.is_empty() {
                return Err(refuse(
                    Code::NoSuchUpload,
                    Some("upload_id"),
                    "the upload does not exist",
                ));
            }
            for p in parts.iter().filter(|p| !chosen.contains(&p.part_number)) {
                queue_garbage(&mut tx, &format!("[{}]", p.extent), now).await?;
            }
        }
        let replaced = tx.object_put(&row).await?;
        let (bytes, objects) = tx.storage_totals(me).await?;
        if objects > quota.objects {
            return Err(quota_refusal("object count"));
        }
        if bytes > quota.bytes && replaced.as_ref().is_none_or(|r| r.size < row.size) {
            return Err(quota_refusal("GB stored"));
        }
        if completes.is_none() {
            // A multipart object takes over its parts' extents, already claimed.
            for e in &extents {
                tx.extent_claim(&e.id.to_string(), now).await?;
            }
        }
        if let Some(old) = replaced {
            queue_garbage(&mut tx, &old.extents, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    if let Err(e) = attempt {
        // A refused multipart object leaves its upload as it was.
        if completes.is_none() {
            for x in &extents {
                discard(app, x).await;
            }
        }
        return Err(e);
    }
    ObjectInfo::from_row(row, me)
}

pub(crate) async fn queue_garbage(
    tx: &mut maocloud_datastore::Tx,
    extents_json: &str,
    now: Timestamp,
) -> Result<()> {
    let extents: Vec<Extent> = serde_json::from_str(extents_json).map_err(Error::internal)?;
    for e in extents {
        let json = serde_json::to_string(&e).map_err(Error::internal)?;
        tx.garbage_add(&e.id.to_string(), &json, now).await?;
    }
    Ok(())
}

/// An object of the caller's.
pub async fn head_object(app: &App, ctx: &Ctx, bucket: &str, key: &str) -> Result<ObjectInfo> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    check_key(key)?;
    app.meter().add(me, 1, 0, 0);
    match current(app, bucket, key).await? {
        Some(o) => ObjectInfo::from_row(o, me),
        None => Err(refuse(
            Code::NoSuchKey,
            Some("key"),
            "the object does not exist",
        )),
    }
}

/// Bytes `range` of an object found by [`head_object`], as a stream; egress is metered as
/// the bytes are sent.
pub fn read_object(
    app: &App,
    info: &ObjectInfo,
    range: std::ops::Range<u64>,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>> {
    let store = store(app)?.clone();
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    for e in &info.extents {
        let (start, end) = (offset, offset + e.size);
        offset = end;
        if end <= range.start || start >= range.end {
            continue;
        }
        let from = range.start.max(start) - start;
        let to = range.end.min(end) - start;
        pieces.push((e.clone(), from..to));
    }
    // The request was counted by `head_object`, which every read starts with.
    let meter = app.clone();
    let owner = info.owner;
    let s = futures::stream::iter(pieces)
        .flat_map(move |(e, r)| store.get(&e, r))
        .map(move |chunk| match chunk {
            Ok(b) => {
                meter.meter().add(owner, 0, 0, b.len() as i64);
                Ok(b)
            }
            Err(e) => {
                tracing::error!(error = %e, "reading an object failed");
                Err(std::io::Error::other(e))
            }
        });
    Ok(s.boxed())
}

/// Deletes an object; deleting an absent object succeeds, as in S3.
pub async fn delete_object(app: &App, ctx: &Ctx, bucket: &str, key: &str) -> Result<bool> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    check_key(key)?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let gone = tx.object_delete(bucket, key).await?;
    if let Some(o) = &gone {
        queue_garbage(&mut tx, &o.extents, now).await?;
    }
    tx.commit().await?;
    app.meter().add(me, 1, 0, 0);
    Ok(gone.is_some())
}

/// Copies an object (within the caller's buckets) into a new object. `meta`: `None` keeps the
/// source's metadata and content type, `Some` replaces them.
pub async fn copy_object(
    app: &App,
    ctx: &Ctx,
    src_bucket: &str,
    src_key: &str,
    dst: PutObject,
    replace_meta: bool,
) -> Result<ObjectInfo> {
    let src = head_object(app, ctx, src_bucket, src_key).await?;
    let stream = read_object(app, &src, 0..src.size)?;
    let (content_type, meta) = if replace_meta {
        (dst.content_type.clone(), dst.meta.clone())
    } else {
        (
            src.content_type.clone(),
            ObjectMeta {
                checksums: vec![],
                parts: None,
                ..src.meta.clone()
            },
        )
    };
    let put = PutObject {
        content_type,
        meta,
        ..dst
    };
    put_object(
        app,
        ctx,
        put,
        Body {
            stream,
            length: Some(src.size),
            content_md5: None,
            verify: None,
        },
    )
    .await
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// Where the next page starts (after this key or prefix), when truncated.
    pub next: Option<String>,
}

/// The smallest string above every string starting with `p` (None: there is none).
fn successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(c) = chars.pop() {
        let mut n = c as u32 + 1;
        while n <= 0x10FFFF {
            if let Some(c) = char::from_u32(n) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
            n += 1;
        }
    }
    None
}

/// Objects of a bucket whose key starts with `prefix`, after `after`, up to `max` entries,
/// grouping keys by the part up to `delimiter` after the prefix (S3's common prefixes).
pub async fn list_objects(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> Result<Listing> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    app.meter().add(me, 1, 0, 0);
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let upper = successor(prefix).filter(|_| !prefix.is_empty());
    let mut out = Listing::default();
    let mut cursor: Option<String> = after.map(str::to_string);
    let mut tx = app.db().read().await?;
    let entries = |l: &Listing| l.objects.len() + l.prefixes.len();
    'pages: loop {
        let want = (max.saturating_sub(entries(&out)) + 1).clamp(2, 1000) as i64;
        let rows = tx
            .object_range(bucket, prefix, upper.as_deref(), cursor.as_deref(), want)
            .await?;
        if rows.is_empty() {
            break;
        }
        for o in rows {
            let rest = &o.key[prefix.len()..];
            let group = delimiter.and_then(|d| {
                rest.find(d)
                    .map(|i| o.key[..prefix.len() + i + d.len()].to_string())
            });
            if let Some(cp) = group {
                // The next query skips every key under this prefix at once.
                let skip = format!("{cp}\u{10FFFF}");
                if after.is_some_and(|a| cp.as_str() <= a) {
                    cursor = Some(skip);
                    continue 'pages;
                }
                if entries(&out) >= max {
                    out.truncated = true;
                    break 'pages;
                }
                out.next = Some(cp.clone());
                out.prefixes.push(cp);
                cursor = Some(skip);
                continue 'pages;
            }
            if entries(&out) >= max {
                out.truncated = true;
                break 'pages;
            }
            cursor = Some(o.key.clone());
            out.next = Some(o.key.clone());
            out.objects.push(ObjectInfo::from_row(o, me)?);
        }
    }
    if !out.truncated {
        out.next = None;
    }
    Ok(out)
}
