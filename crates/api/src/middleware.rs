//! Cross-cutting request handling: metrics and logging of every request, `Idempotency-Key`
//! replay for POSTs, security headers, and the problem+json 404 for unknown paths.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maocloud_app::idempotency::{self, StoredResponse};
use maocloud_app::Error;
use sha2::{Digest, Sha256};
use std::time::Instant;

pub async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") || req.uri().path() == "/metrics" {
        ApiError::from(Error::NotFound).into_response()
    } else {
        crate::console::not_found_page(req).await
    }
}

/// Counts and times every request by route template, and logs failures.
pub async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    st.metrics
        .observe(method.as_str(), &route, resp.status().as_u16(), elapsed);
    if resp.status().is_server_error() {
        tracing::warn!(%method, %route, status = resp.status().as_u16(), ms = elapsed.as_millis() as u64, "request failed");
    } else {
        tracing::debug!(%method, %route, status = resp.status().as_u16(), us = elapsed.as_micros() as u64, "request");
    }
    resp
}

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

/// Routes whose responses carry a secret shown once: a replay cannot show it again.
fn carries_secret(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/tokens" | "/api/v1/operators" | "/api/v1/me/totp"
    )
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Honours `Idempotency-Key` on API POSTs: the first response to a key (per credential) is
/// stored; a retry with the same body gets it again, a different body under the same key is
/// refused. Responses that carry a one-time secret are not stored: their retry gets a 409.
pub async fn idempotency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(key), true) = (
        key,
        req.method() == Method::POST && req.uri().path().starts_with("/api/"),
    ) else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 255 {
        return ApiError::from(Error::invalid(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ))
        .into_response();
    }
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| hex(Sha256::digest(v.as_bytes())))
        .unwrap_or_else(|| "anonymous".into());
    let scope = format!("{credential}:{}", req.uri().path());
    let limit = if crate::v1::support::carries_files(req.uri().path()) {
        crate::v1::support::FILES_BODY_LIMIT
    } else {
        crate::BODY_LIMIT
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::bad_request(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "the body is too large".into(),
            )
            .into_response()
        }
    };
    let request_hash = hex(Sha256::digest(&bytes));
    match idempotency::fetch(&st.app, &scope, &key).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Some(stored)) => {
            if stored.request_hash != request_hash {
                return ApiError::from(Error::Conflict {
                    field: Some("Idempotency-Key".into()),
                    reason: "this key was already used with a different request".into(),
                })
                .into_response();
            }
            if stored.body.is_empty() {
                return ApiError::from(Error::Conflict {
                    field: Some("Idempotency-Key".into()),
                    reason: "this request was already processed; the secret it returned is shown only once".into(),
                })
                .into_response();
            }
            let mut r = (
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
                stored.body,
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return r;
        }
        Ok(None) => {}
    }
    let path = parts.uri.path().to_owned();
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !resp.status().is_success() {
        return resp;
    }
    let (rparts, rbody) = resp.into_parts();
    let rbytes = axum::body::to_bytes(rbody, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let body = if carries_secret(&path) {
        String::new()
    } else {
        String::from_utf8_lossy(&rbytes).into_owned()
    };
    let stored = StoredResponse {
        request_hash,
        status: rparts.status.as_u16(),
        body,
    };
    if let Err(e) = idempotency::store(&st.app, &scope, &key, &stored).await {
        tracing::warn!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(rparts, Body::from(rbytes))
}
