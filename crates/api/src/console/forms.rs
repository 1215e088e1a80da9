//! Form bodies and their errors. Every console form is a struct of strings with defaults, so a
//! body that is a form always parses and validation stays with the use case; what the use case
//! refuses comes back here as reasons by field, translated, for the template to show next to
//! each field and in the error summary.

use super::visitor;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maocloud_app::i18n::{self, Lang};
use maocloud_app::Error;
use minijinja::{context, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;

/// An `application/x-www-form-urlencoded` body.
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let lang = req
            .headers()
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(visitor::negotiate)
            .unwrap_or(Lang::Fr);
        let refuse =
            |status: StatusCode| (status, i18n::t(lang, "console.error.bad_form")).into_response();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| refuse(e.status()))?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|_| refuse(StatusCode::BAD_REQUEST))
    }
}

/// A query string parsed leniently: anything unexpected falls back to the defaults.
pub fn query<T: DeserializeOwned + Default>(q: Option<&str>) -> T {
    serde_urlencoded::from_str(q.unwrap_or("")).unwrap_or_default()
}

/// Reasons by field, translated, in the order the use case gave them.
#[derive(Debug, Default, Serialize)]
pub struct FieldErrors {
    list: Vec<FieldReason>,
}

#[derive(Debug, Serialize)]
struct FieldReason {
    field: String,
    reason: String,
}

impl FieldErrors {
    /// The field errors in `e`, if it is about fields (invalid input, or a conflict on a field).
    pub fn of(lang: Lang, e: &Error) -> Option<FieldErrors> {
        let pairs: Vec<(&str, &str)> = match e {
            Error::Invalid(fields) => fields
                .iter()
                .map(|f| (f.field.as_str(), f.reason.as_str()))
                .collect(),
            Error::Conflict {
                field: Some(f),
                reason,
            } => vec![(f.as_str(), reason.as_str())],
            _ => return None,
        };
        let mut list: Vec<FieldReason> = Vec::new();
        for (field, reason) in pairs {
            // One reason per field: the first is the one to fix first.
            if !list.iter().any(|r| r.field == field) {
                list.push(FieldReason {
                    field: field.to_owned(),
                    reason: i18n::reason(lang, reason),
                });
            }
        }
        Some(FieldErrors { list })
    }

    pub fn one(lang: Lang, field: &str, english_reason: &str) -> FieldErrors {
        FieldErrors {
            list: vec![FieldReason {
                field: field.into(),
                reason: i18n::reason(lang, english_reason),
            }],
        }
    }

    /// `errors` (field → reason) and `error_list` for the templates.
    pub fn context(&self) -> Value {
        let map: BTreeMap<&str, &str> = self
            .list
            .iter()
            .map(|r| (r.field.as_str(), r.reason.as_str()))
            .collect();
        context! { errors => map, error_list => &self.list }
    }
}

/// Empty or blank → `None`.
pub fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}
