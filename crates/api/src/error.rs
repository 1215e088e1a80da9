//! The one place where errors become HTTP: every `maocloud_app::Error` and every request that
//! cannot be parsed turns into a status and an `application/problem+json` body (RFC 9457) that
//! names the offending field. Internal detail is logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maocloud_app::{Error, FieldError};
use serde::Serialize;

/// A problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The first offending field, when the problem is about the request's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field with its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub reason: String,
}

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error, pub Option<Response>);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e, None)
    }
}

impl ApiError {
    /// A 400 about the request's syntax (malformed JSON, wrong content type), naming the field.
    pub fn bad_request(status: StatusCode, field: Option<String>, detail: String) -> ApiError {
        let errors = field
            .iter()
            .map(|f| ProblemField {
                field: f.clone(),
                reason: detail.clone(),
            })
            .collect();
        let p = Problem {
            kind: kind_uri("bad-request"),
            title: title(status).into(),
            status: status.as_u16(),
            detail,
            field,
            errors,
        };
        ApiError(
            Error::Internal(String::new()),
            Some(problem_response(status, &p)),
        )
    }
}

fn kind_uri(slug: &str) -> String {
    format!("https://maocloud.dev/problems/{slug}")
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

pub fn problem_response(status: StatusCode, p: &Problem) -> Response {
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// Status, problem kind and fields for an application error.
pub fn classify(e: &Error) -> (StatusCode, &'static str, Vec<FieldError>) {
    match e {
        Error::Invalid(fields) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            fields.clone(),
        ),
        Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated", vec![]),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", vec![]),
        Error::NotFound => (StatusCode::NOT_FOUND, "not-found", vec![]),
        Error::Conflict { field, reason } => (
            StatusCode::CONFLICT,
            "conflict",
            field
                .iter()
                .map(|f| FieldError {
                    field: f.clone(),
                    reason: reason.clone(),
                })
                .collect(),
        ),
        Error::TooManyRequests { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", vec![])
        }
        Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", vec![]),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", vec![]),
        Error::Storage {
            code,
            field,
            reason,
        } => {
            use maocloud_app::storage::Code;
            let fields = field
                .iter()
                .map(|f| FieldError {
                    field: f.to_string(),
                    reason: reason.clone(),
                })
                .collect();
            let (status, kind) = match code {
                Code::NoSuchBucket | Code::NoSuchKey | Code::NoSuchUpload => {
                    (StatusCode::NOT_FOUND, "not-found")
                }
                Code::InvalidBucketName
                | Code::InvalidArgument
                | Code::InvalidDigest
                | Code::BadDigest
                | Code::InvalidPart
                | Code::InvalidPartOrder
                | Code::EntityTooSmall
                | Code::InvalidRange => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-input"),
                Code::EntityTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
                Code::PreconditionFailed => {
                    (StatusCode::PRECONDITION_FAILED, "precondition-failed")
                }
                Code::NotModified => (StatusCode::NOT_MODIFIED, "not-modified"),
                Code::AccessDenied => (StatusCode::FORBIDDEN, "forbidden"),
                Code::BucketAlreadyExists
                | Code::BucketAlreadyOwnedByYou
                | Code::BucketNotEmpty
                | Code::QuotaExceeded
                | Code::Suspended
                | Code::ReadOnly => (StatusCode::CONFLICT, "conflict"),
                Code::NotEnabled => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            };
            (status, kind, fields)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(r) = self.1 {
            return r;
        }
        let e = self.0;
        let (status, kind, fields) = classify(&e);
        let detail = match &e {
            Error::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                "an internal error occurred; it has been logged".to_string()
            }
            Error::Unavailable(src) => {
                tracing::error!(error = %src, "database unavailable");
                e.to_string()
            }
            _ => e.to_string(),
        };
        let p = Problem {
            kind: kind_uri(kind),
            title: title(status).into(),
            status: status.as_u16(),
            detail,
            field: fields.first().map(|f| f.field.clone()),
            errors: fields
                .into_iter()
                .map(|f| ProblemField {
                    field: f.field,
                    reason: f.reason,
                })
                .collect(),
        };
        let mut r = problem_response(status, &p);
        match e {
            Error::Unauthenticated(_) => {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::TooManyRequests { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
