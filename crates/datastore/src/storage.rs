//! Object-storage rows: S3 access keys, buckets with their live totals, the object index,
//! multipart uploads and parts, extents awaiting deletion, operator-set quotas and per-day
//! counters. The bytes themselves live in the blob store; rows carry its extent descriptors as
//! JSON text and never interpret them.

use crate::{col, us, Backend, Error, Result, Scope, Tx};
use maocloud_types::{SubscriberId, Timestamp};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct StorageKey {
    pub id: String,
    pub subscriber_id: SubscriberId,
    pub name: String,
    /// Sealed.
    pub secret: String,
    pub status: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub subscriber_id: SubscriberId,
    pub cors: Option<String>,
    pub bytes: i64,
    pub objects: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub version: String,
    pub size: i64,
    pub etag: String,
    pub content_type: Option<String>,
    /// JSON.
    pub metadata: String,
    /// JSON array of extent descriptors.
    pub extents: String,
    pub modified_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub content_type: Option<String>,
    pub metadata: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub upload_id: String,
    pub part_number: i64,
    pub size: i64,
    pub etag: String,
    pub checksums: String,
    pub extent: String,
    pub modified_at: Timestamp,
}

/// One subscriber's stored totals, for operators.
#[derive(Debug, Clone)]
pub struct SubscriberUsage {
    pub subscriber_id: SubscriberId,
    pub buckets: i64,
    pub bytes: i64,
    pub objects: i64,
}

/// A day's request and traffic counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCounters {
    pub day: String,
    pub requests: i64,
    pub ingress_bytes: i64,
    pub egress_bytes: i64,
}

const KEY_COLS: &str = "id, subscriber_id, name, secret, status, created_at, revoked_at";
const BUCKET_COLS: &str = "name, subscriber_id, cors, bytes, objects, created_at";
const OBJECT_COLS: &str =
    "bucket, key, version, size, etag, content_type, metadata, extents, modified_at";
const UPLOAD_COLS: &str = "id, bucket, key, content_type, metadata, created_at";
const PART_COLS: &str = "upload_id, part_number, size, etag, checksums, extent, modified_at";

fn storage_key(r: &AnyRow) -> Result<StorageKey> {
    Ok(StorageKey {
        id: col::get(r, "id")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        name: col::get(r, "name")?,
        secret: col::get(r, "secret")?,
        status: col::get(r, "status")?,
        created_at: col::ts(r, "created_at")?,
        revoked_at: col::opt_ts(r, "revoked_at")?,
    })
}

fn bucket(r: &AnyRow) -> Result<Bucket> {
    Ok(Bucket {
        name: col::get(r, "name")?,
        subscriber_id: col::id(r, "subscriber_id")?,
        cors: col::get(r, "cors")?,
        bytes: col::get(r, "bytes")?,
        objects: col::get(r, "objects")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn object(r: &AnyRow) -> Result<Object> {
    Ok(Object {
        bucket: col::get(r, "bucket")?,
        key: col::get(r, "key")?,
        version: col::get(r, "version")?,
        size: col::get(r, "size")?,
        etag: col::get(r, "etag")?,
        content_type: col::get(r, "content_type")?,
        metadata: col::get(r, "metadata")?,
        extents: col::get(r, "extents")?,
        modified_at: col::ts(r, "modified_at")?,
    })
}

fn upload(r: &AnyRow) -> Result<Upload> {
    Ok(Upload {
        id: col::get(r, "id")?,
        bucket: col::get(r, "bucket")?,
        key: col::get(r, "key")?,
        content_type: col::get(r, "content_type")?,
        metadata: col::get(r, "metadata")?,
        created_at: col::ts(r, "created_at")?,
    })
}

fn part(r: &AnyRow) -> Result<Part> {
    Ok(Part {
        upload_id: col::get(r, "upload_id")?,
        part_number: col::get(r, "part_number")?,
        size: col::get(r, "size")?,
        etag: col::get(r, "etag")?,
        checksums: col::get(r, "checksums")?,
        extent: col::get(r, "extent")?,
        modified_at: col::ts(r, "modified_at")?,
    })
}

impl Tx {
    /// Keys compare as S3 orders them, byte by byte: PostgreSQL needs the "C" collation for that,
    /// SQLite's default already is.
    fn bytewise(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " COLLATE \"C\"",
            Backend::Sqlite => "",
        }
    }

    // ---- access keys ----

    pub async fn storage_key_insert(&mut self, k: &StorageKey) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO storage_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&k.id)
        .bind(k.subscriber_id.to_string())
        .bind(&k.name)
        .bind(&k.secret)
        .bind(&k.status)
        .bind(us(k.created_at))
        .bind(k.revoked_at.map(us))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The keys a scope may see, newest first (revoked ones too: they are history).
    pub async fn storage_key_list(&mut self, scope: &Scope) -> Result<Vec<StorageKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM storage_keys WHERE ($1 IS NULL OR subscriber_id = $1) \
             ORDER BY created_at DESC, id LIMIT 500"
        ))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(storage_key).collect()
    }

    /// A key by its access key id, if the scope may see it.
    pub async fn storage_key_fetch(&mut self, scope: &Scope, id: &str) -> Result<StorageKey> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM storage_keys WHERE id = $1 AND ($2 IS NULL OR subscriber_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        storage_key(&row)
    }

    pub async fn storage_key_count_active(&mut self, subscriber: SubscriberId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM storage_keys WHERE subscriber_id = $1 AND status = 'active'",
        )
        .bind(subscriber.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        col::get(&row, "n")
    }

    /// Revokes one key; false when it was not active.
    pub async fn storage_key_revoke(&mut self, id: &str, at: Timestamp) -> Result<bool> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE storage_keys SET status = 'revoked', revoked_at = $2 WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes every active key of a subscriber (R-5a); returns how many.
    pub async fn storage_keys_revoke_all(
        &mut self,
        subscriber: SubscriberId,
        at: Timestamp,
    ) -> Result<u64> {
        self.check_writable()?;
        let r = sqlx::query(
            "UPDATE storage_keys SET status = 'revoked', revoked_at = $2 WHERE subscriber_id = $1 AND status = 'active'",
        )
        .bind(subscriber.to_string())
        .bind(us(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected())
    }

    // ---- buckets ----

    pub async fn bucket_insert(&mut self, b: &Bucket) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO buckets ({BUCKET_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&b.name)
        .bind(b.subscriber_id.to_string())
        .bind(&b.cors)
        .bind(b.bytes)
        .bind(b.objects)
        .bind(us(b.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A bucket by name, whoever owns it (the S3 layer tells "not yours" from "no such bucket").
    pub async fn bucket_fetch(&mut self, name: &str) -> Result<Bucket> {
        let row = sqlx::query(&format!(
            "SELECT {BUCKET_COLS} FROM buckets WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        bucket(&row)
    }

    pub async fn bucket_list(&mut self, scope: &Scope) -> Result<Vec<Bucket>> {
        let rows = sqlx::query(&format!(
            "SELECT {BUCKET_COLS} FROM buckets WHERE ($1 IS NULL OR subscriber_id = $1) ORDER BY name LIMIT 1000"
        ))
        .bind(scope.owner())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(bucket).collect()
    }

    pub async fn bucket_delete(&mut self, name: &str) -> Result<()> {
        self.check_writable()?;
        sqlx::query("DELETE FROM buckets WHERE name = $1")
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Removes a bucket with everything in it (erasure, R-7.3c); returns the extent descriptors
    /// (JSON arrays) of its objects and uploads' parts, for their bytes to be deleted.
    pub async fn bucket_purge(&mut self, name: &str) -> Result<Vec<String>> {
        self.check_writable()?;
        let mut extents = Vec::new();
        for r in sqlx::query("DELETE FROM objects WHERE bucket = $1 RETURNING extents")
            .bind(name)
            .fetch_all(&mut *self.tx)
            .await?
        {
            extents.push(col::get(&r, "extents")?);
        }
        for r in sqlx::query(
            "DELETE FROM upload_parts WHERE upload_id IN (SELECT id FROM uploads WHERE bucket = $1) RETURNING extent",
        )
        .bind(name)
        .fetch_all(&mut *self.tx)
        .await?
        {
            let e: String = col::get(&r, "extent")?;
            extents.push(format!("[{e}]"));
        }
        for table in ["uploads", "buckets"] {
            let key = if table == "buckets" { "name" } else { "bucket" };
            sqlx::query(&format!("DELETE FROM {table} WHERE {key} = $1"))
                .bind(name)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(extents)
    }

    pub async fn bucket_set_cors(&mut self, name: &str, cors: Option<&str>) -> Result<()> {
        self.check_writable()?;
        sqlx::query("UPDATE buckets SET cors = $2 WHERE name = $1")
            .bind(name)
            .bind(cors)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn bucket_add(&mut self, name: &str, bytes: i64, objects: i64) -> Result<()> {
        sqlx::query(
            "UPDATE buckets SET bytes = bytes + $2, objects = objects + $3 WHERE name = $1",
        )
        .bind(name)
        .bind(bytes)
        .bind(objects)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Uploads in progress in a bucket (a bucket with any cannot be deleted).
    pub async fn bucket_upload_count(&mut self, name: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM uploads WHERE bucket = $1")
            .bind(name)
            .fetch_one(&mut *self.tx)
            .await?;
        col::get(&row, "n")
    }

    /// Bytes and objects a subscriber stores, over all their buckets.
    pub async fn storage_totals(&mut self, subscriber: SubscriberId) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b, CAST(COALESCE(SUM(objects), 0) AS BIGINT) AS o \
             FROM buckets WHERE subscriber_id = $1",
        )
        .bind(subscriber.to_string())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((col::get(&row, "b")?, col::get(&row, "o")?))
    }

    /// Every subscriber who has a bucket, with their totals.
    pub async fn storage_usage_all(&mut self) -> Result<Vec<SubscriberUsage>> {
        let rows = sqlx::query(
            "SELECT subscriber_id, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(bytes) AS BIGINT) AS b, \
             CAST(SUM(objects) AS BIGINT) AS o FROM buckets GROUP BY subscriber_id ORDER BY subscriber_id",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SubscriberUsage {
                    subscriber_id: col::id(r, "subscriber_id")?,
                    buckets: col::get(r, "n")?,
                    bytes: col::get(r, "b")?,
                    objects: col::get(r, "o")?,
                })
            })
            .collect()
    }

    // ---- objects ----

    pub async fn object_fetch(&mut self, bucket: &str, key: &str) -> Result<Object> {
        let row = sqlx::query(&format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE bucket = $1 AND key = $2"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        object(&row)
    }

    /// Writes `o`, replacing any object at its key; the bucket's totals follow. Returns the
    /// replaced object, whose extents the caller queues for deletion.
    pub async fn object_put(&mut self, o: &Object) -> Result<Option<Object>> {
        self.check_writable()?;
        let old = self.object_delete(&o.bucket, &o.key).await?;
        sqlx::query(&format!(
            "INSERT INTO objects ({OBJECT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&o.bucket)
        .bind(&o.key)
        .bind(&o.version)
        .bind(o.size)
        .bind(&o.etag)
        .bind(&o.content_type)
        .bind(&o.metadata)
        .bind(&o.extents)
        .bind(us(o.modified_at))
        .execute(&mut *self.tx)
        .await?;
        self.bucket_add(&o.bucket, o.size, 1).await?;
        Ok(old)
    }

    /// Removes the object at a key; the bucket's totals follow. Returns it if there was one.
    pub async fn object_delete(&mut self, bucket: &str, key: &str) -> Result<Option<Object>> {
        self.check_writable()?;
        let row = sqlx::query(&format!(
            "DELETE FROM objects WHERE bucket = $1 AND key = $2 RETURNING {OBJECT_COLS}"
        ))
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let old = object(&r)?;
                self.bucket_add(bucket, -old.size, -1).await?;
                Ok(Some(old))
            }
        }
    }

    /// Up to `limit` objects of a bucket with `from <= key < to` (`to` None: no upper bound) and
    /// key > `after`, in S3's byte order.
    pub async fn object_range(
        &mut self,
        bucket: &str,
        from: &str,
        to: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Object>> {
        let c = self.bytewise();
        let rows = sqlx::query(&format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE bucket = $1 AND key{c} >= $2 \
             AND ($3 IS NULL OR key{c} < $3) AND ($4 IS NULL OR key{c} > $4) \
             ORDER BY key{c} LIMIT $5"
        ))
        .bind(bucket)
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(object).collect()
    }

    /// Objects of every bucket after `(bucket, key)`, in index order: the scrub's walk.
    pub async fn object_scan(
        &mut self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<Object>> {
        let (b, k) = after.unwrap_or(("", ""));
        let rows = sqlx::query(&format!(
            "SELECT {OBJECT_COLS} FROM objects WHERE bucket > $1 OR (bucket = $1 AND key > $2) \
             ORDER BY bucket, key LIMIT $3"
        ))
        .bind(b)
        .bind(k)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(object).collect()
    }

    // ---- multipart uploads ----

    pub async fn upload_insert(&mut self, u: &Upload) -> Result<()> {
        self.check_writable()?;
        sqlx::query(&format!(
            "INSERT INTO uploads ({UPLOAD_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&u.id)
        .bind(&u.bucket)
        .bind(&u.key)
        .bind(&u.content_type)
        .bind(&u.metadata)
        .bind(us(u.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn upload_fetch(&mut self, bucket: &str, id: &str) -> Result<Upload> {
        let row = sqlx::query(&format!(
            "SELECT {UPLOAD_COLS} FROM uploads WHERE id = $1 AND bucket = $2"
        ))
        .bind(id)
        .bind(bucket)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(Error::NotFound)?;
        upload(&row)
    }

    /// Uploads in a bucket whose key starts with `prefix`, after the `(key, id)` marker.
    pub async fn upload_list(
        &mut self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<Upload>> {
        let c = self.bytewise();
        let (k, i) = after.unwrap_or(("", ""));
        let rows = sqlx::query(&format!(
            "SELECT {UPLOAD_COLS} FROM uploads WHERE bucket = $1 AND substr(key, 1, $2) = $3 \
             AND (key{c} > $4 OR (key = $4 AND id > $5)) ORDER BY key{c}, id LIMIT $6"
        ))
        .bind(bucket)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(k)
        .bind(i)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(upload).collect()
    }

    /// Removes an upload and its parts; returns the parts (their extents are the caller's to
    /// queue for deletion or to hand to the completed object).
    pub async fn upload_delete(&mut self, id: &str) -> Result<Vec<Part>> {
        self.check_writable()?;
        let rows = sqlx::query(&format!(
            "DELETE FROM upload_parts WHERE upload_id = $1 RETURNING {PART_COLS}"
        ))
        .bind(id)
        .fetch_all(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let mut parts = rows.iter().map(part).collect::<Result<Vec<_>>>()?;
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Writes a part, replacing one with the same number; returns the replaced one.
    pub async fn part_put(&mut self, p: &Part) -> Result<Option<Part>> {
        self.check_writable()?;
        let old = sqlx::query(&format!(
            "DELETE FROM upload_parts WHERE upload_id = $1 AND part_number = $2 RETURNING {PART_COLS}"
        ))
        .bind(&p.upload_id)
        .bind(p.part_number)
        .fetch_optional(&mut *self.tx)
        .await?
        .map(|r| part(&r))
        .transpose()?;
        sqlx::query(&format!(
            "INSERT INTO upload_parts ({PART_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&p.upload_id)
        .bind(p.part_number)
        .bind(p.size)
        .bind(&p.etag)
        .bind(&p.checksums)
        .bind(&p.extent)
        .bind(us(p.modified_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(old)
    }

    /// Parts of an upload numbered above `after`, in order.
    pub async fn part_list(&mut self, upload: &str, after: i64, limit: i64) -> Result<Vec<Part>> {
        let rows = sqlx::query(&format!(
            "SELECT {PART_COLS} FROM upload_parts WHERE upload_id = $1 AND part_number > $2 \
             ORDER BY part_number LIMIT $3"
        ))
        .bind(upload)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(part).collect()
    }

    // ---- extents ----

    /// Records that a row now names extent `id` (same transaction as that row).
    pub async fn extent_claim(&mut self, id: &str, at: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO storage_extents (id, created_at) VALUES ($1, $2)")
            .bind(id)
            .bind(us(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Which of `ids` some row names.
    pub async fn extents_known(&mut self, ids: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for chunk in ids.chunks(200) {
            let marks = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT id FROM storage_extents WHERE id IN ({marks})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                known.push(col::get(&r, "id")?);
            }
        }
        Ok(known)
    }

    /// Queues an extent no row names any more for deletion of its bytes.
    pub async fn garbage_add(&mut self, id: &str, extent: &str, at: Timestamp) -> Result<()> {
        self.check_writable()?;
        sqlx::query("INSERT INTO storage_garbage (id, extent, queued_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(extent)
            .bind(us(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The oldest garbage queued at or before `before`: `(id, extent descriptor)`.
    pub async fn garbage_peek(
        &mut self,
        before: Timestamp,
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, extent FROM storage_garbage WHERE queued_at <= $1 ORDER BY queued_at, id LIMIT $2",
        )
        .bind(us(before))
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((col::get(r, "id")?, col::get(r, "extent")?)))
            .collect()
    }

    /// How many extents await the deletion of their bytes.
    pub async fn garbage_count(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM storage_garbage")
            .fetch_one(&mut *self.tx)
            .await?;
        col::get(&row, "n")
    }

    /// Forgets an extent whose bytes are gone.
    pub async fn garbage_done(&mut self, id: &str) -> Result<()> {
        self.check_writable()?;
        for table in ["storage_garbage", "storage_extents"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    // ---- quotas and counters ----

    /// An operator-set quota `(bytes, objects)`, if any.
    pub async fn storage_quota_fetch(
        &mut self,
        subscriber: SubscriberId,
    ) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query("SELECT bytes, objects FROM storage_quotas WHERE subscriber_id = $1")
            .bind(subscriber.to_string())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| Ok((col::get(&r, "bytes")?, col::get(&r, "objects")?)))
            .transpose()
    }

    pub async fn storage_quota_set(
        &mut self,
        subscriber: SubscriberId,
        quota: Option<(i64, i64)>,
        at: Timestamp,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query("DELETE FROM storage_quotas WHERE subscriber_id = $1")
            .bind(subscriber.to_string())
            .execute(&mut *self.tx)
            .await?;
        if let Some((bytes, objects)) = quota {
            sqlx::query(
                "INSERT INTO storage_quotas (subscriber_id, bytes, objects, updated_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(subscriber.to_string())
            .bind(bytes)
            .bind(objects)
            .bind(us(at))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Adds to a subscriber's counters for a day.
    pub async fn storage_counters_add(
        &mut self,
        subscriber: SubscriberId,
        c: &DayCounters,
    ) -> Result<()> {
        self.check_writable()?;
        sqlx::query(
            "INSERT INTO storage_counters (subscriber_id, day, requests, ingress_bytes, egress_bytes) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subscriber_id, day) DO UPDATE SET \
             requests = storage_counters.requests + $3, ingress_bytes = storage_counters.ingress_bytes + $4, \
             egress_bytes = storage_counters.egress_bytes + $5",
        )
        .bind(subscriber.to_string())
        .bind(&c.day)
        .bind(c.requests)
        .bind(c.ingress_bytes)
        .bind(c.egress_bytes)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A subscriber's counters for days in `[from, to]`, oldest first.
    pub async fn storage_counters(
        &mut self,
        subscriber: SubscriberId,
        from: &str,
        to: &str,
    ) -> Result<Vec<DayCounters>> {
        let rows = sqlx::query(
            "SELECT day, requests, ingress_bytes, egress_bytes FROM storage_counters \
             WHERE subscriber_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        )
        .bind(subscriber.to_string())
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DayCounters {
                    day: col::get(r, "day")?,
                    requests: col::get(r, "requests")?,
                    ingress_bytes: col::get(r, "ingress_bytes")?,
                    egress_bytes: col::get(r, "egress_bytes")?,
                })
            })
            .collect()
    }
}
