//! Object storage over the JSON API (R-1b): a subscriber's S3 access keys (the secret shown
//! once), buckets with their live size and object count, usage against quota; operators see
//! every subscriber's usage, set quotas and read the store's health. Objects themselves go
//! through the S3 endpoint, made for that.

use super::ts;
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, DeskAuth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::storage;
use maocloud_types::SubscriberId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(key_list, key_create))
        .routes(routes!(key_revoke))
        .routes(routes!(bucket_list, bucket_create))
        .routes(routes!(bucket_get, bucket_delete))
        .routes(routes!(usage_get))
        .routes(routes!(usage_all))
        .routes(routes!(
            subscriber_quota_get,
            subscriber_quota_put,
            subscriber_quota_delete
        ))
        .routes(routes!(status_get))
}

/// An S3 access key (its secret is only ever shown at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageKeyView {
    /// The access key id clients send.
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn key_view(k: storage::StorageKey) -> StorageKeyView {
    StorageKeyView {
        id: k.id,
        subscriber_id: k.subscriber_id.to_string(),
        name: k.name,
        status: k.status,
        created_at: ts(k.created_at),
        revoked_at: k.revoked_at.map(ts),
    }
}

/// A new key with its secret: keep it now, it is not shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewStorageKeyView {
    #[serde(flatten)]
    pub key: StorageKeyView,
    pub secret_access_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageKeyCreate {
    /// What the key is for (1 to 64 characters).
    pub name: String,
}

/// Your S3 access keys (operators: everyone's), revoked ones included.
#[utoipa::path(get, path = "/api/v1/storage/keys", tag = "storage", security(("bearer" = [])),
    responses((status = 200, body = Vec<StorageKeyView>), (status = 401, body = Problem)))]
async fn key_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<StorageKeyView>>> {
    Ok(axum::Json(
        storage::key_list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(key_view)
            .collect(),
    ))
}

/// Create an S3 access key; the answer holds the secret, shown this once.
#[utoipa::path(post, path = "/api/v1/storage/keys", tag = "storage", security(("bearer" = [])), request_body = StorageKeyCreate,
    responses((status = 201, body = NewStorageKeyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn key_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<StorageKeyCreate>,
) -> ApiResult<(StatusCode, axum::Json<NewStorageKeyView>)> {
    let k = storage::key_create(&st.app, &ctx, &r.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewStorageKeyView {
            key: key_view(k.key),
            secret_access_key: k.secret,
        }),
    ))
}

/// Revoke an access key: the next request signed with it is refused.
#[utoipa::path(delete, path = "/api/v1/storage/keys/{id}", tag = "storage", security(("bearer" = [])), params(("id" = String, Path, description = "Access key id")),
    responses((status = 200, body = StorageKeyView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn key_revoke(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<StorageKeyView>> {
    Ok(axum::Json(key_view(
        storage::key_revoke(&st.app, &ctx, &id).await?,
    )))
}

/// A bucket with its live totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketView {
    pub name: String,
    pub subscriber_id: String,
    pub bytes: i64,
    pub objects: i64,
    pub created_at: String,
}

fn bucket_view(b: storage::Bucket) -> BucketView {
    BucketView {
        name: b.name,
        subscriber_id: b.subscriber_id.to_string(),
        bytes: b.bytes,
        objects: b.objects,
        created_at: ts(b.created_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketCreate {
    /// 3 to 63 lowercase letters, digits, dots and hyphens (S3's rules); unique platform-wide.
    pub name: String,
}

/// Your buckets (operators: everyone's).
#[utoipa::path(get, path = "/api/v1/storage/buckets", tag = "storage", security(("bearer" = [])),
    responses((status = 200, body = Vec<BucketView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn bucket_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<BucketView>>> {
    Ok(axum::Json(
        storage::bucket_list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(bucket_view)
            .collect(),
    ))
}

/// Create a bucket.
#[utoipa::path(post, path = "/api/v1/storage/buckets", tag = "storage", security(("bearer" = [])), request_body = BucketCreate,
    responses((status = 201, body = BucketView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn bucket_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<BucketCreate>,
) -> ApiResult<(StatusCode, axum::Json<BucketView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(bucket_view(
            storage::bucket_create(&st.app, &ctx, &r.name).await?,
        )),
    ))
}

/// One of your buckets.
#[utoipa::path(get, path = "/api/v1/storage/buckets/{name}", tag = "storage", security(("bearer" = [])), params(("name" = String, Path, description = "Bucket name")),
    responses((status = 200, body = BucketView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn bucket_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<BucketView>> {
    Ok(axum::Json(bucket_view(
        storage::bucket_get(&st.app, &ctx, &name).await?,
    )))
}

/// Delete an empty bucket.
#[utoipa::path(delete, path = "/api/v1/storage/buckets/{name}", tag = "storage", security(("bearer" = [])), params(("name" = String, Path, description = "Bucket name")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn bucket_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    // Someone else's bucket answers 404 here, as every subscriber resource.
    storage::bucket_get(&st.app, &ctx, &name).await?;
    storage::bucket_delete(&st.app, &ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A storage quota.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    /// Bytes that may be stored.
    pub bytes: i64,
    /// Objects that may be stored.
    pub objects: i64,
    /// Set by an operator (else: from the offers' included storage).
    #[serde(default)]
    pub manual: bool,
}

/// What a subscriber stores, against their quota.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub bytes: i64,
    pub objects: i64,
    pub quota: QuotaView,
}

fn quota_view(q: storage::Quota) -> QuotaView {
    QuotaView {
        bytes: q.bytes,
        objects: q.objects,
        manual: q.manual,
    }
}

/// Your object storage usage and quota.
#[utoipa::path(get, path = "/api/v1/storage/usage", tag = "storage", security(("bearer" = [])),
    responses((status = 200, body = UsageView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn usage_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<UsageView>> {
    let u = storage::usage(&st.app, &ctx, None).await?;
    Ok(axum::Json(UsageView {
        bytes: u.bytes,
        objects: u.objects,
        quota: quota_view(u.quota),
    }))
}

/// One subscriber's stored totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberUsageView {
    pub subscriber_id: String,
    pub buckets: i64,
    pub bytes: i64,
    pub objects: i64,
}

/// Operators: every subscriber's object storage usage.
#[utoipa::path(get, path = "/api/v1/storage/usage/all", tag = "storage", security(("bearer" = [])),
    responses((status = 200, body = Vec<SubscriberUsageView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn usage_all(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<SubscriberUsageView>>> {
    Ok(axum::Json(
        storage::usage_all(&st.app, &ctx)
            .await?
            .into_iter()
            .map(|u| SubscriberUsageView {
                subscriber_id: u.subscriber_id.to_string(),
                buckets: u.buckets,
                bytes: u.bytes,
                objects: u.objects,
            })
            .collect(),
    ))
}

fn subscriber_id(id: &str) -> ApiResult<SubscriberId> {
    id.parse().map_err(|_| maocloud_app::Error::NotFound.into())
}

/// Operators: a subscriber's storage quota.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}/storage-quota", tag = "storage", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 200, body = QuotaView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn subscriber_quota_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<QuotaView>> {
    let who = subscriber_id(&id)?;
    let u = storage::usage(&st.app, &ctx, Some(who)).await?;
    Ok(axum::Json(quota_view(u.quota)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSet {
    pub bytes: i64,
    pub objects: i64,
}

/// Operators: set a subscriber's storage quota by hand (instead of the offers').
#[utoipa::path(put, path = "/api/v1/subscribers/{id}/storage-quota", tag = "storage", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")), request_body = QuotaSet,
    responses((status = 200, body = QuotaView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn subscriber_quota_put(
    State(st): State<AppState>,
    DeskAuth(ctx): DeskAuth,
    Path(id): Path<String>,
    Json(q): Json<QuotaSet>,
) -> ApiResult<axum::Json<QuotaView>> {
    let who = subscriber_id(&id)?;
    Ok(axum::Json(quota_view(
        storage::quota_set(&st.app, &ctx, who, Some((q.bytes, q.objects))).await?,
    )))
}

/// Operators: go back to the offers' quota.
#[utoipa::path(delete, path = "/api/v1/subscribers/{id}/storage-quota", tag = "storage", security(("bearer" = [])), params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 200, body = QuotaView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn subscriber_quota_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<QuotaView>> {
    let who = subscriber_id(&id)?;
    Ok(axum::Json(quota_view(
        storage::quota_set(&st.app, &ctx, who, None).await?,
    )))
}

/// Operators: the store's disks, health and repair progress.
#[utoipa::path(get, path = "/api/v1/storage/status", tag = "storage", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)))]
async fn status_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let s = storage::status(&st.app, &ctx).await?;
    Ok(axum::Json(
        serde_json::to_value(s).map_err(maocloud_app::Error::internal)?,
    ))
}
