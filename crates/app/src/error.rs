//! The one error type at the boundary of the application: what every use case returns and what
//! the HTTP layer maps to a status and a problem+json body in exactly one place. The message a
//! client sees is kept apart from the internal detail, which is only logged.

use maocloud_datastore as ds;

/// One offending field of a request, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is well-formed but its content is not acceptable.
    #[error("invalid input: {}", .0.iter().map(|f| format!("{} {}", f.field, f.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Signed in, but this role may not do that.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Absent, or not the caller's: indistinguishable on purpose.
    #[error("not found")]
    NotFound,
    /// The state of things refuses it (a taken email, a duplicate).
    #[error("{reason}")]
    Conflict {
        field: Option<String>,
        reason: String,
    },
    /// Too many attempts: slow down.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The database (or another dependency) cannot be reached.
    #[error("service unavailable: the database cannot be reached")]
    Unavailable(#[source] ds::Error),
    /// A bug or an unexpected failure: the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// Object storage refused: the code says which S3 error it is (the S3 endpoint answers with
    /// it), the field which input caused it, for the REST API and the console.
    #[error("{reason}")]
    Storage {
        code: crate::storage::Code,
        field: Option<&'static str>,
        reason: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Error {
        Error::Invalid(vec![FieldError {
            field: field.into(),
            reason: reason.into(),
        }])
    }
    pub fn storage(
        code: crate::storage::Code,
        field: Option<&'static str>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Storage {
            code,
            field,
            reason: reason.into(),
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<ds::Error> for Error {
    fn from(e: ds::Error) -> Self {
        match e {
            ds::Error::NotFound => Error::NotFound,
            ds::Error::Unavailable(_) => Error::Unavailable(e),
            ds::Error::Conflict(what) => Error::Conflict {
                field: None,
                reason: format!("already exists ({what})"),
            },
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Collects field errors while validating a whole request, so a form shows every problem at once.
#[derive(Default)]
pub struct Checker(Vec<FieldError>);

impl Checker {
    /// Runs a validator on a field; keeps its value on success, records its reason otherwise.
    pub fn check<T>(&mut self, field: &str, r: std::result::Result<T, &'static str>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(reason) => {
                self.0.push(FieldError {
                    field: field.into(),
                    reason: reason.into(),
                });
                None
            }
        }
    }
    pub fn fail(&mut self, field: &str, reason: &str) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}
