//! Object storage in the subscriber area (R-1b): the buckets with what they hold, the usage
//! against the quota and the last 30 days' traffic; a bucket's objects browsed by "folders"
//! (the `/` delimiter) page by page, uploaded from a form, downloaded, deleted; and the S3
//! access keys, whose secret is shown once, on the page that answers their creation. Operators
//! have a read-only page of every subscriber's usage. Every handler calls
//! `maocloud_app::storage` with the console user's `Ctx`.
//!
//! Another subscriber's bucket is looked up first and is simply not found (the 404 page), as
//! every subscriber resource, although the S3 endpoint tells "access denied" apart.
//!
//! Uploads are `multipart/form-data` with the CSRF token before the file (checked before a byte
//! is stored), streamed into `put_object` as they arrive; a console upload is at most
//! [`UPLOAD_MAX`] (larger objects go through an S3 client). Downloads stream the object's bytes
//! as an attachment, never inline: its content type is the uploader's, not ours.

use super::contract::{refusal_status, refusal_text};
use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::view::{when, when_opt, When};
use super::visitor::{OperatorIn, SignedIn, Visitor};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use maocloud_app::i18n::{self, Lang};
use maocloud_app::model::AccountKind;
use maocloud_app::storage::{self, Bucket, Code, StorageKey};
use maocloud_app::Error;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

/// The largest file the console's upload form takes: 100 MiB.
pub const UPLOAD_MAX: u64 = 100 * 1024 * 1024;
/// The upload's whole body: the file and the few fields around it.
const UPLOAD_LIMIT: usize = UPLOAD_MAX as usize + 64 * 1024;
/// Entries (folders and objects) on one page of a bucket.
pub const LIST_PAGE: usize = 50;
/// Days of traffic the buckets page sums up.
const TRAFFIC_DAYS: i64 = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/storage", get(buckets).post(bucket_create))
        .route("/account/storage/buckets/{bucket}", get(bucket))
        .route(
            "/account/storage/buckets/{bucket}/delete",
            post(bucket_delete),
        )
        .route(
            "/account/storage/buckets/{bucket}/upload",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/account/storage/buckets/{bucket}/object", get(download))
        .route(
            "/account/storage/buckets/{bucket}/object/delete",
            post(object_delete),
        )
        .route("/account/storage/keys", get(keys).post(key_create))
        .route("/account/storage/keys/{id}/revoke", post(key_revoke))
        .route("/admin/storage", get(admin_usage))
}

/// These pages are the subscriber's; operators have their usage page in the back office.
fn subscribers_only(s: &SignedIn) -> Result<(), Response> {
    match s.account.kind {
        AccountKind::Subscriber => Ok(()),
        AccountKind::Operator => Err(s.v.redirect("/admin/storage")),
    }
}

// --- Views ---

/// A number of bytes in decimal units, as quotas are sold (GB of 10^9 bytes): `512 o`,
/// `1,5 Mo`, `2 Go` / `512 B`, `1.5 MB`, `2 GB`.
pub(super) fn bytes_text(lang: Lang, n: i64) -> String {
    const UNITS: [&str; 6] = ["b", "kb", "mb", "gb", "tb", "pb"];
    let n = n.max(0) as i128;
    let mut unit = 0;
    let mut scale: i128 = 1;
    while unit + 1 < UNITS.len() && n >= scale * 1000 {
        scale *= 1000;
        unit += 1;
    }
    // One decimal, rounded half up; "2,0" is written "2", "1000 kB" is "1 MB".
    let mut tenths = (n * 10 + scale / 2) / scale;
    if tenths >= 10_000 && unit + 1 < UNITS.len() {
        scale *= 1000;
        unit += 1;
        tenths = (n * 10 + scale / 2) / scale;
    }
    let (int, frac) = (tenths / 10, tenths % 10);
    let number = if frac == 0 || unit == 0 {
        int.to_string()
    } else {
        let point = if lang == Lang::En { '.' } else { ',' };
        format!("{int}{point}{frac}")
    };
    i18n::tf(
        lang,
        &format!("console.storage.unit_{}", UNITS[unit]),
        &[("n", &number)],
    )
}

/// A count with thousands grouped as the visitor's language does.
fn count_text(lang: Lang, n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let sep = if lang == Lang::En { ',' } else { '\u{a0}' };
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `s` for a query string value.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn bucket_url(bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("/account/storage/buckets/{bucket}")
    } else {
        format!("/account/storage/buckets/{bucket}?prefix={}", enc(prefix))
    }
}

#[derive(Serialize)]
struct BucketView {
    name: String,
    url: String,
    size: String,
    objects: String,
    created_at: When,
}

impl BucketView {
    fn new(lang: Lang, b: &Bucket) -> BucketView {
        BucketView {
            url: bucket_url(&b.name, ""),
            name: b.name.clone(),
            size: bytes_text(lang, b.bytes),
            objects: count_text(lang, b.objects),
            created_at: when(b.created_at),
        }
    }
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    name: String,
    active: bool,
    status: String,
    created_at: When,
    revoked_at: Option<When>,
}

impl From<&StorageKey> for KeyView {
    fn from(k: &StorageKey) -> Self {
        KeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            active: k.status == "active",
            status: k.status.clone(),
            created_at: when(k.created_at),
            revoked_at: when_opt(k.revoked_at),
        }
    }
}

/// What a storage refusal says next to a form field: the use case's reason in the visitor's
/// language when the catalog has it, else the refusal's own text.
fn field_reason(lang: Lang, code: Code, reason: &str) -> String {
    let translated = i18n::reason(lang, reason);
    if lang == Lang::En || translated != reason {
        translated
    } else {
        i18n::t(lang, &format!("console.storage.refused.{code:?}"))
    }
}

/// The refusal of a form as errors next to `fields` (a storage refusal naming one of them,
/// invalid input, a conflict on a field); anything else comes back as `Err`.
fn form_errors(lang: Lang, e: Error, fields: &[&str]) -> Result<FieldErrors, Error> {
    let mut found = FieldErrors::default();
    if let Error::Storage {
        code,
        field: Some(f),
        reason,
    } = &e
    {
        if let Some(f) = fields.iter().find(|x| *x == f) {
            found.push(f, field_reason(lang, *code, reason));
        }
    }
    if let Error::Invalid(list) = &e {
        if list.iter().any(|f| !fields.contains(&f.field.as_str())) {
            return Err(e);
        }
    }
    found.or_of(lang, e)
}

/// The refusal of an action as one sentence for the page's alert, with its status.
fn alert_of(v: &Visitor, e: &Error) -> Option<(StatusCode, String)> {
    match e {
        Error::Storage { code, .. } => {
            let (status, _, _) = crate::error::classify(e);
            Some((status, v.t(&format!("console.storage.refused.{code:?}"))))
        }
        e => refusal_text(v, e).map(|text| (refusal_status(e), text)),
    }
}

fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Storage { .. } => crate::error::classify(e).0,
        e => refusal_status(e),
    }
}

/// The visitor's bucket, or the 404 page (someone else's is not found either).
async fn own_bucket(st: &AppState, s: &SignedIn, name: &str) -> Result<Bucket, Response> {
    match storage::bucket_get(&st.app, &s.ctx, name).await {
        Ok(b) => Ok(b),
        Err(Error::Storage {
            code: Code::NoSuchBucket | Code::AccessDenied,
            ..
        }) => Err(s.v.fail(Error::NotFound)),
        Err(e) => Err(s.v.fail(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

// --- Buckets ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct BucketForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
}

async fn buckets(State(st): State<AppState>, s: SignedIn) -> Page {
    subscribers_only(&s)?;
    buckets_page(&st, &s, StatusCode::OK, &BucketForm::default(), None, None).await
}

/// One line of the usage: what is used of what is allowed, as numbers and as text.
fn usage_line(
    id: &str,
    label: String,
    used: i64,
    total: i64,
    text: impl Fn(i64) -> String,
) -> Value {
    context! {
        id => id, label => label, used => used, total => total,
        used_text => text(used), total_text => text(total),
    }
}

async fn buckets_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &BucketForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let lang = s.v.lang;
    let me = s.ctx.require_subscriber().map_err(fail)?;
    let list = storage::bucket_list(&st.app, &s.ctx).await.map_err(fail)?;
    let usage = storage::usage(&st.app, &s.ctx, None).await.map_err(fail)?;
    let days = storage::counters(&st.app, me, TRAFFIC_DAYS)
        .await
        .map_err(fail)?;
    let requests: i64 = days.iter().map(|d| d.requests).sum();
    let egress: i64 = days.iter().map(|d| d.egress_bytes).sum();
    let ingress: i64 = days.iter().map(|d| d.ingress_bytes).sum();
    let t = |k: &str| s.v.t(&format!("console.storage.usage_{k}"));
    let lines = vec![
        usage_line("bytes", t("bytes"), usage.bytes, usage.quota.bytes, |n| {
            bytes_text(lang, n)
        }),
        usage_line(
            "objects",
            t("objects"),
            usage.objects,
            usage.quota.objects,
            |n| count_text(lang, n),
        ),
    ];
    let ctx = context! {
        section => "account",
        buckets => list.iter().map(|b| BucketView::new(lang, b)).collect::<Vec<_>>(),
        usage => lines,
        quota_manual => usage.quota.manual,
        traffic => context! {
            days => TRAFFIC_DAYS,
            requests => count_text(lang, requests),
            egress => bytes_text(lang, egress),
            ingress => bytes_text(lang, ingress),
        },
        form => form,
        alert => alert,
    };
    Ok(s.v.page(status, "account/storage.html", with_errors(ctx, errors)))
}

async fn bucket_create(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<BucketForm>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    let name = form.name.trim().to_string();
    match storage::bucket_create(&st.app, &s.ctx, &name).await {
        Ok(b) => {
            s.v.flash("bucket_created");
            Ok(s.v.redirect(&bucket_url(&b.name, "")))
        }
        Err(e) => {
            let status = status_of(&e);
            match form_errors(s.v.lang, e, &["name"]) {
                Ok(errors) => buckets_page(&st, &s, status, &form, Some(errors), None).await,
                Err(e) => match alert_of(&s.v, &e) {
                    Some((status, alert)) => {
                        buckets_page(&st, &s, status, &form, None, Some(alert)).await
                    }
                    None => Err(s.v.fail(e)),
                },
            }
        }
    }
}

async fn bucket_delete(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(bucket): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    own_bucket(&st, &s, &bucket).await?;
    match storage::bucket_delete(&st.app, &s.ctx, &bucket).await {
        Ok(()) => {
            s.v.flash("bucket_deleted");
            Ok(s.v.redirect("/account/storage"))
        }
        Err(e) => match alert_of(&s.v, &e) {
            Some((status, alert)) => {
                let alert = i18n::tf(
                    s.v.lang,
                    "console.storage.delete_refused",
                    &[("name", &bucket), ("reason", &alert)],
                );
                buckets_page(&st, &s, status, &BucketForm::default(), None, Some(alert)).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

// --- One bucket ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BrowseQuery {
    prefix: String,
    after: String,
}

async fn bucket(
    State(st): State<AppState>,
    s: SignedIn,
    Path(bucket): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    subscribers_only(&s)?;
    let q: BrowseQuery = forms::query(raw.as_deref());
    let after = forms::opt(&q.after);
    let view = Browse {
        prefix: &q.prefix,
        after: after.as_deref(),
    };
    bucket_page(&st, &s, &bucket, view, StatusCode::OK, None, None).await
}

/// Where in a bucket a page is.
#[derive(Clone, Copy)]
struct Browse<'a> {
    prefix: &'a str,
    after: Option<&'a str>,
}

/// The "folder" part of a prefix: everything up to its last `/`.
fn folder_of(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    }
}

async fn bucket_page(
    st: &AppState,
    s: &SignedIn,
    name: &str,
    at: Browse<'_>,
    status: StatusCode,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Page {
    let b = own_bucket(st, s, name).await?;
    let lang = s.v.lang;
    let listing = storage::list_objects(
        &st.app,
        &s.ctx,
        &b.name,
        at.prefix,
        Some("/"),
        at.after,
        LIST_PAGE,
    )
    .await
    .map_err(|e| s.v.fail(e))?;
    let folders: Vec<Value> = listing
        .prefixes
        .iter()
        .map(|p| {
            context! {
                name => p[at.prefix.len()..].to_string(),
                prefix => p,
                url => bucket_url(&b.name, p),
            }
        })
        .collect();
    let objects: Vec<Value> = listing
        .objects
        .iter()
        .map(|o| {
            context! {
                key => &o.key,
                name => o.key[at.prefix.len()..].to_string(),
                size => bytes_text(lang, o.size as i64),
                content_type => o.content_type.as_deref().unwrap_or("application/octet-stream"),
                modified_at => when(o.modified_at),
                download_url => format!("/account/storage/buckets/{}/object?key={}", b.name, enc(&o.key)),
            }
        })
        .collect();
    // The path to here: the bucket, then each folder of the prefix.
    let mut crumbs = vec![context! { name => &b.name, url => bucket_url(&b.name, "") }];
    let folder = folder_of(at.prefix);
    let mut upto = 0;
    for part in folder.split_inclusive('/') {
        upto += part.len();
        crumbs.push(context! { name => part, url => bucket_url(&b.name, &folder[..upto]) });
    }
    let next_url = listing.next.filter(|_| listing.truncated).map(|n| {
        format!(
            "/account/storage/buckets/{}?prefix={}&after={}",
            b.name,
            enc(at.prefix),
            enc(&n)
        )
    });
    let ctx = context! {
        section => "account",
        bucket => BucketView::new(lang, &b),
        prefix => at.prefix,
        crumbs => crumbs,
        up_url => (!at.prefix.is_empty()).then(|| {
            let parent = folder_of(at.prefix.strip_suffix('/').unwrap_or(at.prefix));
            bucket_url(&b.name, parent)
        }),
        folders => folders,
        objects => objects,
        next_url => next_url,
        first_url => at.after.map(|_| bucket_url(&b.name, at.prefix)),
        upload_max => bytes_text(lang, UPLOAD_MAX as i64),
        upload_max_mib => UPLOAD_MAX / (1024 * 1024),
        form => context! { folder => "" },
        alert => alert,
    };
    Ok(s.v.page(
        status,
        "account/storage_bucket.html",
        with_errors(ctx, errors),
    ))
}

/// A file name as browsers send it, without any directory part.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or("").trim()
}

/// A folder typed in the upload form, as the start of a key: `a/b/` (no leading `/`, no empty
/// segment), or nothing.
fn folder_key(typed: &str) -> String {
    let parts: Vec<&str> = typed
        .split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    }
}

/// How reading the file's bytes from the form ended.
enum Feed {
    Done,
    /// `put_object` stopped reading (it refused the object).
    Stopped,
    TooLarge,
    Unreadable(StatusCode),
}

async fn upload(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(bucket): Path<String>,
    mut body: Multipart,
) -> Page {
    subscribers_only(&s)?;
    let b = own_bucket(&st, &s, &bucket).await?;
    let mut csrf = String::new();
    let mut prefix = String::new();
    let mut folder = String::new();
    loop {
        let mut field = match body.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(upload_unreadable(&s.v, e.status())),
        };
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "csrf" | "prefix" | "folder" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| upload_unreadable(&s.v, e.status()))?;
                match name.as_str() {
                    "csrf" => csrf = text,
                    "prefix" => prefix = text,
                    _ => folder = text,
                }
            }
            "file" => {
                // The token comes before the file in the form: nothing is stored for a forged one.
                s.v.check_csrf(&csrf)?;
                let prefix = folder_of(&prefix).to_string();
                let file_name = base_name(field.file_name().unwrap_or("")).to_string();
                if file_name.is_empty() {
                    break;
                }
                let key = format!("{prefix}{}{file_name}", folder_key(&folder));
                let content_type = field
                    .content_type()
                    .filter(|c| !c.is_empty() && HeaderValue::from_str(c).is_ok())
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
                let stream = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|chunk| (chunk, rx))
                })
                .boxed();
                let feed = async {
                    // Owned here: the body ends when the form's file does.
                    let tx = tx;
                    let mut sent = 0u64;
                    loop {
                        match field.chunk().await {
                            Ok(Some(chunk)) => {
                                sent += chunk.len() as u64;
                                if sent > UPLOAD_MAX {
                                    let _ = tx.send(Err(std::io::Error::other("too large"))).await;
                                    return Feed::TooLarge;
                                }
                                if tx.send(Ok(chunk)).await.is_err() {
                                    return Feed::Stopped;
                                }
                            }
                            Ok(None) => return Feed::Done,
                            Err(e) => {
                                let status = e.status();
                                let _ = tx.send(Err(std::io::Error::other(e.body_text()))).await;
                                return Feed::Unreadable(status);
                            }
                        }
                    }
                };
                let put = storage::put_object(
                    &st.app,
                    &s.ctx,
                    storage::PutObject {
                        bucket: b.name.clone(),
                        key: key.clone(),
                        content_type: Some(content_type),
                        meta: storage::ObjectMeta::default(),
                        cond: storage::WriteIf::default(),
                    },
                    storage::Body {
                        stream,
                        length: None,
                        content_md5: None,
                        verify: None,
                    },
                );
                let (fed, stored) = tokio::join!(feed, put);
                match fed {
                    Feed::TooLarge => {
                        return Err(upload_unreadable(&s.v, StatusCode::PAYLOAD_TOO_LARGE))
                    }
                    Feed::Unreadable(status) => return Err(upload_unreadable(&s.v, status)),
                    Feed::Stopped => {
                        // Read what the browser still sends, so that it gets the answer.
                        while let Ok(Some(_)) = field.chunk().await {}
                    }
                    Feed::Done => {}
                }
                let at = Browse {
                    prefix: &prefix,
                    after: None,
                };
                return match stored {
                    Ok(o) => {
                        s.v.flash("object_uploaded");
                        Ok(s.v.redirect(&bucket_url(&b.name, folder_of(&o.key))))
                    }
                    Err(e) => {
                        let status = status_of(&e);
                        let e = match e {
                            // The key is the file's name: it is the file that is refused.
                            Error::Storage {
                                code,
                                field: Some("key"),
                                reason,
                            } => Error::Storage {
                                code,
                                field: Some("file"),
                                reason,
                            },
                            e => e,
                        };
                        match form_errors(s.v.lang, e, &["file", "folder"]) {
                            Ok(errors) => {
                                bucket_page(&st, &s, &b.name, at, status, Some(errors), None).await
                            }
                            Err(e) => match alert_of(&s.v, &e) {
                                Some((status, alert)) => {
                                    bucket_page(&st, &s, &b.name, at, status, None, Some(alert))
                                        .await
                                }
                                None => Err(s.v.fail(e)),
                            },
                        }
                    }
                };
            }
            _ => {}
        }
    }
    s.v.check_csrf(&csrf)?;
    let prefix = folder_of(&prefix).to_string();
    let mut errors = FieldErrors::default();
    errors.push("file", s.v.t("console.storage.no_file"));
    let at = Browse {
        prefix: &prefix,
        after: None,
    };
    bucket_page(
        &st,
        &s,
        &b.name,
        at,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(errors),
        None,
    )
    .await
}

/// A body that could not be read: too large, or not a form.
fn upload_unreadable(v: &Visitor, status: StatusCode) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        v.status_page(
            status,
            "console.storage.too_large_title",
            i18n::tf(
                v.lang,
                "console.storage.too_large",
                &[("max", &bytes_text(v.lang, UPLOAD_MAX as i64))],
            ),
        )
    } else {
        v.status_page(
            StatusCode::BAD_REQUEST,
            "console.error.invalid_title",
            v.t("console.error.bad_form"),
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct KeyQuery {
    key: String,
}

/// `Content-Disposition` for an object: its base name (`download` for a folder marker).
fn disposition(key: &str) -> String {
    let name = match base_name(key) {
        "" => "download",
        n => n,
    };
    crate::content_disposition(name)
}

/// An object's bytes as a download, streamed from the store.
async fn download(
    State(st): State<AppState>,
    s: SignedIn,
    Path(bucket): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    subscribers_only(&s)?;
    let b = own_bucket(&st, &s, &bucket).await?;
    let q: KeyQuery = forms::query(raw.as_deref());
    let info = match storage::head_object(&st.app, &s.ctx, &b.name, &q.key).await {
        Ok(i) => i,
        Err(Error::Storage {
            code: Code::NoSuchKey | Code::InvalidArgument,
            ..
        }) => return Err(s.v.fail(Error::NotFound)),
        Err(e) => return Err(s.v.fail(e)),
    };
    let stream = storage::read_object(&st.app, &info, 0..info.size).map_err(|e| s.v.fail(e))?;
    let mut r = Response::new(axum::body::Body::from_stream(stream));
    let h = r.headers_mut();
    let content_type = info
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    if let Ok(v) = HeaderValue::from_str(&disposition(&info.key)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Whatever the uploader called it, it is never a page of ours.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(r)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ObjectForm {
    csrf: String,
    key: String,
}

async fn object_delete(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(bucket): Path<String>,
    Form(f): Form<ObjectForm>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    let b = own_bucket(&st, &s, &bucket).await?;
    let folder = folder_of(&f.key).to_string();
    match storage::delete_object(&st.app, &s.ctx, &b.name, &f.key).await {
        Ok(_) => {
            s.v.flash("object_deleted");
            Ok(s.v.redirect(&bucket_url(&b.name, &folder)))
        }
        Err(e) => match alert_of(&s.v, &e) {
            Some((status, alert)) => {
                let at = Browse {
                    prefix: &folder,
                    after: None,
                };
                bucket_page(&st, &s, &b.name, at, status, None, Some(alert)).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

// --- Access keys ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct KeyForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
}

async fn keys(State(st): State<AppState>, s: SignedIn) -> Page {
    subscribers_only(&s)?;
    keys_page(
        &st,
        &s,
        StatusCode::OK,
        &KeyForm::default(),
        None,
        None,
        None,
    )
    .await
}

async fn keys_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &KeyForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    created: Option<storage::NewKey>,
) -> Page {
    let list = storage::key_list(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "account",
        keys => list.iter().map(KeyView::from).collect::<Vec<_>>(),
        created => created.map(|c| context! { id => c.key.id, name => c.key.name, secret => c.secret }),
        s3_url => st.app.settings().s3_url.clone(),
        form => form,
        alert => alert,
    };
    let mut r = s.v.page(
        status,
        "account/storage_keys.html",
        with_errors(ctx, errors),
    );
    // A page showing a secret is not kept by anything between here and the browser.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn key_create(State(st): State<AppState>, s: SignedIn, Form(form): Form<KeyForm>) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    match storage::key_create(&st.app, &s.ctx, &form.name).await {
        Ok(created) => {
            keys_page(
                &st,
                &s,
                StatusCode::CREATED,
                &KeyForm::default(),
                None,
                None,
                Some(created),
            )
            .await
        }
        Err(e) => {
            let status = status_of(&e);
            match form_errors(s.v.lang, e, &["name"]) {
                Ok(errors) => keys_page(&st, &s, status, &form, Some(errors), None, None).await,
                Err(e) => match alert_of(&s.v, &e) {
                    Some((status, alert)) => {
                        keys_page(&st, &s, status, &form, None, Some(alert), None).await
                    }
                    None => Err(s.v.fail(e)),
                },
            }
        }
    }
}

async fn key_revoke(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&f.csrf)?;
    storage::key_revoke(&st.app, &s.ctx, id.trim())
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("storage_key_revoked");
    Ok(s.v.redirect("/account/storage/keys"))
}

// --- The back office ---

/// Every subscriber's storage against their quota (support and billing operators).
async fn admin_usage(State(st): State<AppState>, OperatorIn(s): OperatorIn) -> Page {
    let fail = |e| s.v.fail(e);
    let lang = s.v.lang;
    let rows = storage::usage_all(&st.app, &s.ctx).await.map_err(fail)?;
    let mut views = Vec::with_capacity(rows.len());
    for r in &rows {
        let u = storage::usage(&st.app, &s.ctx, Some(r.subscriber_id))
            .await
            .map_err(fail)?;
        views.push(context! {
            subscriber_id => r.subscriber_id.to_string(),
            buckets => count_text(lang, r.buckets),
            bytes => bytes_text(lang, r.bytes),
            objects => count_text(lang, r.objects),
            quota_bytes => bytes_text(lang, u.quota.bytes),
            quota_objects => count_text(lang, u.quota.objects),
            quota_manual => u.quota.manual,
            over => r.bytes > u.quota.bytes || r.objects > u.quota.objects,
        });
    }
    let ctx = context! {
        section => "admin",
        rows => views,
    };
    Ok(s.v.page(StatusCode::OK, "admin/storage.html", ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(lang: &str) -> Visitor {
        let (parts, _) = axum::http::Request::builder()
            .uri("/account/storage")
            .header("accept-language", lang)
            .header(
                "cookie",
                "maocloud_csrf=0123456789abcdef0123456789abcdef0123456789a",
            )
            .body(())
            .unwrap()
            .into_parts();
        Visitor::from_parts(&parts, true, true)
    }

    fn samples() -> Vec<(&'static str, Value)> {
        let now = when("2026-02-03T10:20:00Z".parse().unwrap());
        let user = context! { name => "Camille", email => "c@example.test", is_operator => false, is_admin => false, role => "" };
        let op = context! { name => "Ada", email => "a@example.test", is_operator => true, is_admin => false, role => "support" };
        let usage = vec![usage_line(
            "bytes",
            "Stored".into(),
            1_500,
            2_000_000_000,
            |n| n.to_string(),
        )];
        let traffic =
            context! { days => 30, requests => "12", egress => "1 kB", ingress => "2 kB" };
        let bucket = context! { name => "photos", url => "/account/storage/buckets/photos", size => "1 kB", objects => "2", created_at => &now };
        let errors = context! { name => "is <i>wrong</i>" };
        let error_list = vec![context! { field => "name", reason => "is <i>wrong</i>" }];
        vec![
            (
                "account/storage.html",
                context! {
                    user => &user, buckets => vec![&bucket], usage => &usage, quota_manual => false,
                    traffic => &traffic, form => context! { name => "Bad_<i>" }, alert => "Refusé <i>",
                    errors => &errors, error_list => &error_list,
                },
            ),
            (
                "account/storage.html",
                context! {
                    user => &user, buckets => Vec::<Value>::new(), usage => &usage, quota_manual => true,
                    traffic => &traffic, form => context! {},
                },
            ),
            (
                "account/storage_bucket.html",
                context! {
                    user => &user, bucket => &bucket, prefix => "docs/",
                    crumbs => vec![context! { name => "photos", url => "/a" }, context! { name => "docs/", url => "/b" }],
                    up_url => "/account/storage/buckets/photos",
                    folders => vec![context! { name => "2025/", prefix => "docs/2025/", url => "/c" }],
                    objects => vec![context! { key => "docs/a <i>.txt", name => "a <i>.txt", size => "3 B", content_type => "text/plain", modified_at => &now, download_url => "/d" }],
                    next_url => "/e", first_url => "/f", upload_max => "104.9 MB", form => context! { folder => "" },
                    errors => context! { file => "no" }, error_list => vec![context! { field => "file", reason => "no" }],
                },
            ),
            (
                "account/storage_bucket.html",
                context! {
                    user => &user, bucket => &bucket, prefix => "", crumbs => vec![context! { name => "photos", url => "/a" }],
                    folders => Vec::<Value>::new(), objects => Vec::<Value>::new(), upload_max => "104.9 MB",
                    form => context! { folder => "" }, alert => "Refusé <i>",
                },
            ),
            (
                "account/storage_keys.html",
                context! {
                    user => &user,
                    keys => vec![
                        context! { id => "MCKAAAA", name => "<i>backup</i>", active => true, status => "active", created_at => &now, revoked_at => () },
                        context! { id => "MCKBBBB", name => "old", active => false, status => "revoked", created_at => &now, revoked_at => &now },
                    ],
                    created => context! { id => "MCKAAAA", name => "<i>backup</i>", secret => "s3cr3t" },
                    form => context! { name => "" }, alert => "Refusé <i>",
                },
            ),
            (
                "account/storage_keys.html",
                context! { user => &user, keys => Vec::<Value>::new(), form => context! {} },
            ),
            (
                "admin/storage.html",
                context! {
                    user => &op,
                    rows => vec![context! { subscriber_id => "s1", buckets => "1", bytes => "1 kB", objects => "2", quota_bytes => "2 GB", quota_objects => "10 000", quota_manual => true, over => true }],
                },
            ),
            (
                "admin/storage.html",
                context! { user => &op, rows => Vec::<Value>::new() },
            ),
        ]
    }

    #[tokio::test]
    async fn every_storage_page_renders_in_both_languages() {
        for lang in ["fr", "en"] {
            for (name, ctx) in samples() {
                let r = visitor(lang).page(StatusCode::OK, name, ctx);
                assert_eq!(r.status(), StatusCode::OK, "{name} in {lang}");
                let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
                let html = String::from_utf8(bytes.to_vec()).unwrap();
                assert!(
                    !html.contains("console."),
                    "{name} in {lang}: a missing key in {html}"
                );
                for p in [
                    "{name}",
                    "{max}",
                    "{prefix}",
                    "{size}",
                    "{objects}",
                    "{days}",
                    "{bytes}",
                    "{used}",
                    "{total}",
                ] {
                    assert!(!html.contains(p), "{name} in {lang}: {p} unfilled");
                }
                assert!(!html.contains("<i>"), "{name} in {lang} is not escaped");
            }
        }
        for code in [
            Code::NoSuchBucket,
            Code::NoSuchKey,
            Code::NoSuchUpload,
            Code::BucketAlreadyExists,
            Code::BucketAlreadyOwnedByYou,
            Code::BucketNotEmpty,
            Code::InvalidBucketName,
            Code::InvalidArgument,
            Code::InvalidDigest,
            Code::BadDigest,
            Code::InvalidPart,
            Code::InvalidPartOrder,
            Code::EntityTooSmall,
            Code::EntityTooLarge,
            Code::InvalidRange,
            Code::PreconditionFailed,
            Code::NotModified,
            Code::AccessDenied,
            Code::QuotaExceeded,
            Code::Suspended,
            Code::NotEnabled,
        ] {
            for lang in Lang::ALL {
                let key = format!("console.storage.refused.{code:?}");
                assert_ne!(i18n::t(lang, &key), key, "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn storage_refusals_land_next_to_their_field() {
        let e = Error::storage(
            Code::InvalidBucketName,
            Some("name"),
            "must not look like an IP address",
        );
        let errors = form_errors(Lang::Fr, e, &["name"]).expect("a field error");
        assert_eq!(
            errors.pairs(),
            vec![(
                "name".to_string(),
                "ne doit pas ressembler à une adresse IP".to_string()
            )]
        );
        let e = Error::storage(
            Code::BucketNotEmpty,
            Some("bucket"),
            "the bucket is not empty",
        );
        assert!(
            form_errors(Lang::Fr, e, &["name"]).is_err(),
            "not a field of this form"
        );
        let e = Error::storage(Code::QuotaExceeded, None, "over quota (GB stored)");
        assert!(form_errors(Lang::En, e, &["file"]).is_err());
        let e = Error::storage(
            Code::BucketAlreadyExists,
            Some("name"),
            "something untranslated",
        );
        assert_eq!(
            form_errors(Lang::Fr, e, &["name"]).unwrap().pairs()[0].1,
            i18n::t(Lang::Fr, "console.storage.refused.BucketAlreadyExists")
        );
    }

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(bytes_text(Lang::Fr, 0), "0\u{a0}o");
        assert_eq!(bytes_text(Lang::En, 999), "999 B");
        assert_eq!(bytes_text(Lang::Fr, 1_500), "1,5\u{a0}Ko");
        assert_eq!(bytes_text(Lang::En, 1_500), "1.5 kB");
        assert_eq!(bytes_text(Lang::En, 2_000_000_000), "2 GB");
        assert_eq!(bytes_text(Lang::En, 104_857_600), "104.9 MB");
        assert_eq!(bytes_text(Lang::Fr, 999_960), "1\u{a0}Mo");
        assert_eq!(count_text(Lang::Fr, 10_000), "10\u{a0}000");
        assert_eq!(count_text(Lang::En, 1_234_567), "1,234,567");
    }

    #[test]
    fn keys_come_from_the_folder_and_the_file_name() {
        assert_eq!(folder_of("docs/2025/rep"), "docs/2025/");
        assert_eq!(folder_of("docs/"), "docs/");
        assert_eq!(folder_of("x"), "");
        assert_eq!(folder_key(" /a//b / "), "a/b/");
        assert_eq!(folder_key("  "), "");
        assert_eq!(base_name("C:\\Users\\me\\notes.txt"), "notes.txt");
        assert_eq!(base_name("/tmp/x/rapport été.pdf"), "rapport été.pdf");
    }

    #[test]
    fn downloads_name_the_file_safely() {
        assert_eq!(
            disposition("docs/rapport été \"v2\".pdf"),
            "attachment; filename=\"rapport _t_ _v2_.pdf\"; filename*=UTF-8''rapport%20%C3%A9t%C3%A9%20%22v2%22.pdf"
        );
        assert_eq!(
            disposition("dir/"),
            "attachment; filename=\"download\"; filename*=UTF-8''download"
        );
    }
}
