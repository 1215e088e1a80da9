//! The subscriber's inbox of messages and notices from the operator.

use super::{path_id, ts, PageQuery, PageView, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::Auth;
use crate::AppState;
use axum::extract::{Path, State};
use maocloud_app::{model::Message, notify};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(message_list))
        .routes(routes!(message_get))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub subject: String,
    pub body: String,
    pub created_at: String,
    pub read_at: Option<String>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView {
            id: m.id.to_string(),
            subject: m.subject,
            body: m.body,
            created_at: ts(m.created_at),
            read_at: m.read_at.map(ts),
        }
    }
}

/// The caller's inbox, newest first.
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = PageView<MessageView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn message_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<PageView<MessageView>>> {
    let page = notify::inbox(&st.app, &ctx, &q.request()?).await?;
    Ok(axum::Json(PageView::from(page, Into::into)))
}

/// One message; reading it marks it read.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, body = MessageView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn message_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<MessageView>> {
    let m = notify::message_read(&st.app, &ctx, path_id(&id)?).await?;
    Ok(axum::Json(m.into()))
}
