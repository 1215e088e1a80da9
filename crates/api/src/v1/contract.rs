//! The contract lifecycle over HTTP: terminations, suspensions, proof
//! requests and their documents, terms versions and notices, and
//! incidents with their compensation. Each handler calls one use case.

use super::{path_id, ts, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{
    AbuseAuth, AdminAuth, Auth, BillingAuth, DeskAuth, Json, MaybeAuth, SuspensionAuth,
};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use maocloud_app::incidents::{Compensation, Incident};
use maocloud_app::proofs::ProofRequest;
use maocloud_app::suspension::Suspension;
use maocloud_app::{incidents, proofs, suspension, termination, terms, Error};
use maocloud_types::SubscriberId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            termination_get,
            termination_create,
            termination_withdraw
        ))
        .routes(routes!(termination_list))
        .routes(routes!(suspension_list, suspension_create))
        .routes(routes!(suspension_get))
        .routes(routes!(suspension_confirm))
        .routes(routes!(suspension_lift))
        .routes(routes!(proof_list, proof_create))
        .routes(routes!(proof_get))
        .routes(routes!(proof_decide))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(proof_document_get, proof_document_put))
                .layer(DefaultBodyLimit::max(proofs::MAX_SIZE + 64 * 1024)),
        )
        .routes(routes!(terms_list, terms_publish))
        .routes(routes!(terms_notices))
        .routes(routes!(incident_list, incident_create))
        .routes(routes!(incident_get))
        .routes(routes!(incident_cap))
        .routes(routes!(incident_compensate))
}

fn uuid_path(s: &str) -> Result<String, crate::error::ApiError> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.to_string())
        .map_err(|_| Error::NotFound.into())
}

fn subscriber_param(s: &Option<String>) -> Result<Option<SubscriberId>, Error> {
    s.as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))
        })
        .transpose()
}

fn date_field(field: &str, s: &Option<String>) -> Result<Option<jiff::civil::Date>, Error> {
    s.as_deref()
        .map(|d| {
            d.parse()
                .map_err(|_| Error::invalid(field, "must be a date YYYY-MM-DD"))
        })
        .transpose()
}

fn ts_field(field: &str, s: &str) -> Result<jiff::Timestamp, Error> {
    s.parse()
        .map_err(|_| Error::invalid(field, "must be an RFC 3339 time, e.g. 2026-11-26T09:00:00Z"))
}

// ---- terminations ----

#[derive(Debug, Serialize, ToSchema)]
pub struct TerminationView {
    pub id: String,
    pub subscription_id: String,
    pub subscriber_id: String,
    /// `online` or `letter` (a registered letter an operator recorded).
    pub channel: String,
    pub received_on: String,
    /// `month_end` or `date`.
    pub end_choice: String,
    /// The last day of the contract.
    pub end_date: String,
    /// The R-7.3b legitimate reason claimed, if any.
    pub reason: Option<String>,
    /// The proof request that carries the reason's proof.
    pub proof_request_id: Option<String>,
    /// Its status: open, submitted, approved, rejected.
    pub reason_status: Option<String>,
    /// `scheduled`, `withdrawn` or `ended`.
    pub status: String,
    pub commitment_end: Option<String>,
    /// Commitment dues (R-7.2c): `none`, `due`, `pending_reason`, `waived_reason`,
    /// `waived_terms_change`.
    pub dues: String,
    /// The remaining monthly fees due (or due if the reason is rejected), excluding VAT.
    pub dues_excl_cents: i64,
    /// The terms version whose change window makes the termination penalty-free.
    pub penalty_free_terms: Option<String>,
    pub final_invoice_id: Option<String>,
    /// When data past the grace period is erased.
    pub erase_on: Option<String>,
    pub created_at: String,
}

fn termination_view(v: termination::TerminationView) -> TerminationView {
    let t = v.termination;
    TerminationView {
        id: t.id,
        subscription_id: t.subscription_id.to_string(),
        subscriber_id: t.subscriber_id.to_string(),
        channel: t.channel,
        received_on: t.received_on,
        end_choice: t.end_choice,
        end_date: t.end_date,
        reason: t.reason,
        proof_request_id: t.proof_request_id,
        reason_status: v.reason_status,
        status: t.status,
        commitment_end: v.commitment_end,
        dues: v.dues.code().into(),
        dues_excl_cents: v.dues.amount().0,
        penalty_free_terms: t.penalty_free_terms,
        final_invoice_id: t.final_invoice_id.map(|i| i.to_string()),
        erase_on: t.erase_on,
        created_at: ts(t.created_at),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminationRequest {
    /// `month_end`: the last day of the month of receipt; `date`: the given date, no later than
    /// 10 days after receipt (R-7.2b).
    pub end: String,
    pub date: Option<String>,
    /// A legitimate reason of R-7.3b (withdrawal, operator_non_performance,
    /// authorisation_withdrawn, network_change, illness_or_disability, over_indebtedness,
    /// dismissal, imprisonment, death, force_majeure); its proof is then requested.
    pub reason: Option<String>,
    /// Operators recording a registered letter: the date it was received.
    pub received_on: Option<String>,
}

/// The termination of a subscription (404 when none is scheduled or done).
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/termination", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, body = TerminationView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn termination_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TerminationView>> {
    Ok(axum::Json(termination_view(
        termination::get(&st.app, &ctx, path_id(&id)?).await?,
    )))
}

/// Terminate a subscription: the subscriber online, or an operator recording a
/// registered letter with its date of receipt. No fee but the commitment's remaining monthly
/// fees (R-7.2c, R-7.3a), waived by an accepted legitimate reason or a terms-change window.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/termination", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscription id")), request_body = TerminationRequest,
    responses((status = 201, body = TerminationView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn termination_create(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<TerminationRequest>,
) -> ApiResult<(StatusCode, axum::Json<TerminationView>)> {
    let sub = path_id(&id)?;
    let input = termination::TerminationInput {
        end: r.end,
        date: date_field("date", &r.date)?,
        reason: r.reason,
        received_on: date_field("received_on", &r.received_on)?,
    };
    let v = termination::request(&st.app, &ctx, sub, input).await?;
    Ok((StatusCode::CREATED, axum::Json(termination_view(v))))
}

/// Withdraw a scheduled termination (up to its end date).
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}/termination", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn termination_withdraw(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    termination::withdraw(&st.app, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubscriberFilter {
    /// Operators: only this subscriber's.
    pub subscriber_id: Option<String>,
}

/// Terminations: the caller's, or for operators every one (or one subscriber's).
#[utoipa::path(get, path = "/api/v1/terminations", tag = "contract", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = Vec<TerminationView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn termination_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<Vec<TerminationView>>> {
    let who = subscriber_param(&q.subscriber_id)?;
    Ok(axum::Json(
        termination::list(&st.app, &ctx, who)
            .await?
            .into_iter()
            .map(termination_view)
            .collect(),
    ))
}

// ---- suspensions ----

#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensionView {
    pub id: String,
    pub subscriber_id: String,
    /// `non_payment`, `incomplete_file`, `breach`, `network` or `authority`.
    pub cause: String,
    pub reason: String,
    /// `pending` (waiting for an operator's confirmation), `active` or `lifted`.
    pub status: String,
    /// What lifts it.
    pub lifted_by_what: String,
    pub created_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub lifted_at: Option<String>,
    pub lift_reason: Option<String>,
}

fn suspension_view(s: Suspension) -> SuspensionView {
    SuspensionView {
        lifted_by_what: suspension::what_lifts(&s.cause).into(),
        id: s.id,
        subscriber_id: s.subscriber_id.to_string(),
        cause: s.cause,
        reason: s.reason,
        status: s.status,
        created_by: s.created_by,
        created_at: ts(s.created_at),
        started_at: s.started_at.map(ts),
        lifted_at: s.lifted_at.map(ts),
        lift_reason: s.lift_reason,
    }
}

/// Suspensions: a subscriber's own (every one, with why and what lifts it); operators: the
/// open ones, or one subscriber's history.
#[utoipa::path(get, path = "/api/v1/suspensions", tag = "contract", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = Vec<SuspensionView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn suspension_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<Vec<SuspensionView>>> {
    let who = subscriber_param(&q.subscriber_id)?;
    Ok(axum::Json(
        suspension::list(&st.app, &ctx, who)
            .await?
            .into_iter()
            .map(suspension_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionRequest {
    pub subscriber_id: String,
    /// R-7.1a: `breach` (serious or repeated breach of Art. 4 or 5), `network` (network
    /// disruption) or `authority` (a judicial or administrative request).
    pub cause: String,
    pub reason: String,
}

/// Suspend a subscriber at once for a recorded R-7.1a reason (abuse or admin operators).
#[utoipa::path(post, path = "/api/v1/suspensions", tag = "contract", security(("bearer" = [])), request_body = SuspensionRequest,
    responses((status = 201, body = SuspensionView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn suspension_create(
    State(st): State<AppState>,
    AbuseAuth(ctx): AbuseAuth,
    Json(r): Json<SuspensionRequest>,
) -> ApiResult<(StatusCode, axum::Json<SuspensionView>)> {
    let who = subscriber_param(&Some(r.subscriber_id))?.expect("given");
    let s = suspension::suspend(&st.app, &ctx, who, &r.cause, &r.reason).await?;
    Ok((StatusCode::CREATED, axum::Json(suspension_view(s))))
}

/// One suspension.
#[utoipa::path(get, path = "/api/v1/suspensions/{id}", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Suspension id")),
    responses((status = 200, body = SuspensionView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn suspension_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SuspensionView>> {
    Ok(axum::Json(suspension_view(
        suspension::get(&st.app, &ctx, &uuid_path(&id)?).await?,
    )))
}

/// Confirm a pending non-payment suspension (operator-confirmed dunning mode).
#[utoipa::path(post, path = "/api/v1/suspensions/{id}/confirm", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Suspension id")),
    responses((status = 200, body = SuspensionView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn suspension_confirm(
    State(st): State<AppState>,
    SuspensionAuth(ctx): SuspensionAuth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SuspensionView>> {
    Ok(axum::Json(suspension_view(
        suspension::confirm(&st.app, &ctx, &uuid_path(&id)?).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftRequest {
    pub reason: String,
}

/// Lift a suspension, with a reason.
#[utoipa::path(post, path = "/api/v1/suspensions/{id}/lift", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Suspension id")), request_body = LiftRequest,
    responses((status = 200, body = SuspensionView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn suspension_lift(
    State(st): State<AppState>,
    SuspensionAuth(ctx): SuspensionAuth,
    Path(id): Path<String>,
    Json(r): Json<LiftRequest>,
) -> ApiResult<axum::Json<SuspensionView>> {
    Ok(axum::Json(suspension_view(
        suspension::lift(&st.app, &ctx, &uuid_path(&id)?, &r.reason).await?,
    )))
}

// ---- proof requests ----

#[derive(Debug, Serialize, ToSchema)]
pub struct ProofRequestView {
    pub id: String,
    pub subscriber_id: String,
    /// `identity`, `address` or `termination_reason`.
    pub kind: String,
    pub note: String,
    /// `open`, `submitted`, `approved` or `rejected`.
    pub status: String,
    pub requested_at: String,
    pub requested_on: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    pub submitted_at: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
}

fn proof_view(p: ProofRequest) -> ProofRequestView {
    ProofRequestView {
        id: p.id,
        subscriber_id: p.subscriber_id.to_string(),
        kind: p.kind,
        note: p.note,
        status: p.status,
        requested_at: ts(p.requested_at),
        requested_on: p.requested_on,
        file_name: p.file_name,
        content_type: p.content_type,
        size: p.size,
        submitted_at: p.submitted_at.map(ts),
        decided_at: p.decided_at.map(ts),
        decision_reason: p.decision_reason,
    }
}

/// Proof requests: the caller's; operators: those waiting, or one subscriber's.
#[utoipa::path(get, path = "/api/v1/proof-requests", tag = "contract", security(("bearer" = [])), params(SubscriberFilter),
    responses((status = 200, body = Vec<ProofRequestView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn proof_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberFilter>,
) -> ApiResult<axum::Json<Vec<ProofRequestView>>> {
    let who = subscriber_param(&q.subscriber_id)?;
    Ok(axum::Json(
        proofs::list(&st.app, &ctx, who)
            .await?
            .into_iter()
            .map(proof_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequestCreate {
    pub subscriber_id: String,
    /// `identity` or `address`.
    pub kind: String,
    /// What is asked for, in the subscriber's words.
    pub note: String,
}

/// Ask a subscriber for a document. Unanswered after the configured delay, the file is
/// incomplete and the services may be suspended (R-7.1d).
#[utoipa::path(post, path = "/api/v1/proof-requests", tag = "contract", security(("bearer" = [])), request_body = ProofRequestCreate,
    responses((status = 201, body = ProofRequestView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn proof_create(
    State(st): State<AppState>,
    DeskAuth(ctx): DeskAuth,
    Json(r): Json<ProofRequestCreate>,
) -> ApiResult<(StatusCode, axum::Json<ProofRequestView>)> {
    let who = subscriber_param(&Some(r.subscriber_id))?.expect("given");
    let p = proofs::request(&st.app, &ctx, who, &r.kind, &r.note).await?;
    Ok((StatusCode::CREATED, axum::Json(proof_view(p))))
}

/// One proof request.
#[utoipa::path(get, path = "/api/v1/proof-requests/{id}", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Proof request id")),
    responses((status = 200, body = ProofRequestView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn proof_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ProofRequestView>> {
    Ok(axum::Json(proof_view(
        proofs::get(&st.app, &ctx, &uuid_path(&id)?).await?,
    )))
}

/// Upload the document: the raw file as the body, its type as `Content-Type` (PDF, PNG or JPEG,
/// checked against the file), its name in `X-File-Name`; at most 5 MiB. Sealed at rest.
#[utoipa::path(put, path = "/api/v1/proof-requests/{id}/document", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Proof request id"), ("X-File-Name" = Option<String>, Header, description = "The file's name")),
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "The document (application/pdf, image/png or image/jpeg)"),
    responses((status = 200, body = ProofRequestView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn proof_document_put(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ProofRequestView>> {
    let id = uuid_path(&id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let name = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("document")
        .to_string();
    Ok(axum::Json(proof_view(
        proofs::upload(&st.app, &ctx, &id, &name, &content_type, &body).await?,
    )))
}

/// Download the document (the subscriber's own; operators, recorded in the audit log).
#[utoipa::path(get, path = "/api/v1/proof-requests/{id}/document", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Proof request id")),
    responses((status = 200, description = "The document as uploaded"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn proof_document_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let (p, bytes) = proofs::document(&st.app, &ctx, &uuid_path(&id)?).await?;
    let name = p
        .file_name
        .unwrap_or_else(|| "document".into())
        .replace(['"', '\\', '\r', '\n'], "_");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                p.content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofDecision {
    pub approve: bool,
    pub reason: String,
}

/// Approve or reject a submitted document, with a reason.
#[utoipa::path(post, path = "/api/v1/proof-requests/{id}/decision", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Proof request id")), request_body = ProofDecision,
    responses((status = 200, body = ProofRequestView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn proof_decide(
    State(st): State<AppState>,
    DeskAuth(ctx): DeskAuth,
    Path(id): Path<String>,
    Json(r): Json<ProofDecision>,
) -> ApiResult<axum::Json<ProofRequestView>> {
    Ok(axum::Json(proof_view(
        proofs::decide(&st.app, &ctx, &uuid_path(&id)?, r.approve, &r.reason).await?,
    )))
}

// ---- terms ----

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsVersionView {
    pub id: String,
    pub version: String,
    pub title: String,
    /// What changed.
    pub summary: String,
    /// `initial`, `beneficial`, `administrative`, `legal` or `other`.
    pub class: String,
    pub substantial: bool,
    pub closure: bool,
    pub equivalent_migration: bool,
    pub published_at: String,
    pub effective_at: String,
    /// Whether this is the version in force now.
    pub current: bool,
    pub body: String,
}

fn terms_view((v, c): terms::VersionView, current: &str) -> TermsVersionView {
    TermsVersionView {
        current: v.id.to_string() == current,
        id: v.id.to_string(),
        version: v.version,
        title: v.title,
        summary: c.summary,
        class: c.class,
        substantial: c.substantial,
        closure: c.closure,
        equivalent_migration: c.equivalent_migration,
        published_at: ts(v.published_at),
        effective_at: ts(v.effective_at),
        body: v.body,
    }
}

/// Every version of the terms, current and past (and announced ones), newest first.
#[utoipa::path(get, path = "/api/v1/terms", tag = "contract",
    responses((status = 200, body = Vec<TermsVersionView>)))]
async fn terms_list(
    State(st): State<AppState>,
    _auth: MaybeAuth,
) -> ApiResult<axum::Json<Vec<TermsVersionView>>> {
    let current = terms::current(&st.app).await?.id.to_string();
    Ok(axum::Json(
        terms::list(&st.app)
            .await?
            .into_iter()
            .map(|v| terms_view(v, &current))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsPublish {
    pub version: String,
    pub title: String,
    pub body: String,
    pub summary: String,
    /// The day it takes effect: at least 1 month ahead, 6 for a substantial change or closure.
    pub effective_on: String,
    /// `beneficial`, `administrative`, `legal` or `other`.
    pub class: String,
    #[serde(default)]
    pub substantial: bool,
    #[serde(default)]
    pub closure: bool,
    #[serde(default)]
    pub equivalent_migration: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsPublished {
    pub version: TermsVersionView,
    /// How many subscribers were notified.
    pub notified: usize,
}

/// Publish a new version (admins): notifies every subscriber under contract.
#[utoipa::path(post, path = "/api/v1/terms", tag = "contract", security(("bearer" = [])), request_body = TermsPublish,
    responses((status = 201, body = TermsPublished), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn terms_publish(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Json(r): Json<TermsPublish>,
) -> ApiResult<(StatusCode, axum::Json<TermsPublished>)> {
    let effective_on = date_field("effective_on", &Some(r.effective_on))?.expect("given");
    let (v, notified) = terms::publish(
        &st.app,
        &ctx,
        terms::PublishInput {
            version: r.version,
            title: r.title,
            body: r.body,
            summary: r.summary,
            effective_on,
            class: r.class,
            substantial: r.substantial,
            closure: r.closure,
            equivalent_migration: r.equivalent_migration,
        },
    )
    .await?;
    let current = terms::current(&st.app).await?.id.to_string();
    Ok((
        StatusCode::CREATED,
        axum::Json(TermsPublished {
            version: terms_view(v, &current),
            notified,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsNoticeView {
    pub terms_version_id: String,
    pub version: String,
    pub subscriber_id: String,
    pub notified_at: String,
    /// The last day a termination carries no commitment dues, when the change opens a window.
    pub window_end: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoticeFilter {
    /// Only the notices of this version.
    pub terms_version_id: Option<String>,
}

/// Terms notices: the caller's (with any penalty-free window); operators: everyone's.
#[utoipa::path(get, path = "/api/v1/terms/notices", tag = "contract", security(("bearer" = [])), params(NoticeFilter),
    responses((status = 200, body = Vec<TermsNoticeView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn terms_notices(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<NoticeFilter>,
) -> ApiResult<axum::Json<Vec<TermsNoticeView>>> {
    Ok(axum::Json(
        terms::notices(&st.app, &ctx, q.terms_version_id.as_deref())
            .await?
            .into_iter()
            .map(|n| TermsNoticeView {
                terms_version_id: n.terms_version_id,
                version: n.version,
                subscriber_id: n.subscriber_id.to_string(),
                notified_at: ts(n.notified_at),
                window_end: n.window_end,
            })
            .collect(),
    ))
}

// ---- incidents ----

#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub resources: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// no compensation accrues.
    pub force_majeure: bool,
    pub recorded_by: String,
    pub compensations: Vec<CompensationView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompensationView {
    pub id: String,
    pub subscriber_id: String,
    pub credit_note_id: String,
    /// VAT included.
    pub amount_cents: i64,
    pub granted_by: String,
    pub created_at: String,
}

fn incident_view(i: Incident, comps: Vec<Compensation>) -> IncidentView {
    IncidentView {
        id: i.id,
        title: i.title,
        resources: i.resources,
        started_at: ts(i.started_at),
        ended_at: i.ended_at.map(ts),
        force_majeure: i.force_majeure,
        recorded_by: i.recorded_by,
        compensations: comps
            .into_iter()
            .map(|c| CompensationView {
                id: c.id,
                subscriber_id: c.subscriber_id.to_string(),
                credit_note_id: c.credit_note_id.to_string(),
                amount_cents: c.amount.0,
                granted_by: c.granted_by,
                created_at: ts(c.created_at),
            })
            .collect(),
    }
}

/// Incidents (operators).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "contract", security(("bearer" = [])),
    responses((status = 200, body = Vec<IncidentView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn incident_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<IncidentView>>> {
    Ok(axum::Json(
        incidents::list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(|i| incident_view(i, vec![]))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentCreate {
    pub title: String,
    /// The affected resources (VMs, buckets, addresses, or a zone).
    pub resources: String,
    /// RFC 3339.
    pub started_at: String,
    pub ended_at: Option<String>,
    #[serde(default)]
    pub force_majeure: bool,
}

/// Record an incident.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "contract", security(("bearer" = [])), request_body = IncidentCreate,
    responses((status = 201, body = IncidentView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn incident_create(
    State(st): State<AppState>,
    DeskAuth(ctx): DeskAuth,
    Json(r): Json<IncidentCreate>,
) -> ApiResult<(StatusCode, axum::Json<IncidentView>)> {
    let started = ts_field("started_at", &r.started_at)?;
    let ended = r
        .ended_at
        .as_deref()
        .map(|e| ts_field("ended_at", e))
        .transpose()?;
    let i = incidents::create(
        &st.app,
        &ctx,
        &r.title,
        &r.resources,
        started,
        ended,
        r.force_majeure,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(incident_view(i, vec![]))))
}

/// One incident with the compensation granted for it.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident id")),
    responses((status = 200, body = IncidentView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn incident_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<IncidentView>> {
    let (i, c) = incidents::get(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(axum::Json(incident_view(i, c)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapPeriodView {
    pub month: String,
    pub invoice_number: String,
    /// The month's flat fee, VAT included.
    pub fee_incl_cents: i64,
    /// What of it was actually paid.
    pub paid_cents: i64,
}

/// The cap and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapView {
    pub professional: bool,
    pub force_majeure: bool,
    /// The cap, VAT included; absent for a consumer (no cap).
    pub cap_cents: Option<i64>,
    pub periods: Vec<CapPeriodView>,
    pub granted_cents: i64,
    /// What may still be granted; absent when uncapped.
    pub remaining_cents: Option<i64>,
}

fn cap_view(c: incidents::Cap) -> CapView {
    CapView {
        professional: c.professional,
        force_majeure: c.force_majeure,
        cap_cents: c.cap.map(|c| c.0),
        periods: c
            .periods
            .into_iter()
            .map(|p| CapPeriodView {
                month: p.month,
                invoice_number: p.invoice_number,
                fee_incl_cents: p.fee_incl.0,
                paid_cents: p.paid.0,
            })
            .collect(),
        granted_cents: c.granted.0,
        remaining_cents: c.remaining.map(|c| c.0),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CapQuery {
    /// Whose cap (required).
    pub subscriber_id: Option<String>,
}

/// The compensation cap for one subscriber, with the periods it counts.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/cap", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident id"), CapQuery),
    responses((status = 200, body = CapView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn incident_cap(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(q): Query<CapQuery>,
) -> ApiResult<axum::Json<CapView>> {
    ctx.require_operator(&[
        maocloud_types::OperatorRole::Billing,
        maocloud_types::OperatorRole::Support,
    ])?;
    let who = subscriber_param(&q.subscriber_id)?
        .ok_or_else(|| Error::invalid("subscriber_id", "is required"))?;
    Ok(axum::Json(cap_view(
        incidents::cap(&st.app, &ctx, &uuid_path(&id)?, who).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompensationRequest {
    pub subscriber_id: String,
    pub amount_excl_cents: i64,
    /// The invoice to credit; the subscriber's latest when absent.
    pub invoice_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompensationGranted {
    pub compensation: CompensationView,
    pub credit_note_number: String,
    pub cap: CapView,
}

/// Grant compensation as a credit note (billing operators): refused for force majeure
/// and beyond the professional cap, saying why.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/compensations", tag = "contract", security(("bearer" = [])),
    params(("id" = String, Path, description = "Incident id")), request_body = CompensationRequest,
    responses((status = 201, body = CompensationGranted), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn incident_compensate(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Path(id): Path<String>,
    Json(r): Json<CompensationRequest>,
) -> ApiResult<(StatusCode, axum::Json<CompensationGranted>)> {
    let who = subscriber_param(&Some(r.subscriber_id))?.expect("given");
    let invoice = r
        .invoice_id
        .as_deref()
        .map(|i| {
            i.parse()
                .map_err(|_| Error::invalid("invoice_id", "is not an invoice id"))
        })
        .transpose()?;
    let (c, doc, cap) = incidents::compensate(
        &st.app,
        &ctx,
        &uuid_path(&id)?,
        who,
        maocloud_types::Cents(r.amount_excl_cents),
        invoice,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CompensationGranted {
            compensation: CompensationView {
                id: c.id,
                subscriber_id: c.subscriber_id.to_string(),
                credit_note_id: c.credit_note_id.to_string(),
                amount_cents: c.amount.0,
                granted_by: c.granted_by,
                created_at: ts(c.created_at),
            },
            credit_note_number: doc.number,
            cap: cap_view(cap),
        }),
    ))
}
