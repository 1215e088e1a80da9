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
    /// What a refused form shows: the errors found in the form itself when there are some,
    /// else those the use case named; a refusal about no field is no form error (`Err`).
    pub fn or_of(self, lang: Lang, e: Error) -> Result<FieldErrors, Error> {
        if !self.list.is_empty() {
            return Ok(self);
        }
        FieldErrors::of(lang, &e).ok_or(e)
    }

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

    /// A reason the console itself found (already in the visitor's language).
    pub fn push(&mut self, field: &str, text: String) {
        if !self.list.iter().any(|r| r.field == field) {
            self.list.push(FieldReason {
                field: field.into(),
                reason: text,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `(field, reason)` pairs, for forms repeated on a page (one per row) that show their
    /// errors next to themselves rather than in the page's summary.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .map(|r| (r.field.clone(), r.reason.clone()))
            .collect()
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

/// A use case's error with its field names as the console's form calls them (the API's names
/// say `_cents` where the form asks for euros, `includes.x` where the form says `x`).
pub fn rename_fields(e: Error, rename: impl Fn(&str) -> Option<&'static str>) -> Error {
    let fix = |f: String| rename(&f).map(str::to_owned).unwrap_or(f);
    match e {
        Error::Invalid(fields) => Error::Invalid(
            fields
                .into_iter()
                .map(|mut f| {
                    f.field = fix(std::mem::take(&mut f.field));
                    f
                })
                .collect(),
        ),
        Error::Conflict {
            field: Some(f),
            reason,
        } => Error::Conflict {
            field: Some(fix(f)),
            reason,
        },
        e => e,
    }
}

/// Why an amount typed in euros was refused (a `console.form` catalog key).
#[derive(Debug, PartialEq, Eq)]
pub enum EurosError {
    NotAnAmount,
    TooManyDecimals,
}

impl EurosError {
    pub fn key(&self) -> &'static str {
        match self {
            EurosError::NotAnAmount => "console.form.not_an_amount",
            EurosError::TooManyDecimals => "console.form.too_many_decimals",
        }
    }
}

/// An amount typed in euros (`29.99`, `29,99`, `1 234,5`, `30`, `30 €`) as exact cents: no
/// float, at most 2 decimals, no sign (amounts typed in forms are never negative).
pub fn euros_to_cents(s: &str) -> Result<i64, EurosError> {
    let cleaned: String = s
        .trim()
        .trim_end_matches('€')
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let (int, frac) = match cleaned.find(['.', ',']) {
        Some(i) => (&cleaned[..i], &cleaned[i + 1..]),
        None => (cleaned.as_str(), ""),
    };
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || int.len() > 12 {
        return Err(EurosError::NotAnAmount);
    }
    if frac.len() > 2 {
        return Err(EurosError::TooManyDecimals);
    }
    let units: i64 = int.parse().map_err(|_| EurosError::NotAnAmount)?;
    let cents: i64 = format!("{frac:0<2}")
        .parse()
        .map_err(|_| EurosError::NotAnAmount)?;
    units
        .checked_mul(100)
        .and_then(|u| u.checked_add(cents))
        .ok_or(EurosError::NotAnAmount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euros_parse_to_exact_cents() {
        assert_eq!(euros_to_cents("29.99"), Ok(2999));
        assert_eq!(euros_to_cents("29,99"), Ok(2999));
        assert_eq!(euros_to_cents(" 30 "), Ok(3000));
        assert_eq!(euros_to_cents("0.1"), Ok(10));
        assert_eq!(euros_to_cents("1 234,56 €"), Ok(123_456));
        assert_eq!(euros_to_cents("0.07"), Ok(7));
        assert_eq!(euros_to_cents("29.999"), Err(EurosError::TooManyDecimals));
        for bad in [
            "",
            "-1",
            "1e3",
            "abc",
            ".5",
            "1.2.3",
            "1,000.00",
            "9999999999999",
        ] {
            assert_eq!(euros_to_cents(bad), Err(EurosError::NotAnAmount), "{bad}");
        }
    }
}
