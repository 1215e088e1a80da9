//! Multipart uploads: create, upload a part (or copy one from an object), list uploads and
//! parts, complete (the object takes over its parts' extents: nothing is copied) and abort.

use super::objects::{
    check_key, commit_object, discard, head_object, hex, queue_garbage, read_object, store_body,
    Body, ObjectInfo, ObjectMeta, WriteIf, MAX_PUT,
};
use super::{acting_subscriber, buckets::owned_bucket, refuse, Code};
use crate::{App, Ctx, Error, Result};
use maocloud_datastore::storage::{Part, Upload};
use maocloud_objstore::{Extent, Uuid};
use md5::{Digest, Md5};

/// Parts an upload may have, as S3.
pub const MAX_PARTS: i64 = 10_000;
/// The smallest part but the last, as S3: 5 MiB.
pub const MIN_PART: u64 = 5 << 20;

pub async fn upload_create(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    content_type: Option<String>,
    meta: ObjectMeta,
) -> Result<Upload> {
    let me = super::writing_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    check_key(key)?;
    let u = Upload {
        id: Uuid::now_v7().simple().to_string(),
        bucket: bucket.into(),
        key: key.into(),
        content_type,
        metadata: serde_json::to_string(&meta).map_err(Error::internal)?,
        created_at: app.now(),
    };
    let mut tx = app.db().write().await?;
    tx.upload_insert(&u).await?;
    tx.commit().await?;
    app.meter().add(me, 1, 0, 0);
    Ok(u)
}

async fn upload_of(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    id: &str,
) -> Result<(maocloud_types::SubscriberId, Upload)> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    match app.db().read().await?.upload_fetch(bucket, id).await {
        Ok(u) => Ok((me, u)),
        Err(maocloud_datastore::Error::NotFound) => Err(refuse(
            Code::NoSuchUpload,
            Some("upload_id"),
            "the upload does not exist: it may have been completed or aborted",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Stores one part; a part with the same number is replaced.
pub async fn part_upload(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    upload_id: &str,
    number: i64,
    body: Body,
) -> Result<Part> {
    super::writing_subscriber(app, ctx).await?;
    let (me, u) = upload_of(app, ctx, bucket, upload_id).await?;
    if !(1..=MAX_PARTS).contains(&number) {
        return Err(refuse(
            Code::InvalidArgument,
            Some("part_number"),
            format!("must be between 1 and {MAX_PARTS}"),
        ));
    }
    if body.length.is_some_and(|l| l > MAX_PUT) {
        return Err(refuse(
            Code::EntityTooLarge,
            Some("part"),
            format!("a part may carry at most {MAX_PUT} bytes"),
        ));
    }
    let stored = store_body(app, Uuid::now_v7(), body, MAX_PUT, |limit| {
        refuse(
            Code::EntityTooLarge,
            Some("part"),
            format!("a part may carry at most {limit} bytes"),
        )
    })
    .await?;
    let now = app.now();
    let part = Part {
        upload_id: u.id.clone(),
        part_number: number,
        size: stored.extent.size as i64,
        etag: format!("\"{}\"", hex(&stored.md5)),
        checksums: serde_json::to_string(&stored.checksums).map_err(Error::internal)?,
        extent: serde_json::to_string(&stored.extent).map_err(Error::internal)?,
        modified_at: now,
    };
    let attempt = async {
        let mut tx = app.db().write().await?;
        // The upload may have been completed or aborted while the part streamed.
        tx.upload_fetch(bucket, upload_id).await?;
        if let Some(old) = tx.part_put(&part).await? {
            queue_garbage(&mut tx, &format!("[{}]", old.extent), now).await?;
        }
        tx.extent_claim(&stored.extent.id.to_string(), now).await?;
        tx.commit().await?;
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = attempt {
        discard(app, &stored.extent).await;
        return Err(match e {
            Error::NotFound => refuse(
                Code::NoSuchUpload,
                Some("upload_id"),
                "the upload does not exist",
            ),
            e => e,
        });
    }
    app.meter().add(me, 1, part.size, 0);
    Ok(part)
}

/// Copies bytes `range` (all: `None`) of an object of the caller's into a part.
pub async fn part_copy(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    upload_id: &str,
    number: i64,
    src_bucket: &str,
    src_key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<(Part, ObjectInfo)> {
    upload_of(app, ctx, bucket, upload_id).await?;
    let src = head_object(app, ctx, src_bucket, src_key).await?;
    let range = range.unwrap_or(0..src.size);
    if range.end > src.size || range.start > range.end {
        return Err(refuse(
            Code::InvalidRange,
            Some("copy_source_range"),
            "the range is outside the source object",
        ));
    }
    let len = range.end - range.start;
    let stream = read_object(app, &src, range)?;
    let body = Body {
        stream,
        length: Some(len),
        content_md5: None,
        verify: None,
    };
    Ok((
        part_upload(app, ctx, bucket, upload_id, number, body).await?,
        src,
    ))
}

/// Parts of an upload numbered above `after`.
pub async fn part_list(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    upload_id: &str,
    after: i64,
    max: i64,
) -> Result<(Upload, Vec<Part>)> {
    let (me, u) = upload_of(app, ctx, bucket, upload_id).await?;
    app.meter().add(me, 1, 0, 0);
    let parts = app
        .db()
        .read()
        .await?
        .part_list(upload_id, after, max.clamp(1, 1000))
        .await?;
    Ok((u, parts))
}

/// Uploads in progress in a bucket.
pub async fn upload_list(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    prefix: &str,
    after: Option<(&str, &str)>,
    max: i64,
) -> Result<Vec<Upload>> {
    let me = acting_subscriber(app, ctx).await?;
    owned_bucket(app, me, bucket).await?;
    app.meter().add(me, 1, 0, 0);
    Ok(app
        .db()
        .read()
        .await?
        .upload_list(bucket, prefix, after, max.clamp(1, 1000))
        .await?)
}

/// Completes an upload with the parts the client lists (number and ETag, ascending): the object
/// is their concatenation, its ETag the MD5 of their MD5s followed by `-N`, as S3.
pub async fn upload_complete(
    app: &App,
    ctx: &Ctx,
    bucket: &str,
    upload_id: &str,
    chosen: &[(i64, String)],
    cond: &WriteIf,
) -> Result<ObjectInfo> {
    super::writing_subscriber(app, ctx).await?;
    let (me, u) = upload_of(app, ctx, bucket, upload_id).await?;
    if chosen.is_empty() {
        return Err(refuse(
            Code::InvalidArgument,
            Some("parts"),
            "name at least one part",
        ));
    }
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .db()
            .read()
            .await?
            .part_list(upload_id, after, 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.part_number;
        stored.extend(page);
    }
    let mut extents: Vec<Extent> = Vec::new();
    let mut md5s = Md5::new();
    let mut size = 0u64;
    let mut prev = 0;
    for (i, (n, etag)) in chosen.iter().enumerate() {
        if *n <= prev {
            return Err(refuse(
                Code::InvalidPartOrder,
                Some("parts"),
                "the parts must be listed in ascending order of part number",
            ));
        }
        prev = *n;
        let p = stored
            .iter()
            .find(|p| {
                p.part_number == *n && p.etag.trim_matches('"') == etag.trim().trim_matches('"')
            })
            .ok_or_else(|| {
                refuse(
                    Code::InvalidPart,
                    Some("parts"),
                    format!("part {n} was not uploaded or its ETag does not match"),
                )
            })?;
        if i + 1 < chosen.len() && (p.size as u64) < MIN_PART {
            return Err(refuse(
                Code::EntityTooSmall,
                Some("parts"),
                format!("part {n} is smaller than the {MIN_PART}-byte minimum for all parts but the last"),
            ));
        }
        let bytes: Vec<u8> = (0..p.etag.trim_matches('"').len() / 2)
            .filter_map(|j| {
                u8::from_str_radix(&p.etag.trim_matches('"')[2 * j..2 * j + 2], 16).ok()
            })
            .collect();
        md5s.update(&bytes);
        size += p.size as u64;
        extents.push(serde_json::from_str(&p.extent).map_err(Error::internal)?);
    }
    let etag = format!("\"{}-{}\"", hex(&md5s.finalize()), chosen.len());
    let mut meta: ObjectMeta = serde_json::from_str(&u.metadata).map_err(Error::internal)?;
    meta.parts = Some(chosen.len() as u32);
    let version = Uuid::now_v7();
    let info = commit_object(
        app,
        me,
        bucket,
        &u.key,
        cond,
        version,
        size,
        etag,
        u.content_type.clone(),
        meta,
        extents,
        Some((
            upload_id,
            &chosen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        )),
        &super::quota_of(app, me).await?,
    )
    .await?;
    app.meter().add(me, 1, 0, 0);
    Ok(info)
}

/// Aborts an upload: its parts are deleted.
pub async fn upload_abort(app: &App, ctx: &Ctx, bucket: &str, upload_id: &str) -> Result<()> {
    let (me, _) = upload_of(app, ctx, bucket, upload_id).await?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    for p in tx.upload_delete(upload_id).await? {
        queue_garbage(&mut tx, &format!("[{}]", p.extent), now).await?;
    }
    tx.commit().await?;
    app.meter().add(me, 1, 0, 0);
    Ok(())
}
