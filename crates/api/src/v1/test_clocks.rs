//! Test clocks over HTTP (billing operators): create a clock, sandbox subscribers on it, and
//! advance it to watch their contracts' scheduled steps fire.

use super::accounts::SignupRequest;
use super::{ts, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{BillingAuth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::test_clocks;
use maocloud_app::Error;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(clock_list, clock_create))
        .routes(routes!(clock_get))
        .routes(routes!(clock_advance))
        .routes(routes!(clock_subscriber))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestClockView {
    pub id: String,
    pub name: String,
    /// The clock's current time.
    pub now: String,
    pub created_by: String,
    pub created_at: String,
}

fn view(c: maocloud_app::test_clocks::TestClockRecord) -> TestClockView {
    TestClockView {
        id: c.id,
        name: c.name,
        now: ts(c.now),
        created_by: c.created_by,
        created_at: ts(c.created_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestClockRequest {
    pub name: String,
    /// RFC 3339 instant the clock starts at; default now.
    pub now: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

fn instant(field: &str, s: &str) -> Result<jiff::Timestamp, Error> {
    s.parse().map_err(|_| {
        Error::invalid(
            field,
            "is not an RFC 3339 instant (e.g. 2027-01-01T09:00:00Z)",
        )
    })
}

/// Test clocks, newest first.
#[utoipa::path(get, path = "/api/v1/test-clocks", tag = "test clocks", security(("bearer" = [])),
    responses((status = 200, body = Vec<TestClockView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn clock_list(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Query(_q): Query<NoParams>,
) -> ApiResult<axum::Json<Vec<TestClockView>>> {
    Ok(axum::Json(
        test_clocks::list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

/// Create a test clock (billing operators).
#[utoipa::path(post, path = "/api/v1/test-clocks", tag = "test clocks", security(("bearer" = [])), request_body = TestClockRequest,
    responses((status = 201, body = TestClockView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn clock_create(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<TestClockRequest>,
) -> ApiResult<(StatusCode, axum::Json<TestClockView>)> {
    let start = r.now.as_deref().map(|s| instant("now", s)).transpose()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(view(
            test_clocks::create(&st.app, &ctx, &r.name, start).await?,
        )),
    ))
}

/// One test clock.
#[utoipa::path(get, path = "/api/v1/test-clocks/{id}", tag = "test clocks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Test clock id")),
    responses((status = 200, body = TestClockView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn clock_get(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TestClockView>> {
    Ok(axum::Json(view(
        test_clocks::get(&st.app, &ctx, &id).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceRequest {
    /// RFC 3339 instant to move the clock to (later than now, at most three years ahead).
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDone {
    pub date: String,
    pub invoices_issued: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Advanced {
    pub clock: TestClockView,
    /// The monthly runs that fired on the way, in order.
    pub runs: Vec<RunDone>,
}

/// Advance a test clock; the monthly run fires on every 1st it passes.
#[utoipa::path(post, path = "/api/v1/test-clocks/{id}/advance", tag = "test clocks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Test clock id")), request_body = AdvanceRequest,
    responses((status = 200, body = Advanced), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn clock_advance(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
    Json(r): Json<AdvanceRequest>,
) -> ApiResult<axum::Json<Advanced>> {
    let to = instant("to", &r.to)?;
    let (clock, runs) = test_clocks::advance(&st.app, &ctx, &id, to).await?;
    Ok(axum::Json(Advanced {
        clock: view(clock),
        runs: runs
            .into_iter()
            .map(|(d, r)| RunDone {
                date: d.to_string(),
                invoices_issued: r.invoices_issued,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxSubscriber {
    pub subscriber_id: String,
    pub test_clock_id: String,
}

/// Create a sandbox subscriber living on this clock; they sign in with the password given.
#[utoipa::path(post, path = "/api/v1/test-clocks/{id}/subscribers", tag = "test clocks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Test clock id")), request_body = SignupRequest,
    responses((status = 201, body = SandboxSubscriber), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn clock_subscriber(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
    Json(r): Json<SignupRequest>,
) -> ApiResult<(StatusCode, axum::Json<SandboxSubscriber>)> {
    let sid = test_clocks::sandbox_subscriber(&st.app, &ctx, &id, &r.into()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SandboxSubscriber {
            subscriber_id: sid.to_string(),
            test_clock_id: id,
        }),
    ))
}
