//! The versioned JSON API, `/api/v1`: one file per resource, each handler a thin translation
//! between HTTP and one use case of `maocloud_app`.

mod accounts;
mod backoffice;
mod billing;
mod compute;
mod contract;
mod messages;
mod privacy;
mod sepa;
mod storage;
pub(crate) mod support;
mod test_clocks;
mod tokens;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::{request::Parts, StatusCode};
use maocloud_app::{Ctx, Error};
use maocloud_types::{Page, PageRequest, SubscriberId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(tokens::routes())
        .merge(messages::routes())
        .merge(backoffice::routes())
        .merge(billing::routes())
        .merge(test_clocks::routes())
        .merge(sepa::routes())
        .merge(contract::routes())
        .merge(compute::routes())
        .merge(storage::routes())
        .merge(support::routes())
        .merge(privacy::routes())
}

/// Query-string parameters, parsed strictly; errors name the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.inner().to_string();
                let field = if path != "." {
                    Some(path)
                } else {
                    msg.split('`').nth(1).map(str::to_owned)
                };
                ApiError::bad_request(StatusCode::BAD_REQUEST, field, msg)
            })
    }
}

/// Cursor pagination parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items (1 to 200, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        if let Some(l) = self.limit {
            if !(1..=200).contains(&l) {
                return Err(
                    maocloud_app::Error::invalid("limit", "must be between 1 and 200").into(),
                );
            }
        }
        if let Some(c) = &self.cursor {
            if uuid::Uuid::parse_str(c).is_err() {
                return Err(maocloud_app::Error::invalid(
                    "cursor",
                    "is not a cursor this API returned",
                )
                .into());
            }
        }
        Ok(PageRequest {
            limit: self.limit.unwrap_or(0),
            after: self.cursor.clone(),
        })
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageView<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageView<T> {
    pub fn from<U>(p: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let p = p.map(f);
        PageView {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// Whose records a list shows: a subscriber always their own; an operator names one.
pub fn whose(ctx: &Ctx, filter: &Option<String>) -> Result<SubscriberId, Error> {
    match (ctx.principal.subscriber(), filter) {
        (Some(me), _) => Ok(me),
        (None, Some(s)) => s
            .parse()
            .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id")),
        (None, None) => Err(Error::invalid("subscriber_id", "is required for operators")),
    }
}

/// A file download: its type and name.
pub fn attachment(
    content_type: &'static str,
    filename: String,
    body: Vec<u8>,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        filename.replace(['"', '\\', '\r', '\n'], "_")
    );
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

pub fn ts(t: jiff::Timestamp) -> String {
    t.to_string()
}

/// Parses a path id, answering 404 for anything that is not one (as for a missing resource).
pub fn path_id<T: std::str::FromStr>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| maocloud_app::Error::NotFound.into())
}
