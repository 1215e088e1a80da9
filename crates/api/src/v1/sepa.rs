//! SEPA direct debit over HTTP: the subscriber's mandates, and for billing operators the
//! pain.008 batches and the import of the bank's rejects (pain.002).

use super::{attachment, path_id, ts, whose, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, BillingAuth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::sepa::{self, SepaBatch, SepaMandate};
use maocloud_app::Error;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mandate_list, mandate_create))
        .routes(routes!(mandate_revoke))
        .routes(routes!(batch_list, batch_create))
        .routes(routes!(batch_xml))
        .routes(routes!(returns_import))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MandateView {
    pub id: String,
    /// The unique mandate reference (UMR).
    pub reference: String,
    /// The IBAN, masked but for its first and last four characters.
    pub iban: String,
    pub bic: Option<String>,
    pub holder: String,
    pub signed_on: String,
    pub accepted_at: String,
    pub acceptance: String,
    /// `active` or `revoked`.
    pub status: String,
    /// The provider's SEPA creditor identifier.
    pub creditor_id: String,
}

fn mandate_view(st: &AppState, m: SepaMandate) -> MandateView {
    MandateView {
        id: m.id,
        reference: m.reference,
        iban: maocloud_billing::sepa::iban_masked(&m.iban),
        bic: m.bic,
        holder: m.holder,
        signed_on: m.signed_on,
        accepted_at: ts(m.accepted_at),
        acceptance: m.acceptance,
        status: m.status,
        creditor_id: st.app.settings().seller.sepa_creditor_id.clone(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MandateQuery {
    /// Operators: whose mandates.
    pub subscriber_id: Option<String>,
}

/// The caller's SEPA mandates (operators: a subscriber's).
#[utoipa::path(get, path = "/api/v1/mandates", tag = "billing", security(("bearer" = [])), params(MandateQuery),
    responses((status = 200, body = Vec<MandateView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn mandate_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<MandateQuery>,
) -> ApiResult<axum::Json<Vec<MandateView>>> {
    let who = whose(&ctx, &q.subscriber_id)?;
    Ok(axum::Json(
        sepa::mandate_list(&st.app, &ctx, who)
            .await?
            .into_iter()
            .map(|m| mandate_view(&st, m))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MandateRequest {
    pub iban: String,
    pub bic: Option<String>,
    /// The account holder's name.
    pub holder: String,
    /// Explicit acceptance of the mandate's text (recorded with time and address).
    pub accept: bool,
}

/// Sign a SEPA Core direct debit mandate online (replaces any active one).
#[utoipa::path(post, path = "/api/v1/mandates", tag = "billing", security(("bearer" = [])), request_body = MandateRequest,
    responses((status = 201, body = MandateView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn mandate_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<MandateRequest>,
) -> ApiResult<(StatusCode, axum::Json<MandateView>)> {
    let m = sepa::mandate_create(
        &st.app,
        &ctx,
        &r.iban,
        r.bic.as_deref(),
        &r.holder,
        r.accept,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(mandate_view(&st, m))))
}

/// Revoke one of the caller's mandates.
#[utoipa::path(post, path = "/api/v1/mandates/{id}/revoke", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Mandate id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn mandate_revoke(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ctx.require_subscriber()?;
    let _: uuid::Uuid = path_id(&id)?;
    sepa::mandate_revoke(&st.app, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub id: String,
    pub message_id: String,
    pub created_at: String,
    pub transactions: i64,
    pub total_cents: i64,
}

fn batch_view(b: &SepaBatch) -> BatchView {
    BatchView {
        id: b.id.clone(),
        message_id: b.message_id.clone(),
        created_at: ts(b.created_at),
        transactions: b.transactions,
        total_cents: b.total.0,
    }
}

/// Exported direct-debit batches, newest first (billing role).
#[utoipa::path(get, path = "/api/v1/sepa/batches", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Vec<BatchView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn batch_list(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
) -> ApiResult<axum::Json<Vec<BatchView>>> {
    Ok(axum::Json(
        sepa::batch_list(&st.app, &ctx)
            .await?
            .iter()
            .map(batch_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Collect what is due up to this date (`YYYY-MM-DD`); default today.
    pub through: Option<String>,
}

/// Export the collections due as a pain.008 batch, recording them as payments (billing role).
/// 204 when nothing is due.
#[utoipa::path(post, path = "/api/v1/sepa/batches", tag = "billing", security(("bearer" = [])), request_body = BatchRequest,
    responses((status = 201, body = BatchView), (status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn batch_create(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<BatchRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let through = match &r.through {
        Some(d) => d
            .parse()
            .map_err(|_| Error::invalid("through", "is not a date (YYYY-MM-DD)"))?,
        None => maocloud_billing::paris_date(st.app.now()),
    };
    Ok(match sepa::batch_export(&st.app, &ctx, through).await? {
        Some(b) => (StatusCode::CREATED, axum::Json(batch_view(&b))).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The batch's pain.008.001.02 XML, to send to the bank.
#[utoipa::path(get, path = "/api/v1/sepa/batches/{id}/xml", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, description = "pain.008.001.02", content_type = "application/xml"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn batch_xml(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let _: uuid::Uuid = path_id(&id)?;
    let b = sepa::batch_get(&st.app, &ctx, &id).await?;
    Ok(attachment(
        "application/xml",
        format!("{}.xml", b.message_id),
        b.xml.into_bytes(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnsRequest {
    /// The bank's pain.002 payment status report.
    pub xml: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnsView {
    /// End-to-end ids (invoice numbers) whose debit was rejected: their invoices are open again.
    pub rejected: Vec<String>,
    /// End-to-end ids the platform does not know.
    pub unknown: Vec<String>,
}

/// Import the bank's rejects (pain.002): each reverses its payment and reopens the invoice.
#[utoipa::path(post, path = "/api/v1/sepa/returns", tag = "billing", security(("bearer" = [])), request_body = ReturnsRequest,
    responses((status = 200, body = ReturnsView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn returns_import(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Json(r): Json<ReturnsRequest>,
) -> ApiResult<axum::Json<ReturnsView>> {
    let rep = sepa::returns_import(&st.app, &ctx, &r.xml).await?;
    Ok(axum::Json(ReturnsView {
        rejected: rep.rejected,
        unknown: rep.unknown,
    }))
}
