//! Platform endpoints outside the versioned API: `/healthz` and `/metrics`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, ClientIp};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, request::Parts, StatusCode};
use axum::response::IntoResponse;
use maocloud_app::{auth, Error};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database cannot be reached.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Liveness and readiness: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::error::Problem)))]
async fn healthz(State(st): State<AppState>) -> ApiResult<axum::Json<Health>> {
    st.app.health().await?;
    Ok(axum::Json(Health {
        status: "ok",
        database: st.app.database_kind(),
    }))
}

/// Prometheus metrics (text format). Needs an operator token, or the `--metrics-token`.
#[utoipa::path(get, path = "/metrics", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
async fn metrics(
    State(st): State<AppState>,
    _ip: ClientIp,
    parts: Parts,
) -> Result<impl IntoResponse, ApiError> {
    let Some(token) = bearer(&parts) else {
        return Err(Error::Unauthenticated(
            "send Authorization: Bearer <operator or metrics token>",
        )
        .into());
    };
    let scrape_token_ok = st
        .metrics_token
        .as_deref()
        .is_some_and(|t| constant_eq(t, token));
    if !scrape_token_ok {
        let principal = auth::principal_from_token(&st.app, token).await?;
        if principal.operator_role().is_none() {
            return Err(Error::Forbidden("metrics are for operators").into());
        }
    }
    let jobs = maocloud_app::job_counts(&st.app).await.unwrap_or_default();
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(&jobs),
    ))
}

fn constant_eq(a: &str, b: &str) -> bool {
    maocloud_types::constant_time_eq(a.as_bytes(), b.as_bytes())
}
