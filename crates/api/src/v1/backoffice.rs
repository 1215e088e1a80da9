//! The operators' back office: subscribers (every read audited, R-9.4), the audit log, the
//! outbox, and creating operators.

use super::accounts::ProfileView;
use super::{path_id, ts, PageQuery, PageView, Query};
use crate::error::{ApiResult, Problem};
use crate::extract::{AdminAuth, Auth, Json};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::model::{AuditEntry, Email, SubscriberSummary};
use maocloud_app::{accounts, audit, notify, Error};
use maocloud_types::{OperatorRole, SubscriberId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subscriber_list))
        .routes(routes!(subscriber_get))
        .routes(routes!(audit_list))
        .routes(routes!(outbox_list))
        .routes(routes!(operator_create))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberSummaryView {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub customer_kind: String,
    pub company_name: Option<String>,
    pub status: String,
    pub email_verified: bool,
    pub created_at: String,
}

impl From<SubscriberSummary> for SubscriberSummaryView {
    fn from(s: SubscriberSummary) -> Self {
        SubscriberSummaryView {
            id: s.id.to_string(),
            email: s.email,
            full_name: s.full_name,
            customer_kind: s.customer_kind,
            company_name: s.company_name,
            status: s.status,
            email_verified: s.email_verified,
            created_at: ts(s.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubscriberQuery {
    /// Part of an email, a name or a company name.
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Subscribers, newest first (operators; audited).
#[utoipa::path(get, path = "/api/v1/subscribers", tag = "back office", security(("bearer" = [])), params(SubscriberQuery),
    responses((status = 200, body = PageView<SubscriberSummaryView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn subscriber_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<SubscriberQuery>,
) -> ApiResult<axum::Json<PageView<SubscriberSummaryView>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let p = accounts::subscriber_list(&st.app, &ctx, q.search.as_deref(), &page).await?;
    Ok(axum::Json(PageView::from(p, Into::into)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsAcceptanceView {
    pub version: String,
    pub accepted_at: String,
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberDetailView {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub totp_enabled: bool,
    pub locale: String,
    pub created_at: String,
    pub profile: ProfileView,
    /// Every terms version accepted, with when and how.
    pub terms_acceptances: Vec<TermsAcceptanceView>,
}

/// One subscriber's file (operators; audited against that subscriber).
#[utoipa::path(get, path = "/api/v1/subscribers/{id}", tag = "back office", security(("bearer" = [])),
    params(("id" = String, Path, description = "Subscriber id")),
    responses((status = 200, body = SubscriberDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn subscriber_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SubscriberDetailView>> {
    let id: SubscriberId = path_id(&id)?;
    let d = accounts::subscriber_get(&st.app, &ctx, id).await?;
    Ok(axum::Json(SubscriberDetailView {
        id: d.profile.id.to_string(),
        email: d.account.email,
        email_verified: d.account.email_verified_at.is_some(),
        totp_enabled: d.account.totp_enabled,
        locale: d.account.locale,
        created_at: ts(d.account.created_at),
        profile: d.profile.into(),
        terms_acceptances: d
            .terms
            .into_iter()
            .map(|t| TermsAcceptanceView {
                version: t.version,
                accepted_at: ts(t.accepted_at),
                source: t.source,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    pub at: String,
    /// `operator:<id>`, `subscriber:<id>` or `system`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub subscriber_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            id: e.id.to_string(),
            at: ts(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            subscriber_id: e.subscriber_id.map(|s| s.to_string()),
            detail: e.detail,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this subscriber.
    pub subscriber_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/audit-log", tag = "back office", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = PageView<AuditEntryView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn audit_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<PageView<AuditEntryView>>> {
    let subscriber = match &q.subscriber_id {
        Some(s) => Some(
            s.parse::<SubscriberId>()
                .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))?,
        ),
        None => None,
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    Ok(axum::Json(PageView::from(
        audit::list(&st.app, &ctx, subscriber, &page).await?,
        Into::into,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmailView {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    /// `smtp` or `maildir`.
    pub transport: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<Email> for EmailView {
    fn from(e: Email) -> Self {
        EmailView {
            id: e.id.to_string(),
            to: e.to_addr,
            subject: e.subject,
            body: e.body_text,
            state: e.state,
            attempts: e.attempts,
            transport: e.transport,
            last_error: e.last_error,
            created_at: ts(e.created_at),
            sent_at: e.sent_at.map(ts),
        }
    }
}

/// The email outbox, newest first (admins; audited).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "back office", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = PageView<EmailView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn outbox_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<PageView<EmailView>>> {
    Ok(axum::Json(PageView::from(
        notify::outbox(&st.app, &ctx, &q.request()?).await?,
        Into::into,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    pub email: String,
    pub name: String,
    /// admin, billing, support or abuse.
    pub role: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorCreated {
    pub id: String,
    /// The TOTP secret to give the new operator: shown once.
    pub totp_secret: Option<String>,
    pub totp_uri: Option<String>,
}

/// Create an operator (admins). Their TOTP secret is returned once.
#[utoipa::path(post, path = "/api/v1/operators", tag = "back office", security(("bearer" = [])), request_body = OperatorRequest,
    responses((status = 201, body = OperatorCreated), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn operator_create(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Json(req): Json<OperatorRequest>,
) -> ApiResult<(StatusCode, axum::Json<OperatorCreated>)> {
    let role: OperatorRole = req
        .role
        .parse()
        .map_err(|e: String| Error::invalid("role", e))?;
    let with_totp = st.app.settings().operator_totp_required;
    let op = accounts::operator_create(
        &st.app,
        &ctx,
        &req.email,
        role,
        &req.password,
        &req.name,
        with_totp,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(OperatorCreated {
            id: op.id.to_string(),
            totp_secret: op.totp_secret,
            totp_uri: op.totp_uri,
        }),
    ))
}
