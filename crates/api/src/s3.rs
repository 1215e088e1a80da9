//! The S3 endpoint (R-1b): the `s3s` protocol layer (SigV4 in headers and presigned URLs,
//! streaming chunked bodies with trailing checksums, XML errors) in front of the storage use
//! cases. This file only translates: S3 inputs into `app::storage` calls, their results and
//! refusals into S3 outputs and error codes. CORS preflights, which `s3s` does not route, are
//! answered here from the bucket's rules.

use axum::body::Body as AxumBody;
use axum::extract::Request;
use axum::http;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use maocloud_app::storage::{self, Code, ObjectInfo, ObjectMeta, WriteIf};
use maocloud_app::{App, Ctx, Error};
use maocloud_types::{Principal, SubscriberId};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The S3 service over the platform's storage use cases.
pub struct Endpoint {
    app: App,
}

/// Who signed the request, set by [`Access::check`] once the signature is verified.
#[derive(Clone, Copy)]
struct Caller(SubscriberId);

struct Auth(App);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match storage::key_resolve(&self.0, access_key).await {
            Ok((secret, _)) => Ok(SecretKey::from(secret)),
            Err(Error::Storage { .. }) => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key does not exist or was revoked"
            )),
            Err(e) => Err(to_s3(e)),
        }
    }
}

struct Access(App);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "requests must be signed with an access key"
            ));
        };
        let (_, who) = storage::key_resolve(&self.0, &creds.access_key)
            .await
            .map_err(to_s3)?;
        cx.extensions_mut().insert(Caller(who));
        Ok(())
    }
}

/// Virtual-host-style addressing under one base domain: `bucket.domain[:port]` names the
/// bucket; the domain itself, or any other host (an IP address, `localhost`), is path-style.
/// (`s3s`'s `SingleDomain` keeps the port in the comparison and takes unknown hosts for
/// bucket names, which breaks path-style requests to an address.)
struct VirtualHosts(String);

impl s3s::host::S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        // Without the port (an IPv6 literal, `[::1]:9000`, is never under the domain).
        let name = host.split(':').next().unwrap_or(host);
        let vh = s3s::host::VirtualHost::new(self.0.as_str());
        match name
            .to_ascii_lowercase()
            .strip_suffix(self.0.as_str())
            .and_then(|b| b.strip_suffix('.'))
        {
            Some(bucket) if !bucket.is_empty() => Ok(vh.with_bucket(bucket.to_string())),
            _ => Ok(vh),
        }
    }
}

/// Builds the S3 service; `domain`: the base domain for virtual-host-style addressing
/// (`bucket.domain`), path-style always works.
pub fn service(app: App, domain: Option<&str>) -> anyhow::Result<S3Service> {
    let mut b = S3ServiceBuilder::new(Endpoint { app: app.clone() });
    b.set_auth(Auth(app.clone()));
    b.set_access(Access(app));
    if let Some(d) = domain {
        b.set_host(VirtualHosts(d.to_ascii_lowercase()));
    }
    Ok(b.build())
}

/// The axum router serving the S3 endpoint: CORS preflights answered from bucket rules, every
/// other request handed to `s3s`, and CORS headers added to answers for allowed origins.
pub fn router(app: App, domain: Option<&str>) -> anyhow::Result<axum::Router> {
    let s3 = service(app.clone(), domain)?;
    let domain = domain.map(str::to_string);
    Ok(axum::Router::new().fallback(move |req: Request| {
        let s3 = s3.clone();
        let app = app.clone();
        let domain = domain.clone();
        async move {
            let origin = req.headers().get(http::header::ORIGIN).cloned();
            let bucket = bucket_of(&req, domain.as_deref());
            if req.method() == Method::OPTIONS {
                return preflight(&app, bucket.as_deref(), req.headers()).await;
            }
            let method = req.method().clone();
            let has_body = req.headers().contains_key(http::header::TRANSFER_ENCODING)
                || req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() != b"0");
            let mut resp = match s3.call(req.map(s3s::Body::http_body_unsync)).await {
                Ok(r) => r.map(AxumBody::new),
                Err(e) => {
                    tracing::error!(error = ?e, "s3 request failed");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            };
            // A request refused before its body was read leaves that body on the connection:
            // say the connection ends, so the client doesn't send its next request into it.
            if has_body && !resp.status().is_success() {
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            match (origin, bucket) {
                (Some(o), Some(b)) => with_cors(&app, &b, &o, &method, resp).await,
                _ => resp,
            }
        }
    }))
}

fn bucket_of(req: &Request, domain: Option<&str>) -> Option<String> {
    if let (Some(d), Some(host)) = (domain, req.headers().get(http::header::HOST)) {
        let host = host.to_str().ok()?.split(':').next()?;
        if let Some(b) = host.strip_suffix(d).and_then(|h| h.strip_suffix('.')) {
            return Some(b.to_string());
        }
    }
    req.uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
        .map(str::to_string)
}

/// A bucket's CORS rules as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CorsRuleJson {
    allowed_origins: Vec<String>,
    allowed_methods: Vec<String>,
    #[serde(default)]
    allowed_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default)]
    max_age_seconds: Option<i32>,
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(s),
        Some((a, b)) => {
            s.len() >= a.len() + b.len()
                && s[..a.len()].eq_ignore_ascii_case(a)
                && s[s.len() - b.len()..].eq_ignore_ascii_case(b)
        }
    }
}

async fn matching_rule(
    app: &App,
    bucket: &str,
    origin: &str,
    method: &str,
) -> Option<CorsRuleJson> {
    let json = storage::bucket_cors(app, bucket).await.ok()??;
    let rules: Vec<CorsRuleJson> = serde_json::from_str(&json).ok()?;
    rules.into_iter().find(|r| {
        r.allowed_origins.iter().any(|o| glob(o, origin))
            && r.allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
    })
}

async fn preflight(app: &App, bucket: Option<&str>, h: &HeaderMap) -> Response {
    let origin = h.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
    let method = h
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    let (Some(bucket), Some(origin), Some(method)) = (bucket, origin, method) else {
        return (
            StatusCode::BAD_REQUEST,
            "a CORS preflight needs a bucket, Origin and Access-Control-Request-Method",
        )
            .into_response();
    };
    let Some(rule) = matching_rule(app, bucket, origin, method).await else {
        return (
            StatusCode::FORBIDDEN,
            "CORSResponse: this CORS request is not allowed",
        )
            .into_response();
    };
    let mut r = StatusCode::OK.into_response();
    let hs = r.headers_mut();
    put(hs, "access-control-allow-origin", origin);
    put(
        hs,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if let Some(req_headers) = h
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        let allowed = req_headers
            .split(',')
            .map(str::trim)
            .all(|x| rule.allowed_headers.iter().any(|p| glob(p, x)));
        if !allowed {
            return (
                StatusCode::FORBIDDEN,
                "CORSResponse: a requested header is not allowed",
            )
                .into_response();
        }
        put(hs, "access-control-allow-headers", req_headers);
    }
    if let Some(age) = rule.max_age_seconds {
        put(hs, "access-control-max-age", &age.to_string());
    }
    put(
        hs,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
    r
}

async fn with_cors(
    app: &App,
    bucket: &str,
    origin: &HeaderValue,
    method: &Method,
    mut resp: Response,
) -> Response {
    let Ok(o) = origin.to_str() else { return resp };
    if let Some(rule) = matching_rule(app, bucket, o, method.as_str()).await {
        let hs = resp.headers_mut();
        put(hs, "access-control-allow-origin", o);
        if !rule.expose_headers.is_empty() {
            put(
                hs,
                "access-control-expose-headers",
                &rule.expose_headers.join(", "),
            );
        }
        put(hs, "vary", "Origin");
    }
    resp
}

fn put(h: &mut HeaderMap, name: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

/// An application refusal as the S3 error of the same meaning.
fn to_s3(e: Error) -> S3Error {
    let (code, status) = match &e {
        Error::Storage { code, .. } => match code {
            Code::NoSuchBucket => (S3ErrorCode::NoSuchBucket, None),
            Code::NoSuchKey => (S3ErrorCode::NoSuchKey, None),
            Code::NoSuchUpload => (S3ErrorCode::NoSuchUpload, None),
            Code::BucketAlreadyExists => (S3ErrorCode::BucketAlreadyExists, None),
            Code::BucketAlreadyOwnedByYou => (S3ErrorCode::BucketAlreadyOwnedByYou, None),
            Code::BucketNotEmpty => (S3ErrorCode::BucketNotEmpty, None),
            Code::InvalidBucketName => (S3ErrorCode::InvalidBucketName, None),
            Code::InvalidArgument => (S3ErrorCode::InvalidArgument, None),
            Code::InvalidDigest => (S3ErrorCode::InvalidDigest, None),
            Code::BadDigest => (S3ErrorCode::BadDigest, None),
            Code::InvalidPart => (S3ErrorCode::InvalidPart, None),
            Code::InvalidPartOrder => (S3ErrorCode::InvalidPartOrder, None),
            Code::EntityTooSmall => (S3ErrorCode::EntityTooSmall, None),
            Code::EntityTooLarge => (S3ErrorCode::EntityTooLarge, None),
            Code::InvalidRange => (S3ErrorCode::InvalidRange, None),
            Code::PreconditionFailed => (S3ErrorCode::PreconditionFailed, None),
            Code::NotModified => (S3ErrorCode::NotModified, None),
            Code::AccessDenied => (S3ErrorCode::AccessDenied, None),
            // What Ceph RGW answers; AWS has no quotas of this kind.
            Code::QuotaExceeded => (
                S3ErrorCode::Custom("QuotaExceeded".into()),
                Some(StatusCode::FORBIDDEN),
            ),
            Code::Suspended => (S3ErrorCode::AccountProblem, None),
            Code::ReadOnly => (S3ErrorCode::AccessDenied, None),
            Code::NotEnabled => (S3ErrorCode::ServiceUnavailable, None),
        },
        Error::Invalid(_) => (S3ErrorCode::InvalidArgument, None),
        Error::NotFound => (S3ErrorCode::NoSuchKey, None),
        Error::Unauthenticated(_) | Error::Forbidden(_) => (S3ErrorCode::AccessDenied, None),
        Error::Conflict { .. } => (S3ErrorCode::InvalidRequest, None),
        Error::TooManyRequests { .. } => (S3ErrorCode::SlowDown, None),
        Error::Unavailable(_) => (S3ErrorCode::ServiceUnavailable, None),
        Error::Internal(_) => {
            tracing::error!(error = %e, "internal error in the S3 endpoint");
            return S3Error::with_message(
                S3ErrorCode::InternalError,
                "an internal error occurred; it has been logged",
            );
        }
    };
    let mut err = S3Error::with_message(code, e.to_string());
    if let Some(s) = status {
        err.set_status_code(s);
    }
    err
}

fn ctx_of<T>(req: &S3Request<T>) -> S3Result<Ctx> {
    let Caller(who) = req
        .extensions
        .get::<Caller>()
        .copied()
        .ok_or_else(|| s3_error!(AccessDenied, "requests must be signed with an access key"))?;
    Ok(Ctx {
        principal: Principal::Subscriber(who),
        ip: "s3".into(),
    })
}

fn ts(t: maocloud_types::Timestamp) -> Timestamp {
    let st =
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(t.as_microsecond().max(0) as u64);
    Timestamp::from(st)
}

fn etag(s: &str) -> ETag {
    ETag::Strong(s.trim_matches('"').to_string())
}

fn meta_of(
    metadata: Option<Metadata>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
) -> ObjectMeta {
    ObjectMeta {
        user: metadata.unwrap_or_default().into_iter().collect(),
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires: expires.and_then(|t| {
            let mut v = Vec::new();
            t.format(TimestampFormat::HttpDate, &mut v).ok()?;
            String::from_utf8(v).ok()
        }),
        ..Default::default()
    }
}

fn expires_of(m: &ObjectMeta) -> Option<Timestamp> {
    m.expires
        .as_deref()
        .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok())
}

fn condition(c: &Option<ETagCondition>) -> Option<String> {
    c.as_ref().map(|c| match c {
        ETagCondition::Any => "*".to_string(),
        ETagCondition::ETag(e) => e.value().to_string(),
    })
}

/// Checksums sent with a body (headers, or trailers of a streaming upload), verified once the
/// body has been read.
struct Checksums {
    hasher: Arc<Mutex<Option<s3s::checksum::ChecksumHasher>>>,
    expected: Vec<(&'static str, Option<String>)>,
    trailers: Option<s3s::TrailingHeaders>,
}

impl Checksums {
    fn new(
        headers: &HeaderMap,
        trailers: Option<s3s::TrailingHeaders>,
        algorithm: Option<&ChecksumAlgorithm>,
        sent: [Option<String>; 5],
    ) -> Checksums {
        let mut h = s3s::checksum::ChecksumHasher::default();
        let trailer = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let alg = algorithm.map(|a| a.as_str().to_ascii_lowercase());
        let wants = |i: usize, name: &str| {
            sent[i].is_some()
                || alg.as_deref() == Some(name)
                || trailer == format!("x-amz-checksum-{name}")
        };
        if wants(0, "crc32") {
            h.crc32 = Some(Default::default());
        }
        if wants(1, "crc32c") {
            h.crc32c = Some(Default::default());
        }
        if wants(2, "sha1") {
            h.sha1 = Some(Default::default());
        }
        if wants(3, "sha256") {
            h.sha256 = Some(Default::default());
        }
        if wants(4, "crc64nvme") {
            h.crc64nvme = Some(Default::default());
        }
        let [a, b, c, d, e] = sent;
        Checksums {
            hasher: Arc::new(Mutex::new(Some(h))),
            expected: vec![
                ("crc32", a),
                ("crc32c", b),
                ("sha1", c),
                ("sha256", d),
                ("crc64nvme", e),
            ],
            trailers,
        }
    }

    /// The body, hashed as it streams, and the check to run once it is stored.
    fn wrap(
        self,
        body: StreamingBlob,
        length: Option<i64>,
        content_md5: Option<String>,
    ) -> storage::Body {
        let h = self.hasher.clone();
        let stream = body
            .map(move |chunk| match chunk {
                Ok(b) => {
                    if let Some(h) = h.lock().expect("checksum lock").as_mut() {
                        h.update(&b);
                    }
                    Ok(b)
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            })
            .boxed();
        storage::Body {
            stream,
            length: length.map(|l| l.max(0) as u64),
            content_md5,
            verify: Some(Box::new(move || self.verify())),
        }
    }

    fn verify(self) -> maocloud_app::Result<Vec<(String, String)>> {
        let got = self
            .hasher
            .lock()
            .expect("checksum lock")
            .take()
            .map(|h| h.finalize())
            .unwrap_or_default();
        let got = [
            got.checksum_crc32,
            got.checksum_crc32c,
            got.checksum_sha1,
            got.checksum_sha256,
            got.checksum_crc64nvme,
        ];
        let trailers = self.trailers.and_then(|t| t.take()).unwrap_or_default();
        let mut keep = Vec::new();
        for (i, (name, sent)) in self.expected.into_iter().enumerate() {
            let sent = sent.or_else(|| {
                trailers
                    .get(format!("x-amz-checksum-{name}"))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            });
            match (&sent, &got[i]) {
                (Some(s), Some(g)) if s != g => {
                    return Err(Error::storage(
                        Code::BadDigest,
                        Some("checksum"),
                        format!("the {name} checksum you specified did not match what we received"),
                    ))
                }
                (_, Some(g)) => keep.push((name.to_string(), g.clone())),
                _ => {}
            }
        }
        Ok(keep)
    }
}

fn checksum_field(m: &ObjectMeta, name: &str) -> Option<String> {
    m.checksums
        .iter()
        .find(|(a, _)| a == name)
        .map(|(_, v)| v.clone())
}

/// Evaluates GET/HEAD conditions as RFC 9110 orders them (If-Match, then If-Unmodified-Since,
/// If-None-Match, If-Modified-Since).
fn read_conditions(
    o: &ObjectInfo,
    if_match: &Option<ETagCondition>,
    if_unmodified_since: &Option<Timestamp>,
    if_none_match: &Option<ETagCondition>,
    if_modified_since: &Option<Timestamp>,
) -> S3Result<()> {
    let tag = etag(&o.etag);
    let modified = ts(o.modified_at);
    let secs = |t: &Timestamp| std::time::SystemTime::from(time::OffsetDateTime::from(t.clone()));
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == tag.value(),
    };
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(
                PreconditionFailed,
                "the object's ETag does not match If-Match"
            ));
        }
    } else if let Some(t) = if_unmodified_since {
        if secs(&modified) > secs(t) + std::time::Duration::from_secs(1) {
            return Err(s3_error!(
                PreconditionFailed,
                "the object was modified since If-Unmodified-Since"
            ));
        }
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    } else if let Some(t) = if_modified_since {
        if secs(&modified) <= secs(t) + std::time::Duration::from_secs(1) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    }
    Ok(())
}

fn copy_source(c: &CopySource) -> S3Result<(String, String)> {
    match c {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => Ok((bucket.to_string(), key.to_string())),
        CopySource::Bucket { .. } => Err(s3_error!(
            NotImplemented,
            "object versions are not supported"
        )),
        _ => Err(s3_error!(NotImplemented, "access points are not supported")),
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unb64(s: &str) -> S3Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the continuation token is not one this service gave"
            )
        })
}

/// `encoding-type=url`: keys and prefixes in a listing are percent-encoded (clients ask for it
/// so that any key survives XML; boto3 and the AWS CLI always do, and decode what they get).
#[derive(Clone, Copy)]
struct Enc(bool);

impl Enc {
    fn of(t: &Option<EncodingType>) -> Enc {
        Enc(t
            .as_ref()
            .is_some_and(|t| t.as_str().eq_ignore_ascii_case("url")))
    }
    fn s(self, v: &str) -> String {
        if !self.0 {
            return v.to_string();
        }
        let mut out = String::with_capacity(v.len());
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    fn o(self, v: Option<String>) -> Option<String> {
        v.map(|v| self.s(&v))
    }
}

fn object_of(o: &ObjectInfo, enc: Enc) -> Object {
    Object {
        key: Some(enc.s(&o.key)),
        size: Some(o.size as i64),
        e_tag: Some(etag(&o.etag)),
        last_modified: Some(ts(o.modified_at)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
    }
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

#[async_trait::async_trait]
impl S3 for Endpoint {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let ctx = ctx_of(&req)?;
        let list = storage::bucket_list(&self.app, &ctx).await.map_err(to_s3)?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                list.into_iter()
                    .map(|b| Bucket {
                        name: Some(b.name),
                        creation_date: Some(ts(b.created_at)),
                        bucket_region: None,
                    })
                    .collect(),
            ),
            owner: Some(Owner {
                id: ctx.principal.subscriber().map(|s| s.to_string()),
                display_name: None,
            }),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let ctx = ctx_of(&req)?;
        storage::bucket_create(&self.app, &ctx, &req.input.bucket)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let ctx = ctx_of(&req)?;
        storage::bucket_owned(&self.app, &ctx, &req.input.bucket)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let ctx = ctx_of(&req)?;
        storage::bucket_delete(&self.app, &ctx, &req.input.bucket)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let ctx = ctx_of(&req)?;
        storage::bucket_owned(&self.app, &ctx, &req.input.bucket)
            .await
            .map_err(to_s3)?;
        // The default region: clients then sign for us-east-1, which is what we verify.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let ctx = ctx_of(&req)?;
        let rules: Vec<CorsRuleJson> = req
            .input
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| CorsRuleJson {
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect();
        if rules.is_empty() || rules.len() > 100 {
            return Err(s3_error!(
                MalformedXML,
                "a CORS configuration holds 1 to 100 rules"
            ));
        }
        let json = serde_json::to_string(&rules).map_err(|e| S3Error::internal_error(e))?;
        storage::bucket_set_cors(&self.app, &ctx, &req.input.bucket, Some(&json))
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let ctx = ctx_of(&req)?;
        let b = storage::bucket_owned(&self.app, &ctx, &req.input.bucket)
            .await
            .map_err(to_s3)?;
        let Some(json) = b.cors else {
            return Err(s3_error!(
                NoSuchCORSConfiguration,
                "the bucket has no CORS configuration"
            ));
        };
        let rules: Vec<CorsRuleJson> =
            serde_json::from_str(&json).map_err(|e| S3Error::internal_error(e))?;
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(
                rules
                    .into_iter()
                    .map(|r| CORSRule {
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: Some(r.allowed_headers).filter(|v| !v.is_empty()),
                        expose_headers: Some(r.expose_headers).filter(|v| !v.is_empty()),
                        max_age_seconds: r.max_age_seconds,
                        id: None,
                    })
                    .collect(),
            ),
        }))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let ctx = ctx_of(&req)?;
        storage::bucket_set_cors(&self.app, &ctx, &req.input.bucket, None)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let Some(body) = i.body else {
            return Err(s3_error!(IncompleteBody, "the request has no body"));
        };
        let sums = Checksums::new(
            &req.headers,
            req.trailing_headers,
            i.checksum_algorithm.as_ref(),
            [
                i.checksum_crc32,
                i.checksum_crc32c,
                i.checksum_sha1,
                i.checksum_sha256,
                i.checksum_crc64nvme,
            ],
        );
        let put = storage::PutObject {
            bucket: i.bucket,
            key: i.key,
            content_type: i.content_type,
            meta: meta_of(
                i.metadata,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires,
            ),
            cond: WriteIf {
                if_match: condition(&i.if_match),
                if_none_match: condition(&i.if_none_match),
            },
        };
        let o = storage::put_object(
            &self.app,
            &ctx,
            put,
            sums.wrap(body, i.content_length, i.content_md5),
        )
        .await
        .map_err(to_s3)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&o.etag)),
            checksum_crc32: checksum_field(&o.meta, "crc32"),
            checksum_crc32c: checksum_field(&o.meta, "crc32c"),
            checksum_sha1: checksum_field(&o.meta, "sha1"),
            checksum_sha256: checksum_field(&o.meta, "sha256"),
            checksum_crc64nvme: checksum_field(&o.meta, "crc64nvme"),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let o = storage::head_object(&self.app, &ctx, &i.bucket, &i.key)
            .await
            .map_err(to_s3)?;
        read_conditions(
            &o,
            &i.if_match,
            &i.if_unmodified_since,
            &i.if_none_match,
            &i.if_modified_since,
        )?;
        if i.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "GET by part number is not supported"
            ));
        }
        let (range, content_range) = match &i.range {
            None => (0..o.size, None),
            Some(r) => {
                let r = r.check(o.size)?;
                let cr = format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), o.size);
                (r, Some(cr))
            }
        };
        let whole = content_range.is_none();
        let len = range.end - range.start;
        let stream = storage::read_object(&self.app, &o, range).map_err(to_s3)?;
        let body = StreamingBlob::wrap(SyncStream(std::sync::Mutex::new(stream)));
        Ok(S3Response::new(GetObjectOutput {
            body: Some(body),
            content_length: Some(len as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            last_modified: Some(ts(o.modified_at)),
            e_tag: Some(etag(&o.etag)),
            content_type: o.content_type.clone(),
            metadata: Some(o.meta.user.clone().into_iter().collect())
                .filter(|m: &Metadata| !m.is_empty()),
            content_encoding: o.meta.content_encoding.clone(),
            content_disposition: o.meta.content_disposition.clone(),
            content_language: o.meta.content_language.clone(),
            cache_control: o.meta.cache_control.clone(),
            expires: expires_of(&o.meta),
            parts_count: o.meta.parts.map(|p| p as i32),
            checksum_crc32: checksum_field(&o.meta, "crc32").filter(|_| whole),
            checksum_crc32c: checksum_field(&o.meta, "crc32c").filter(|_| whole),
            checksum_sha1: checksum_field(&o.meta, "sha1").filter(|_| whole),
            checksum_sha256: checksum_field(&o.meta, "sha256").filter(|_| whole),
            checksum_crc64nvme: checksum_field(&o.meta, "crc64nvme").filter(|_| whole),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let o = storage::head_object(&self.app, &ctx, &i.bucket, &i.key)
            .await
            .map_err(to_s3)?;
        read_conditions(
            &o,
            &i.if_match,
            &i.if_unmodified_since,
            &i.if_none_match,
            &i.if_modified_since,
        )?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(o.size as i64),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(ts(o.modified_at)),
            e_tag: Some(etag(&o.etag)),
            content_type: o.content_type.clone(),
            metadata: Some(o.meta.user.clone().into_iter().collect())
                .filter(|m: &Metadata| !m.is_empty()),
            content_encoding: o.meta.content_encoding.clone(),
            content_disposition: o.meta.content_disposition.clone(),
            content_language: o.meta.content_language.clone(),
            cache_control: o.meta.cache_control.clone(),
            expires: expires_of(&o.meta),
            parts_count: o.meta.parts.map(|p| p as i32),
            checksum_crc32: checksum_field(&o.meta, "crc32"),
            checksum_crc32c: checksum_field(&o.meta, "crc32c"),
            checksum_sha1: checksum_field(&o.meta, "sha1"),
            checksum_sha256: checksum_field(&o.meta, "sha256"),
            checksum_crc64nvme: checksum_field(&o.meta, "crc64nvme"),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let ctx = ctx_of(&req)?;
        storage::delete_object(&self.app, &ctx, &req.input.bucket, &req.input.key)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "at most 1000 keys per request"));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for obj in i.delete.objects {
            match storage::delete_object(&self.app, &ctx, &i.bucket, &obj.key).await {
                Ok(_) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(obj.key),
                            ..Default::default()
                        })
                    }
                }
                Err(e) => {
                    let e = to_s3(e);
                    errors.push(s3s::dto::Error {
                        key: Some(obj.key),
                        code: Some(e.code().as_str().to_string()),
                        message: e.message().map(str::to_string),
                        ..Default::default()
                    })
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors).filter(|e: &Vec<_>| !e.is_empty()),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let (sb, sk) = copy_source(&i.copy_source)?;
        let src = storage::head_object(&self.app, &ctx, &sb, &sk)
            .await
            .map_err(to_s3)?;
        read_conditions(
            &src,
            &i.copy_source_if_match,
            &i.copy_source_if_unmodified_since,
            &i.copy_source_if_none_match,
            &i.copy_source_if_modified_since,
        )
        .map_err(|e| match e.code() {
            S3ErrorCode::NotModified => s3_error!(
                PreconditionFailed,
                "the source matched If-None-Match / was not modified"
            ),
            _ => e,
        })?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if sb == i.bucket && sk == i.key && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "copying an object onto itself without changing anything is not allowed: use the REPLACE metadata directive"
            ));
        }
        let dst = storage::PutObject {
            bucket: i.bucket,
            key: i.key,
            content_type: i.content_type,
            meta: meta_of(
                i.metadata,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires,
            ),
            cond: WriteIf::default(),
        };
        let o = storage::copy_object(&self.app, &ctx, &sb, &sk, dst, replace)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(ts(o.modified_at)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = storage::list_objects(
            &self.app,
            &ctx,
            &i.bucket,
            &prefix,
            i.delimiter.as_deref(),
            i.marker.as_deref().filter(|m| !m.is_empty()),
            max_keys(i.max_keys)?,
        )
        .await
        .map_err(to_s3)?;
        let enc = Enc::of(&i.encoding_type);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: enc.o(i.prefix),
            marker: enc.o(i.marker),
            delimiter: enc.o(i.delimiter.clone()),
            max_keys: Some(max_keys(i.max_keys)? as i32),
            is_truncated: Some(l.truncated),
            next_marker: enc
                .o(l.next
                    .clone()
                    .filter(|_| l.truncated && i.delimiter.is_some())),
            contents: Some(l.objects.iter().map(|o| object_of(o, enc)).collect()),
            common_prefixes: Some(
                l.prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc.s(&p)),
                    })
                    .collect(),
            ),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let after = match (&i.continuation_token, &i.start_after) {
            (Some(t), _) => Some(unb64(t)?),
            (None, Some(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let max = max_keys(i.max_keys)?;
        let l = storage::list_objects(
            &self.app,
            &ctx,
            &i.bucket,
            &prefix,
            i.delimiter.as_deref(),
            after.as_deref(),
            max,
        )
        .await
        .map_err(to_s3)?;
        let count = l.objects.len() + l.prefixes.len();
        let enc = Enc::of(&i.encoding_type);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: enc.o(i.prefix),
            delimiter: enc.o(i.delimiter),
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            is_truncated: Some(l.truncated),
            continuation_token: i.continuation_token,
            next_continuation_token: l.next.as_deref().filter(|_| l.truncated).map(b64),
            start_after: enc.o(i.start_after),
            contents: Some(l.objects.iter().map(|o| object_of(o, enc)).collect()),
            common_prefixes: Some(
                l.prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc.s(&p)),
                    })
                    .collect(),
            ),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let meta = meta_of(
            i.metadata,
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
        );
        let u = storage::upload_create(&self.app, &ctx, &i.bucket, &i.key, i.content_type, meta)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(u.bucket),
            key: Some(u.key),
            upload_id: Some(u.id),
            checksum_algorithm: i.checksum_algorithm,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let Some(body) = i.body else {
            return Err(s3_error!(IncompleteBody, "the request has no body"));
        };
        let sums = Checksums::new(
            &req.headers,
            req.trailing_headers,
            i.checksum_algorithm.as_ref(),
            [
                i.checksum_crc32,
                i.checksum_crc32c,
                i.checksum_sha1,
                i.checksum_sha256,
                i.checksum_crc64nvme,
            ],
        );
        let p = storage::part_upload(
            &self.app,
            &ctx,
            &i.bucket,
            &i.upload_id,
            i.part_number as i64,
            sums.wrap(body, i.content_length, i.content_md5),
        )
        .await
        .map_err(to_s3)?;
        let kept: Vec<(String, String)> = serde_json::from_str(&p.checksums).unwrap_or_default();
        let field = |n: &str| kept.iter().find(|(a, _)| a == n).map(|(_, v)| v.clone());
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&p.etag)),
            checksum_crc32: field("crc32"),
            checksum_crc32c: field("crc32c"),
            checksum_sha1: field("sha1"),
            checksum_sha256: field("sha256"),
            checksum_crc64nvme: field("crc64nvme"),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let (sb, sk) = copy_source(&i.copy_source)?;
        let range = match &i.copy_source_range {
            None => None,
            Some(r) => {
                let r = r.strip_prefix("bytes=").ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "x-amz-copy-source-range must be bytes=first-last"
                    )
                })?;
                let (a, b) = r.split_once('-').ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "x-amz-copy-source-range must be bytes=first-last"
                    )
                })?;
                let a: u64 = a
                    .parse()
                    .map_err(|_| s3_error!(InvalidArgument, "bad range start"))?;
                let b: u64 = b
                    .parse()
                    .map_err(|_| s3_error!(InvalidArgument, "bad range end"))?;
                if b < a {
                    return Err(s3_error!(
                        InvalidArgument,
                        "the range ends before it starts"
                    ));
                }
                Some(a..b + 1)
            }
        };
        let (p, _) = storage::part_copy(
            &self.app,
            &ctx,
            &i.bucket,
            &i.upload_id,
            i.part_number as i64,
            &sb,
            &sk,
            range,
        )
        .await
        .map_err(to_s3)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&p.etag)),
                last_modified: Some(ts(p.modified_at)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let parts: Vec<(i64, String)> = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0) as i64,
                    p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let cond = WriteIf {
            if_match: condition(&i.if_match),
            if_none_match: condition(&i.if_none_match),
        };
        let o = storage::upload_complete(&self.app, &ctx, &i.bucket, &i.upload_id, &parts, &cond)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(o.bucket.clone()),
            key: Some(o.key.clone()),
            e_tag: Some(etag(&o.etag)),
            location: Some(format!("/{}/{}", o.bucket, o.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let ctx = ctx_of(&req)?;
        storage::upload_abort(&self.app, &ctx, &req.input.bucket, &req.input.upload_id)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let max = i.max_uploads.unwrap_or(1000).clamp(1, 1000) as i64;
        let after = i
            .key_marker
            .as_deref()
            .map(|k| (k, i.upload_id_marker.as_deref().unwrap_or("")));
        let mut ups = storage::upload_list(
            &self.app,
            &ctx,
            &i.bucket,
            i.prefix.as_deref().unwrap_or(""),
            after,
            max + 1,
        )
        .await
        .map_err(to_s3)?;
        let truncated = ups.len() as i64 > max;
        ups.truncate(max as usize);
        let last = ups.last().map(|u| (u.key.clone(), u.id.clone()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: last.as_ref().filter(|_| truncated).map(|l| l.0.clone()),
            next_upload_id_marker: last.as_ref().filter(|_| truncated).map(|l| l.1.clone()),
            uploads: Some(
                ups.into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.id),
                        initiated: Some(ts(u.created_at)),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let ctx = ctx_of(&req)?;
        let i = req.input;
        let max = i.max_parts.unwrap_or(1000).clamp(1, 1000) as i64;
        let after = i64::from(i.part_number_marker.unwrap_or(0).max(0));
        let (u, mut parts) =
            storage::part_list(&self.app, &ctx, &i.bucket, &i.upload_id, after, max + 1)
                .await
                .map_err(to_s3)?;
        let truncated = parts.len() as i64 > max;
        parts.truncate(max as usize);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(u.key),
            upload_id: Some(u.id),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: parts
                .last()
                .filter(|_| truncated)
                .map(|p| p.part_number as i32),
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| Part {
                        part_number: Some(p.part_number as i32),
                        e_tag: Some(etag(&p.etag)),
                        size: Some(p.size),
                        last_modified: Some(ts(p.modified_at)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

/// A stream `s3s` can hold (it wants `Sync`): polled only through `&mut`, never shared.
struct SyncStream(std::sync::Mutex<futures::stream::BoxStream<'static, std::io::Result<Bytes>>>);

impl futures::Stream for SyncStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(s) => s.as_mut().poll_next(cx),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}
