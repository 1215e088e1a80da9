//! Personal data over HTTP: marketing consent per purpose with its history and the
//! one-click opt-out, restriction and objection, marketing emails to those who
//! consented, the operators' k-anonymous statistics, the register of processors shown to
//! everyone and the access export as a ZIP. Each handler calls one use case of
//! `maocloud_app::privacy`.

use super::{attachment, path_id, ts, Query};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, AdminAuth, Auth, BillingAuth, ClientIp, Json};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use maocloud_app::privacy::{self, PrivacyExport, Processor, ProcessorInput};
use maocloud_app::Error;
use maocloud_types::SubscriberId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(consent_list))
        .routes(routes!(consent_set))
        .routes(routes!(choice_list))
        .routes(routes!(choice_set))
        .routes(routes!(unsubscribe))
        .routes(routes!(marketing_send))
        .routes(routes!(statistics))
        .routes(routes!(processor_list, processor_create))
        .routes(routes!(processor_update, processor_remove))
        .routes(routes!(export_list, export_request))
        .routes(routes!(export_download))
        .routes(routes!(erasure_request))
        .routes(routes!(erasure_confirm))
        .routes(routes!(subscriber_erase))
}

/// Where a change made through the API says it came from: `api` (default) or `cli`.
fn source(s: Option<String>) -> Result<String, Error> {
    match s.as_deref() {
        None | Some("api") => Ok("api".into()),
        Some("cli") => Ok("cli".into()),
        Some(_) => Err(Error::invalid("source", "must be api or cli")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubjectQuery {
    /// Operators (support desk or admins): the subscriber whose consents or choices to read
    /// (audited, R-9.4). Subscribers always read their own.
    pub subscriber_id: Option<String>,
}

impl SubjectQuery {
    fn subscriber(&self) -> Result<Option<SubscriberId>, Error> {
        self.subscriber_id
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))
            })
            .transpose()
    }
}

// ---- consents ----

/// One marketing purpose and whether the subscriber consents to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeView {
    /// `loyalty`, `prospecting`, `surveys` or `promotions`.
    pub purpose: String,
    pub granted: bool,
}

/// One change of consent, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentEventView {
    pub purpose: String,
    pub granted: bool,
    /// `console`, `api`, `cli` or `unsubscribe_link` (the opt-out link of an email).
    pub source: String,
    /// The address the change came from.
    pub ip: String,
    pub at: String,
}

/// A subscriber's marketing consents: each purpose (opt-in: none is granted until the
/// subscriber grants it) and every change, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentsView {
    pub purposes: Vec<PurposeView>,
    pub history: Vec<ConsentEventView>,
}

fn consents_view(c: privacy::Consents) -> ConsentsView {
    ConsentsView {
        purposes: c
            .purposes
            .into_iter()
            .map(|(purpose, granted)| PurposeView { purpose, granted })
            .collect(),
        history: c
            .history
            .into_iter()
            .map(|e| ConsentEventView {
                purpose: e.purpose,
                granted: e.granted,
                source: e.source,
                ip: e.ip,
                at: ts(e.created_at),
            })
            .collect(),
    }
}

/// Your marketing consents and their history; support operators and admins name a
/// subscriber (audited).
#[utoipa::path(get, path = "/api/v1/privacy/consents", tag = "privacy", security(("bearer" = [])), params(SubjectQuery),
    responses((status = 200, body = ConsentsView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn consent_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubjectQuery>,
) -> ApiResult<axum::Json<ConsentsView>> {
    let c = privacy::consents(&st.app, &ctx, q.subscriber()?).await?;
    Ok(axum::Json(consents_view(c)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentSet {
    /// `true` gives consent, `false` withdraws it.
    pub granted: bool,
    /// Recorded with the change: `api` (default) or `cli`.
    pub source: Option<String>,
}

/// Give or withdraw your consent to one marketing purpose (subscribers, R-9.2); the change is
/// recorded with its time, source and address.
#[utoipa::path(put, path = "/api/v1/privacy/consents/{purpose}", tag = "privacy", security(("bearer" = [])),
    params(("purpose" = String, Path, description = "loyalty, prospecting, surveys or promotions")), request_body = ConsentSet,
    responses((status = 200, body = ConsentsView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn consent_set(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(purpose): Path<String>,
    Json(r): Json<ConsentSet>,
) -> ApiResult<axum::Json<ConsentsView>> {
    let source = source(r.source)?;
    let c = privacy::set_consent(&st.app, &ctx, &purpose, r.granted, &source).await?;
    Ok(axum::Json(consents_view(c)))
}

// ---- restriction and objection ----

/// One change of restriction or objection, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChoiceEventView {
    /// `restriction` or `objection`.
    pub choice: String,
    pub active: bool,
    pub reason: Option<String>,
    /// `console`, `api` or `cli`.
    pub source: String,
    pub at: String,
}

/// A subscriber's restriction of processing and objection to it, with every change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChoicesView {
    /// Processing restricted: the data is kept and used only as the contract and the law
    /// require (no marketing, no statistics).
    pub restricted: bool,
    /// Objection to processing based on legitimate interest (no statistics, no profiling).
    pub objected: bool,
    pub history: Vec<ChoiceEventView>,
}

fn choices_view(c: privacy::Choices) -> ChoicesView {
    ChoicesView {
        restricted: c.state.restricted,
        objected: c.state.objected,
        history: c
            .history
            .into_iter()
            .map(|e| ChoiceEventView {
                choice: e.choice,
                active: e.active,
                reason: e.reason,
                source: e.source,
                at: ts(e.created_at),
            })
            .collect(),
    }
}

/// Your restriction and objection and their history; support operators and admins
/// name a subscriber (audited).
#[utoipa::path(get, path = "/api/v1/privacy/choices", tag = "privacy", security(("bearer" = [])), params(SubjectQuery),
    responses((status = 200, body = ChoicesView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn choice_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubjectQuery>,
) -> ApiResult<axum::Json<ChoicesView>> {
    let c = privacy::choices(&st.app, &ctx, q.subscriber()?).await?;
    Ok(axum::Json(choices_view(c)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSet {
    /// `true` restricts (or objects), `false` lifts it.
    pub active: bool,
    /// Why, if you wish (1,000 characters at most).
    pub reason: Option<String>,
    /// Recorded with the change: `api` (default) or `cli`.
    pub source: Option<String>,
}

/// Restrict processing or object to it, or lift either (subscribers, R-9.5). Recorded and
/// audited; the desk is told.
#[utoipa::path(put, path = "/api/v1/privacy/choices/{choice}", tag = "privacy", security(("bearer" = [])),
    params(("choice" = String, Path, description = "restriction or objection")), request_body = ChoiceSet,
    responses((status = 200, body = ChoicesView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn choice_set(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(choice): Path<String>,
    Json(r): Json<ChoiceSet>,
) -> ApiResult<axum::Json<ChoicesView>> {
    let source = source(r.source)?;
    let c = privacy::set_choice(
        &st.app,
        &ctx,
        &choice,
        r.active,
        r.reason.as_deref(),
        &source,
    )
    .await?;
    Ok(axum::Json(choices_view(c)))
}

// ---- the one-click opt-out and marketing ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeQuery {
    /// The opt-out token, for a form post (RFC 8058).
    pub t: Option<String>,
}

/// The opt-out token of a marketing email's link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeBody {
    pub token: String,
}

/// What a mail client posts for a one-click opt-out (RFC 8058), the token in the query (`t`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnsubscribeForm {
    /// `One-Click`.
    #[serde(rename = "List-Unsubscribe")]
    pub list_unsubscribe: String,
}

/// The consent withdrawn.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unsubscribed {
    pub purpose: String,
}

/// The one-click opt-out of a marketing email (anyone, no sign-in; ): withdraws the
/// consent the token names, recorded as `unsubscribe_link`. Either JSON `{"token": …}`, or
/// as mail clients post it (RFC 8058): `application/x-www-form-urlencoded` with
/// `List-Unsubscribe=One-Click` and the token in the query, `?t=…`.
#[utoipa::path(post, path = "/api/v1/unsubscribe", tag = "privacy", params(UnsubscribeQuery),
    request_body(content((UnsubscribeBody = "application/json"), (UnsubscribeForm = "application/x-www-form-urlencoded"))),
    responses((status = 200, body = Unsubscribed), (status = 400, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn unsubscribe(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(q): Query<UnsubscribeQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<Unsubscribed>> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bytes = axum::body::to_bytes(body, crate::BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::bad_request(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "the body is too large".into(),
            )
        })?;
    let token = if mime == "application/json" || mime.ends_with("+json") {
        parse_json::<UnsubscribeBody>(&bytes)?.token
    } else if mime == "application/x-www-form-urlencoded" {
        let form: Option<UnsubscribeForm> = serde_urlencoded::from_bytes(&bytes).ok();
        if form.is_none_or(|f| f.list_unsubscribe != "One-Click") {
            return Err(Error::invalid("List-Unsubscribe", "must be One-Click (RFC 8058)").into());
        }
        q.t.ok_or_else(|| Error::invalid("t", "is required: the opt-out token"))?
    } else {
        return Err(ApiError::bad_request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "the body must be JSON, or a one-click form post (application/x-www-form-urlencoded)"
                .into(),
        ));
    };
    let purpose = privacy::unsubscribe(&st.app, &token, &ip).await?;
    Ok(axum::Json(Unsubscribed { purpose }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketingSend {
    /// `loyalty`, `prospecting`, `surveys` or `promotions`.
    pub purpose: String,
    /// 200 characters at most.
    pub subject: String,
    /// Plain text; each email ends with the subscriber's own opt-out link.
    pub body: String,
}

/// How many subscribers the email was queued for.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarketingSent {
    pub recipients: i64,
}

/// Send a marketing email for one purpose (admins, R-9.2): it goes only to subscribers who
/// consented to that purpose and have not restricted processing, each with a one-click opt-out.
#[utoipa::path(post, path = "/api/v1/marketing/emails", tag = "privacy", security(("bearer" = [])), request_body = MarketingSend,
    responses((status = 202, body = MarketingSent), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn marketing_send(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Json(r): Json<MarketingSend>,
) -> ApiResult<(StatusCode, axum::Json<MarketingSent>)> {
    let n = privacy::marketing_send(&st.app, &ctx, &r.purpose, &r.subject, &r.body).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(MarketingSent {
            recipients: n as i64,
        }),
    ))
}

// ---- statistics ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatisticsQuery {
    /// `YYYY-MM`: the first month of the revenue statistic [default: 11 months before this
    /// one, Paris time].
    pub since: Option<String>,
}

/// One group of a statistic. A group of fewer than `k` subscribers shows no number.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatGroupView {
    /// The offer's code, `YYYY-MM <offer code>` or the VM size.
    pub key: String,
    pub label: String,
    /// How many subscribers make the group; `null` when fewer than `k`.
    pub subscribers: Option<i64>,
    /// Subscribers (per offer), revenue excluding VAT in cents (per month) or VMs (per size);
    /// `null` when the group has fewer than `k` subscribers.
    pub total: Option<i64>,
}

/// One statistic.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticView {
    /// `subscribers_per_offer`, `revenue_per_month_cents` or `vms_per_size`.
    pub name: String,
    pub groups: Vec<StatGroupView>,
}

/// The operators' statistics, from anonymised counts only, leaving out sandboxes and the
/// subscribers who restricted processing or objected to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsView {
    /// The first month of the revenue statistic.
    pub since: String,
    /// The smallest group shown with numbers.
    pub k: i64,
    pub statistics: Vec<StatisticView>,
}

/// The k-anonymous statistics (billing operators and admins, R-9.2).
#[utoipa::path(get, path = "/api/v1/statistics", tag = "privacy", security(("bearer" = [])), params(StatisticsQuery),
    responses((status = 200, body = StatisticsView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn statistics(
    State(st): State<AppState>,
    BillingAuth(ctx): BillingAuth,
    Query(q): Query<StatisticsQuery>,
) -> ApiResult<axum::Json<StatisticsView>> {
    let since = match q.since {
        Some(s) => s,
        None => maocloud_billing::paris_date(st.app.now())
            .first_of_month()
            .checked_sub(jiff::Span::new().months(11))
            .map_err(Error::internal)?
            .strftime("%Y-%m")
            .to_string(),
    };
    let stats = privacy::statistics(&st.app, &ctx, &since).await?;
    let k = stats
        .first()
        .map(|s| s.k)
        .unwrap_or(st.app.settings().privacy_k);
    Ok(axum::Json(StatisticsView {
        since,
        k,
        statistics: stats
            .into_iter()
            .map(|s| StatisticView {
                name: s.name,
                groups: s
                    .groups
                    .into_iter()
                    .map(|g| StatGroupView {
                        key: g.key,
                        label: g.label,
                        subscribers: g.subscribers,
                        total: g.total,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

// ---- the register of processors ----

/// An entry of the register of processors and recipients of personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessorView {
    pub id: String,
    /// `processor` (handles data on the provider's behalf) or `recipient`.
    pub kind: String,
    pub name: String,
    pub purpose: String,
    /// The personal data it receives.
    pub data_categories: String,
    /// Where the data goes (ISO 3166 country code).
    pub country: String,
    /// The safeguards of the transfer (EU, adequacy decision, standard contractual clauses…).
    pub safeguards: String,
    pub created_at: String,
    pub updated_at: String,
}

fn processor_view(p: Processor) -> ProcessorView {
    ProcessorView {
        id: p.id,
        kind: p.kind,
        name: p.name,
        purpose: p.purpose,
        data_categories: p.data_categories,
        country: p.country,
        safeguards: p.safeguards,
        created_at: ts(p.created_at),
        updated_at: ts(p.updated_at),
    }
}

/// The register of processors and recipients (public, R-9.1), by kind and name.
#[utoipa::path(get, path = "/api/v1/processors", tag = "privacy",
    responses((status = 200, body = Vec<ProcessorView>)))]
async fn processor_list(State(st): State<AppState>) -> ApiResult<axum::Json<Vec<ProcessorView>>> {
    Ok(axum::Json(
        privacy::processors(&st.app)
            .await?
            .into_iter()
            .map(processor_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessorBody {
    /// `processor` or `recipient`.
    pub kind: String,
    /// 200 characters at most.
    pub name: String,
    /// What it does with the data (500 characters at most).
    pub purpose: String,
    /// The personal data it receives (500 characters at most).
    pub data_categories: String,
    /// ISO 3166 country code, e.g. `FR`.
    pub country: String,
    /// 500 characters at most.
    pub safeguards: String,
}

impl From<ProcessorBody> for ProcessorInput {
    fn from(b: ProcessorBody) -> Self {
        ProcessorInput {
            kind: b.kind,
            name: b.name,
            purpose: b.purpose,
            data_categories: b.data_categories,
            country: b.country,
            safeguards: b.safeguards,
        }
    }
}

/// Add an entry to the register (admins).
#[utoipa::path(post, path = "/api/v1/processors", tag = "privacy", security(("bearer" = [])), request_body = ProcessorBody,
    responses((status = 201, body = ProcessorView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn processor_create(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Json(r): Json<ProcessorBody>,
) -> ApiResult<(StatusCode, axum::Json<ProcessorView>)> {
    let p = privacy::processor_create(&st.app, &ctx, r.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(processor_view(p))))
}

/// Rewrite an entry of the register (admins).
#[utoipa::path(put, path = "/api/v1/processors/{id}", tag = "privacy", security(("bearer" = [])),
    params(("id" = String, Path, description = "Register entry id")), request_body = ProcessorBody,
    responses((status = 200, body = ProcessorView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn processor_update(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
    Json(r): Json<ProcessorBody>,
) -> ApiResult<axum::Json<ProcessorView>> {
    let id = path_id::<uuid::Uuid>(&id)?.to_string();
    let p = privacy::processor_update(&st.app, &ctx, &id, r.into()).await?;
    Ok(axum::Json(processor_view(p)))
}

/// Remove an entry from the register (admins); it is kept, marked removed, for the record.
#[utoipa::path(delete, path = "/api/v1/processors/{id}", tag = "privacy", security(("bearer" = [])),
    params(("id" = String, Path, description = "Register entry id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn processor_remove(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = path_id::<uuid::Uuid>(&id)?.to_string();
    privacy::processor_remove(&st.app, &ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- the access export ----

/// An export of everything the platform holds about you: JSON files in a ZIP, prepared
/// in the background, downloadable for 7 days once ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportView {
    pub id: String,
    /// `queued`, `ready` or `expired`.
    pub status: String,
    pub requested_at: String,
    pub ready_at: Option<String>,
    /// When the archive is deleted.
    pub expires_at: Option<String>,
    /// The archive's size in bytes, once ready.
    pub size: Option<i64>,
    /// The archive's file name, once ready (`maocloud-export-YYYY-MM-DD.zip`).
    pub file_name: Option<String>,
}

/// The download's name: the (Paris) day the archive was prepared.
fn export_file_name(ready_at: jiff::Timestamp) -> String {
    format!(
        "maocloud-export-{}.zip",
        maocloud_billing::paris_date(ready_at)
    )
}

fn export_view(e: PrivacyExport) -> ExportView {
    ExportView {
        id: e.id,
        status: e.status,
        requested_at: ts(e.requested_at),
        ready_at: e.ready_at.map(ts),
        expires_at: e.expires_at.map(ts),
        size: e.size,
        file_name: e.ready_at.map(export_file_name),
    }
}

/// Your exports, newest first (subscribers).
#[utoipa::path(get, path = "/api/v1/privacy/exports", tag = "privacy", security(("bearer" = [])),
    responses((status = 200, body = Vec<ExportView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn export_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<ExportView>>> {
    Ok(axum::Json(
        privacy::exports(&st.app, &ctx)
            .await?
            .into_iter()
            .map(export_view)
            .collect(),
    ))
}

/// Ask for an export of your data (subscribers, R-9.5), one at a time. You are emailed when it
/// is ready.
#[utoipa::path(post, path = "/api/v1/privacy/exports", tag = "privacy", security(("bearer" = [])),
    responses((status = 202, body = ExportView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn export_request(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<(StatusCode, axum::Json<ExportView>)> {
    let e = privacy::export_request(&st.app, &ctx).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(export_view(e))))
}

/// Download a ready export (its subscriber only): a ZIP of JSON files with a README.
#[utoipa::path(get, path = "/api/v1/privacy/exports/{id}/download", tag = "privacy", security(("bearer" = [])),
    params(("id" = String, Path, description = "Export id")),
    responses((status = 200, description = "The archive", content_type = "application/zip"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn export_download(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let id = path_id::<uuid::Uuid>(&id)?.to_string();
    let bytes = privacy::export_download(&st.app, &ctx, &id).await?;
    let ready_at = privacy::exports(&st.app, &ctx)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .and_then(|e| e.ready_at)
        .unwrap_or_else(|| st.app.now());
    let mut r = attachment("application/zip", export_file_name(ready_at), bytes);
    // Personal data: no cache keeps a copy.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

// ---- erasure ----

/// Ask to erase your account and personal data (subscribers without an active contract,
/// A confirmation code is emailed to you; nothing is erased yet.
#[utoipa::path(post, path = "/api/v1/privacy/erasure", tag = "privacy", security(("bearer" = [])),
    responses((status = 202, description = "The confirmation code was emailed"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn erasure_request(State(st): State<AppState>, Auth(ctx): Auth) -> ApiResult<StatusCode> {
    privacy::erasure_request(&st.app, &ctx).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The second confirmation of an erasure.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureConfirm {
    /// The code from the email.
    pub code: String,
    /// Your account's email address, typed again.
    pub email: String,
}

/// Confirm the erasure (irreversible): your VMs, disks, buckets and personal data are destroyed
/// at once; invoices are kept for the law, readable by the billing desk only.
#[utoipa::path(post, path = "/api/v1/privacy/erasure/confirm", tag = "privacy", security(("bearer" = [])), request_body = ErasureConfirm,
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn erasure_confirm(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<ErasureConfirm>,
) -> ApiResult<StatusCode> {
    privacy::erasure_confirm(&st.app, &ctx, &r.code, &r.email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Erase a subscriber on their written request (admins; no active contract).
#[utoipa::path(post, path = "/api/v1/subscribers/{id}/erasure", tag = "privacy", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn subscriber_erase(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let who: SubscriberId = path_id(&id)?;
    privacy::erase_on_request(&st.app, &ctx, who).await?;
    Ok(StatusCode::NO_CONTENT)
}
