//! The support desk over HTTP (R-1d): tickets and their threads with attachments, the operators'
//! queue, assignment, notes, merge and the subscriber's context, canned replies, response
//! targets and the monthly report; the public forms (abuse reports R-4a, credential-loss
//! reports R-5a) and the registered letters operators record (R-7.2a). Files travel as base64 in
//! the JSON body; each handler calls one use case of `maocloud_app::support`.

use super::{ts, PageQuery, PageView, Query};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AdminAuth, Auth, ClientIp, DeskAuth, Json, OperatorAuth, SupportAuth};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use maocloud_app::support::{self, TicketFilter, TicketView};
use maocloud_app::{Ctx, Error, FieldError};
use maocloud_types::{Principal, SubscriberId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The body limit of the routes that carry files: three attachments of 5 MiB, as base64.
pub const FILES_BODY_LIMIT: usize = 24 * 1024 * 1024;

/// Whether a POST to `path` may carry files (the `Idempotency-Key` middleware buffers such
/// bodies up to [`FILES_BODY_LIMIT`] instead of the API's usual limit).
pub(crate) fn carries_files(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/tickets"
            | "/api/v1/support/letters"
            | "/api/v1/abuse-reports"
            | "/api/v1/credential-loss-reports"
    ) || path
        .strip_prefix("/api/v1/tickets/")
        .and_then(|rest| rest.strip_suffix("/messages"))
        .is_some_and(|id| !id.contains('/'))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(ticket_list, ticket_open))
                .routes(routes!(message_list, message_post))
                .routes(routes!(letter_record))
                .routes(routes!(abuse_report))
                .routes(routes!(credential_loss_report))
                .layer(DefaultBodyLimit::max(FILES_BODY_LIMIT)),
        )
        .routes(routes!(ticket_get, ticket_update))
        .routes(routes!(attachment_get))
        .routes(routes!(ticket_close))
        .routes(routes!(ticket_reopen))
        .routes(routes!(ticket_merge))
        .routes(routes!(ticket_context))
        .routes(routes!(credential_loss_decide))
        .routes(routes!(target_list))
        .routes(routes!(target_set))
        .routes(routes!(canned_list, canned_create))
        .routes(routes!(canned_delete))
        .routes(routes!(report_get))
}

/// A ticket or attachment id from the path; anything else is a ticket that does not exist.
fn uuid_path(s: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.to_string())
        .map_err(|_| Error::NotFound.into())
}

fn is_operator(ctx: &Ctx) -> bool {
    matches!(
        ctx.principal,
        Principal::Operator { .. } | Principal::System
    )
}

// ---- files ----

/// A file sent with a message or a form (PDF, PNG, JPEG or plain text, 5 MiB at most; the
/// server checks the bytes against the type and the file name's extension).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentUpload {
    /// A plain file name (no path), e.g. `screenshot.png`.
    pub file_name: String,
    /// `application/pdf`, `image/png`, `image/jpeg` or `text/plain`.
    pub content_type: String,
    /// The file's bytes, base64 (standard alphabet, padded).
    pub data_base64: String,
}

/// Decodes files, naming each one whose base64 is unreadable (`attachments[1].data_base64`).
fn decode_files(
    field: &str,
    files: Vec<AttachmentUpload>,
) -> Result<Vec<support::NewAttachment>, Error> {
    let mut bad = vec![];
    let mut out = vec![];
    for (i, f) in files.into_iter().enumerate() {
        match decode_file(&format!("{field}[{i}]"), f) {
            Ok(a) => out.push(a),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(bad))
    }
}

fn decode_file(field: &str, f: AttachmentUpload) -> Result<support::NewAttachment, FieldError> {
    let text: Vec<u8> = f
        .data_base64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) => Ok(support::NewAttachment {
            file_name: f.file_name,
            content_type: f.content_type,
            bytes,
        }),
        Err(_) => Err(FieldError {
            field: format!("{field}.data_base64"),
            reason: "is not valid base64".into(),
        }),
    }
}

fn one_file(field: &str, f: AttachmentUpload) -> Result<support::NewAttachment, Error> {
    decode_file(field, f).map_err(|e| Error::Invalid(vec![e]))
}

/// A file's description in a thread (its bytes: `GET …/attachments/{attachment_id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

// ---- views ----

/// A ticket in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketSummaryView {
    pub id: String,
    /// The number people quote (`#42`).
    pub number: i64,
    /// `request` (opened by a subscriber), `abuse_report`, `credential_loss` or `letter`.
    pub kind: String,
    pub subject: String,
    /// `technical`, `billing`, `account` or `abuse`.
    pub category: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// `new`, `open`, `waiting` (on the subscriber), `resolved` or `closed`.
    pub status: String,
    pub subscriber_id: Option<String>,
    pub assignee_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The first-response target, as promised when the ticket was opened.
    pub first_response_due_at: String,
    pub resolution_due_at: String,
    pub first_response_at: Option<String>,
    pub resolved_at: Option<String>,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    /// The subscriber's rating (1 to 5) when they closed it.
    pub rating: Option<i64>,
}

fn summary_view(t: support::Ticket) -> TicketSummaryView {
    TicketSummaryView {
        id: t.id,
        number: t.number,
        kind: t.kind,
        subject: t.subject,
        category: t.category,
        priority: t.priority,
        status: t.status,
        subscriber_id: t.subscriber_id.map(|s| s.to_string()),
        assignee_id: t.assignee_id,
        created_at: ts(t.created_at),
        updated_at: ts(t.updated_at),
        first_response_due_at: ts(t.first_response_due_at),
        resolution_due_at: ts(t.resolution_due_at),
        first_response_at: t.first_response_at.map(ts),
        resolved_at: t.resolved_at.map(ts),
        first_response_breached: t.first_response_breached,
        resolution_breached: t.resolution_breached,
        rating: t.rating,
    }
}

/// A resource a ticket is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResourceView {
    /// `vm`, `bucket` or `invoice`.
    pub kind: String,
    pub id: String,
    /// What people recognise it by (a VM's or bucket's name, an invoice number).
    pub label: String,
}

/// One message of a thread.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    /// `subscriber`, `operator`, `contact` (someone without an account) or `system`.
    pub author_kind: String,
    pub author_label: String,
    pub body: String,
    /// An operators' note (never shown to the subscriber).
    pub internal: bool,
    /// `web` (the console, the API or the CLI) or `email`.
    pub via: String,
    pub created_at: String,
    pub attachments: Vec<AttachmentView>,
}

fn message_view(m: support::ThreadMessage) -> MessageView {
    MessageView {
        id: m.message.id,
        author_kind: m.message.author_kind,
        author_label: m.message.author_label,
        body: m.message.body,
        internal: m.message.internal,
        via: m.message.via,
        created_at: ts(m.message.created_at),
        attachments: m
            .attachments
            .into_iter()
            .map(|a| AttachmentView {
                id: a.id,
                file_name: a.file_name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    }
}

/// Something that happened to a ticket (operators): opened, assigned, status, priority,
/// escalated, breached, merged…
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketEventView {
    pub id: String,
    pub kind: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub created_at: String,
}

/// The subscriber a ticket belongs to (operators).
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketSubscriberView {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// A ticket with its thread, as the caller may see it. Operators also get its events, the
/// subscriber, the contact of a form and the form's details; subscribers never see internal
/// notes. The ticket's reply address is a secret that only travels by email.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetailView {
    #[serde(flatten)]
    pub summary: TicketSummaryView,
    pub assignee_name: Option<String>,
    pub resources: Vec<TicketResourceView>,
    /// `console`, `api`, `cli`, `form` or `letter`.
    pub source: String,
    /// The ticket this one was merged into.
    pub merged_into: Option<String>,
    pub closed_at: Option<String>,
    pub rating_comment: Option<String>,
    pub messages: Vec<MessageView>,
    /// Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<TicketEventView>>,
    /// Operators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<TicketSubscriberView>,
    /// Operators only: who filled in a public form (`email`, `name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactView>,
    /// Operators only: what a form or letter recorded (abuse kind, the reported resource, a
    /// credential-loss decision, the termination a letter made…).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// Who filled in a public form.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub email: String,
    pub name: Option<String>,
}

fn ticket_view(ctx: &Ctx, v: TicketView) -> TicketDetailView {
    let operator = is_operator(ctx);
    let t = v.ticket;
    let contact = match (&t.contact_email, operator) {
        (Some(email), true) => Some(ContactView {
            email: email.clone(),
            name: t.contact_name.clone(),
        }),
        _ => None,
    };
    let resources = t
        .resources
        .iter()
        .map(|r| TicketResourceView {
            kind: r.kind.clone(),
            id: r.id.clone(),
            label: r.label.clone(),
        })
        .collect();
    let (source, merged_into, closed_at, rating_comment) = (
        t.source.clone(),
        t.merged_into.clone(),
        t.closed_at.map(ts),
        t.rating_comment.clone(),
    );
    let detail = operator.then(|| t.detail.clone());
    TicketDetailView {
        summary: summary_view(t),
        assignee_name: v.assignee_name,
        resources,
        source,
        merged_into,
        closed_at,
        rating_comment,
        messages: v.thread.into_iter().map(message_view).collect(),
        events: operator.then(|| {
            v.events
                .into_iter()
                .map(|e| TicketEventView {
                    id: e.id,
                    kind: e.kind,
                    actor: e.actor,
                    detail: e.detail,
                    created_at: ts(e.created_at),
                })
                .collect()
        }),
        subscriber: v.subscriber.map(|(id, name, email)| TicketSubscriberView {
            id: id.to_string(),
            name,
            email,
        }),
        contact,
        detail,
    }
}

// ---- tickets ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TicketListQuery {
    /// `new`, `open`, `waiting`, `resolved` or `closed`.
    pub status: Option<String>,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: Option<String>,
    /// `technical`, `billing`, `account` or `abuse`.
    pub category: Option<String>,
    /// `request`, `abuse_report`, `credential_loss` or `letter`.
    pub kind: Option<String>,
    /// Operators: `me`, `none` (unassigned) or an operator id.
    pub assignee: Option<String>,
    /// Operators: tickets already escalated or due within the hour.
    pub at_risk: Option<bool>,
    /// Only tickets not yet resolved or closed.
    pub active: Option<bool>,
    /// Operators: one subscriber's tickets.
    pub subscriber_id: Option<String>,
    /// How many items (1 to 200, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Tickets, newest first: a subscriber's own; for operators, the desk's queue their role sees,
/// narrowed by the filters.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), params(TicketListQuery),
    responses((status = 200, body = PageView<TicketSummaryView>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn ticket_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<TicketListQuery>,
) -> ApiResult<axum::Json<PageView<TicketSummaryView>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .request()?;
    let mut filter = TicketFilter {
        status: q.status,
        active_only: q.active.unwrap_or(false),
        priority: q.priority,
        category: q.category,
        kind: q.kind,
        at_risk_before: q
            .at_risk
            .unwrap_or(false)
            .then(|| support::at_risk_horizon(&st.app)),
        ..Default::default()
    };
    match q.assignee.as_deref() {
        None => {}
        Some("none") => filter.unassigned = true,
        Some("me") => match ctx.principal {
            Principal::Operator { id, .. } => filter.assignee = Some(id.to_string()),
            _ => return Err(Error::invalid("assignee", "`me` is for operators").into()),
        },
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(u) => filter.assignee = Some(u.to_string()),
            Err(_) => {
                return Err(Error::invalid("assignee", "must be me, none or an operator id").into())
            }
        },
    }
    if let Some(s) = &q.subscriber_id {
        let who: SubscriberId = s
            .parse()
            .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))?;
        filter.subscriber = Some(who);
    }
    let p = support::list(&st.app, &ctx, filter, &page).await?;
    Ok(axum::Json(PageView::from(p, summary_view)))
}

/// A resource to link to a new ticket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRefBody {
    /// `vm`, `bucket` or `invoice`.
    pub kind: String,
    /// The VM's or invoice's id, the bucket's name.
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketOpen {
    /// 200 characters at most.
    pub subject: String,
    /// `technical`, `billing`, `account` or `abuse`.
    pub category: String,
    /// `low`, `normal`, `high` or `urgent` (the response targets: `GET /api/v1/support/targets`).
    pub priority: String,
    /// The first message (20,000 characters at most).
    pub message: String,
    /// Your resources the ticket is about (10 at most).
    #[serde(default)]
    pub resources: Vec<ResourceRefBody>,
    /// At most 3 files.
    #[serde(default)]
    pub attachments: Vec<AttachmentUpload>,
}

/// Open a ticket (subscribers), at any hour, suspended or not (R-1d). The desk is told by email.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), request_body = TicketOpen,
    responses((status = 201, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn ticket_open(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<TicketOpen>,
) -> ApiResult<(StatusCode, axum::Json<TicketDetailView>)> {
    let input = support::NewTicket {
        subject: r.subject,
        category: r.category,
        priority: r.priority,
        body: r.message,
        resources: r
            .resources
            .into_iter()
            .map(|x| support::ResourceRef {
                kind: x.kind,
                id: x.id,
            })
            .collect(),
        attachments: decode_files("attachments", r.attachments)?,
        source: "api".into(),
    };
    let v = support::open(&st.app, &ctx, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket_view(&ctx, v))))
}

/// One ticket with its thread (operators' reads are audited, R-9.4).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn ticket_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let v = support::get(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

/// `null` kept apart from an absent field.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketUpdateBody {
    /// `new`, `open`, `waiting`, `resolved` or `closed`.
    pub status: Option<String>,
    /// A new priority moves the ticket's deadlines to that priority's targets.
    pub priority: Option<String>,
    pub category: Option<String>,
    /// An operator's id; `null` unassigns; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub assignee_id: Option<Option<String>>,
}

/// Change a ticket's status, priority, category or assignee (operators).
#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")), request_body = TicketUpdateBody,
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn ticket_update(
    State(st): State<AppState>,
    OperatorAuth(ctx): OperatorAuth,
    Path(id): Path<String>,
    Json(r): Json<TicketUpdateBody>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let u = support::TicketUpdate {
        status: r.status,
        priority: r.priority,
        category: r.category,
        assignee: r.assignee_id,
    };
    let v = support::update(&st.app, &ctx, &uuid_path(&id)?, u).await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

/// A ticket's thread, oldest first (internal notes for operators only).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = Vec<MessageView>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn message_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<MessageView>>> {
    let v = support::get(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(axum::Json(v.thread.into_iter().map(message_view).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagePost {
    pub message: String,
    /// Operators: a note the subscriber never sees.
    #[serde(default)]
    pub internal: bool,
    /// Operators: the status after a public reply, `open`, `waiting` (default) or `resolved`.
    pub status: Option<String>,
    /// At most 3 files.
    #[serde(default)]
    pub attachments: Vec<AttachmentUpload>,
}

/// Reply. A subscriber's reply reopens a resolved or closed ticket; an operator's first public
/// reply stops the first-response clock and is emailed with the ticket's reply address.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")), request_body = MessagePost,
    responses((status = 201, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn message_post(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<MessagePost>,
) -> ApiResult<(StatusCode, axum::Json<TicketDetailView>)> {
    let id = uuid_path(&id)?;
    let input = support::NewReply {
        body: r.message,
        internal: r.internal,
        status: r.status,
        attachments: decode_files("attachments", r.attachments)?,
        ..Default::default()
    };
    let v = support::reply(&st.app, &ctx, &id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket_view(&ctx, v))))
}

/// Download an attachment (only from messages the caller may see).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/attachments/{attachment_id}", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id"), ("attachment_id" = String, Path, description = "Attachment id")),
    responses((status = 200, description = "The file, with its stored type", content_type = "application/octet-stream"), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn attachment_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path((id, attachment_id)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    let (meta, bytes) =
        support::attachment(&st.app, &ctx, &uuid_path(&id)?, &uuid_path(&attachment_id)?).await?;
    let disposition = crate::content_disposition(&meta.file_name);
    Ok((
        [
            (header::CONTENT_TYPE, meta.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketClose {
    /// How helpful the desk was, 1 to 5.
    pub rating: Option<i64>,
    /// A word about it (with a rating).
    pub comment: Option<String>,
}

/// Close your ticket, rating the help you got if you wish (subscribers).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")), request_body = TicketClose,
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn ticket_close(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(r): Json<TicketClose>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let id = uuid_path(&id)?;
    let rating = match (r.rating, r.comment) {
        (Some(score), comment) => Some(support::Rating { score, comment }),
        (None, Some(c)) if !c.trim().is_empty() => {
            return Err(Error::invalid("rating", "is required with a comment").into())
        }
        (None, _) => None,
    };
    let v = support::close(&st.app, &ctx, &id, rating).await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

/// Reopen your resolved or closed ticket (subscribers).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/reopen", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn ticket_reopen(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let v = support::reopen(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketMerge {
    /// The ticket that receives this one's thread (same requester).
    pub into: String,
}

/// Merge this ticket into another of the same requester (operators): its thread moves there
/// and it closes. Answers the ticket merged into.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/merge", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")), request_body = TicketMerge,
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn ticket_merge(
    State(st): State<AppState>,
    OperatorAuth(ctx): OperatorAuth,
    Path(id): Path<String>,
    Json(r): Json<TicketMerge>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let v = support::merge(&st.app, &ctx, &uuid_path(&id)?, r.into.trim()).await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

/// A subscription in a ticket's context.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextSubscriptionView {
    pub id: String,
    pub offer: String,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextVmView {
    pub id: String,
    pub name: String,
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextBucketView {
    pub name: String,
    pub bytes: i64,
    pub objects: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextInvoiceView {
    pub number: String,
    pub due_date: Option<String>,
    /// Left to pay, VAT included.
    pub remaining_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextSuspensionView {
    pub cause: String,
    pub status: String,
    pub since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextTicketView {
    pub id: String,
    pub number: i64,
    pub subject: String,
    pub status: String,
}

/// What an operator sees beside a ticket: the subscriber's offers, resources, unpaid invoices,
/// suspensions and other tickets (for a form without an account: only the contact).
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketContextView {
    pub subscriber_id: Option<String>,
    pub name: String,
    pub email: String,
    pub subscriptions: Vec<ContextSubscriptionView>,
    pub vms: Vec<ContextVmView>,
    pub buckets: Vec<ContextBucketView>,
    pub unpaid_invoices: Vec<ContextInvoiceView>,
    pub suspensions: Vec<ContextSuspensionView>,
    pub other_tickets: Vec<ContextTicketView>,
}

/// The subscriber's context beside a ticket (operators; audited, R-9.4).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/context", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketContextView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn ticket_context(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TicketContextView>> {
    let c = support::context(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(axum::Json(TicketContextView {
        subscriber_id: c.subscriber_id.map(|s| s.to_string()),
        name: c.name,
        email: c.email,
        subscriptions: c
            .subscriptions
            .into_iter()
            .map(|(id, offer, status)| ContextSubscriptionView { id, offer, status })
            .collect(),
        vms: c
            .vms
            .into_iter()
            .map(|(id, name, state)| ContextVmView { id, name, state })
            .collect(),
        buckets: c
            .buckets
            .into_iter()
            .map(|(name, bytes, objects)| ContextBucketView {
                name,
                bytes,
                objects,
            })
            .collect(),
        unpaid_invoices: c
            .unpaid
            .into_iter()
            .map(|(number, due_date, remaining_cents)| ContextInvoiceView {
                number,
                due_date,
                remaining_cents,
            })
            .collect(),
        suspensions: c
            .suspensions
            .into_iter()
            .map(|(cause, status, since)| ContextSuspensionView {
                cause,
                status,
                since: since.map(ts),
            })
            .collect(),
        other_tickets: c
            .other_tickets
            .into_iter()
            .map(|(id, number, subject, status)| ContextTicketView {
                id,
                number,
                subject,
                status,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialLossDecision {
    /// `confirm` (every credential is revoked at once and new access emailed) or `reject`.
    pub decision: String,
    /// Posted to the thread; required to reject (the requester is told why).
    pub note: Option<String>,
}

/// Decide a credential-loss report (support operators, R-5a): confirmed, the subscriber's
/// password, sessions, API tokens, S3 keys and pending links are revoked at once and a link
/// to set a new password is emailed.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/credential-loss", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")), request_body = CredentialLossDecision,
    responses((status = 200, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn credential_loss_decide(
    State(st): State<AppState>,
    SupportAuth(ctx): SupportAuth,
    Path(id): Path<String>,
    Json(r): Json<CredentialLossDecision>,
) -> ApiResult<axum::Json<TicketDetailView>> {
    let id = uuid_path(&id)?;
    let confirm = match r.decision.as_str() {
        "confirm" => true,
        "reject" => false,
        _ => return Err(Error::invalid("decision", "must be confirm or reject").into()),
    };
    let v = support::credential_loss_decide(
        &st.app,
        &ctx,
        &id,
        confirm,
        r.note.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(axum::Json(ticket_view(&ctx, v)))
}

// ---- targets, canned replies, report ----

/// The response targets of a priority (R-1d), around the clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    pub priority: String,
    /// Minutes to a first answer.
    pub first_response_minutes: i64,
    /// Minutes to a resolution.
    pub resolution_minutes: i64,
}

fn target_view(t: support::SupportTarget) -> TargetView {
    TargetView {
        priority: t.priority,
        first_response_minutes: t.first_response_minutes,
        resolution_minutes: t.resolution_minutes,
    }
}

/// The response targets, highest priority first (public: what subscribers are promised).
#[utoipa::path(get, path = "/api/v1/support/targets", tag = "support",
    responses((status = 200, body = Vec<TargetView>)))]
async fn target_list(State(st): State<AppState>) -> ApiResult<axum::Json<Vec<TargetView>>> {
    Ok(axum::Json(
        support::targets(&st.app)
            .await?
            .into_iter()
            .map(target_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSet {
    /// 1 minute to 1 year.
    pub first_response_minutes: i64,
    /// 1 minute to 1 year, not shorter than the first-response target.
    pub resolution_minutes: i64,
}

/// Set a priority's targets (admins). Tickets opened from now on use them; open tickets keep
/// the promise made when they were opened.
#[utoipa::path(put, path = "/api/v1/support/targets/{priority}", tag = "support", security(("bearer" = [])),
    params(("priority" = String, Path, description = "low, normal, high or urgent")), request_body = TargetSet,
    responses((status = 200, body = TargetView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn target_set(
    State(st): State<AppState>,
    AdminAuth(ctx): AdminAuth,
    Path(priority): Path<String>,
    Json(r): Json<TargetSet>,
) -> ApiResult<axum::Json<TargetView>> {
    let t = support::set_target(
        &st.app,
        &ctx,
        support::SupportTarget {
            priority,
            first_response_minutes: r.first_response_minutes,
            resolution_minutes: r.resolution_minutes,
        },
    )
    .await?;
    Ok(axum::Json(target_view(t)))
}

/// A reply operators reuse.
#[derive(Debug, Serialize, ToSchema)]
pub struct CannedReplyView {
    pub id: String,
    pub title: String,
    pub body: String,
    pub created_by: String,
    pub created_at: String,
}

fn canned_view(c: support::CannedReply) -> CannedReplyView {
    CannedReplyView {
        id: c.id,
        title: c.title,
        body: c.body,
        created_by: c.created_by,
        created_at: ts(c.created_at),
    }
}

/// The canned replies (operators).
#[utoipa::path(get, path = "/api/v1/support/canned-replies", tag = "support", security(("bearer" = [])),
    responses((status = 200, body = Vec<CannedReplyView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn canned_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<CannedReplyView>>> {
    Ok(axum::Json(
        support::canned_list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(canned_view)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedReplyCreate {
    /// Unique, 100 characters at most.
    pub title: String,
    pub body: String,
}

/// Add a canned reply (support operators).
#[utoipa::path(post, path = "/api/v1/support/canned-replies", tag = "support", security(("bearer" = [])), request_body = CannedReplyCreate,
    responses((status = 201, body = CannedReplyView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn canned_create(
    State(st): State<AppState>,
    SupportAuth(ctx): SupportAuth,
    Json(r): Json<CannedReplyCreate>,
) -> ApiResult<(StatusCode, axum::Json<CannedReplyView>)> {
    let c = support::canned_create(&st.app, &ctx, &r.title, &r.body).await?;
    Ok((StatusCode::CREATED, axum::Json(canned_view(c))))
}

/// Delete a canned reply (support operators).
#[utoipa::path(delete, path = "/api/v1/support/canned-replies/{id}", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path, description = "Canned reply id")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn canned_delete(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    support::canned_delete(&st.app, &ctx, &uuid_path(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `YYYY-MM` (Paris) [default: this month].
    pub month: Option<String>,
}

/// One priority's line of the monthly report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRowView {
    /// `urgent`, `high`, `normal`, `low`, then `all`.
    pub priority: String,
    /// Tickets opened that month.
    pub tickets: i64,
    pub first_response_within: i64,
    /// Answered late, or not answered and past the deadline.
    pub first_response_breached: i64,
    pub resolution_within: i64,
    pub resolution_breached: i64,
    /// Share answered within target, per mille of those decided; absent when none is.
    pub first_response_share_permille: Option<i64>,
    pub resolution_share_permille: Option<i64>,
    pub ratings: i64,
    /// The mean rating × 100 (450 = 4.5); absent without ratings.
    pub mean_rating_x100: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub month: String,
    pub rows: Vec<ReportRowView>,
}

/// The month's report (support operators): tickets opened that month per priority, the
/// targets met and missed, the ratings.
#[utoipa::path(get, path = "/api/v1/support/report", tag = "support", security(("bearer" = [])), params(ReportQuery),
    responses((status = 200, body = ReportView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn report_get(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<ReportQuery>,
) -> ApiResult<axum::Json<ReportView>> {
    let month = match q.month {
        Some(m) => m,
        None => maocloud_billing::calendar::paris_date(st.app.now())
            .strftime("%Y-%m")
            .to_string(),
    };
    let rows = support::report(&st.app, &ctx, &month).await?;
    Ok(axum::Json(ReportView {
        month,
        rows: rows
            .into_iter()
            .map(|r| ReportRowView {
                priority: r.priority,
                tickets: r.tickets,
                first_response_within: r.first_response_within,
                first_response_breached: r.first_response_breached,
                resolution_within: r.resolution_within,
                resolution_breached: r.resolution_breached,
                first_response_share_permille: r.first_response_share_permille,
                resolution_share_permille: r.resolution_share_permille,
                ratings: r.ratings,
                mean_rating_x100: r.mean_rating_x100,
            })
            .collect(),
    }))
}

// ---- registered letters and public forms ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterRecord {
    pub subscriber_id: String,
    /// `YYYY-MM-DD`: the day the letter was received.
    pub received_on: String,
    /// `termination`, `credential_loss` or `other`.
    pub subject: String,
    /// What the letter says.
    pub summary: String,
    /// The letter's scan.
    pub scan: Option<AttachmentUpload>,
    /// Termination: the subscription the letter names.
    pub subscription_id: Option<String>,
    /// Termination: `month_end` (default) or `date`.
    pub end: Option<String>,
    /// Termination with `end` = `date`: `YYYY-MM-DD`, no later than 10 days after receipt.
    pub end_date: Option<String>,
}

fn date_field(field: &str, s: &str) -> Result<jiff::civil::Date, Error> {
    s.parse()
        .map_err(|_| Error::invalid(field, "must be a date YYYY-MM-DD"))
}

/// Record a registered letter with its date of receipt (support and billing operators,
/// R-7.2a): a termination letter terminates the subscription it names as of that date; a
/// credential-loss letter opens a report to decide; every letter is kept in the subscriber's
/// tickets with its scan.
#[utoipa::path(post, path = "/api/v1/support/letters", tag = "support", security(("bearer" = [])), request_body = LetterRecord,
    responses((status = 201, body = TicketDetailView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn letter_record(
    State(st): State<AppState>,
    DeskAuth(ctx): DeskAuth,
    Json(r): Json<LetterRecord>,
) -> ApiResult<(StatusCode, axum::Json<TicketDetailView>)> {
    let subscriber_id = r
        .subscriber_id
        .parse()
        .map_err(|_| Error::invalid("subscriber_id", "is not a subscriber id"))?;
    let subscription_id = r
        .subscription_id
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|_| Error::invalid("subscription_id", "is not a subscription id"))
        })
        .transpose()?;
    let input = support::LetterInput {
        subscriber_id,
        received_on: date_field("received_on", &r.received_on)?,
        subject: r.subject,
        summary: r.summary,
        scan: r.scan.map(|f| one_file("scan", f)).transpose()?,
        subscription_id,
        end: r.end,
        end_date: r
            .end_date
            .as_deref()
            .map(|d| date_field("end_date", d))
            .transpose()?,
    };
    let v = support::record_letter(&st.app, &ctx, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket_view(&ctx, v))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbuseReportBody {
    /// Where the desk answers you.
    pub reporter_email: String,
    pub reporter_name: Option<String>,
    /// What is abusive: an IP address, a bucket name (or `s3://bucket/key`), a VM id.
    pub resource: String,
    /// `spam`, `phishing`, `malware`, `attack`, `copyright`, `illegal_content` or `other`.
    pub kind: String,
    /// What happened (10 characters at least).
    pub description: String,
    /// At most 3 files (PDF, PNG, JPEG or plain text such as mail headers or logs).
    #[serde(default)]
    pub evidence: Vec<AttachmentUpload>,
}

/// The number to quote about a report.
#[derive(Debug, Serialize, ToSchema)]
pub struct AbuseReportReceived {
    pub number: i64,
}

/// Report abuse (anyone, no sign-in; R-4a): recorded against the resource and its subscriber
/// and handled by the abuse desk. A few reports per hour per address.
#[utoipa::path(post, path = "/api/v1/abuse-reports", tag = "support", request_body = AbuseReportBody,
    responses((status = 202, body = AbuseReportReceived), (status = 413, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn abuse_report(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(r): Json<AbuseReportBody>,
) -> ApiResult<(StatusCode, axum::Json<AbuseReportReceived>)> {
    let input = support::AbuseReportInput {
        reporter_email: r.reporter_email,
        reporter_name: r.reporter_name,
        resource: r.resource,
        kind: r.kind,
        description: r.description,
        evidence: decode_files("evidence", r.evidence)?,
    };
    let number = support::abuse_report(&st.app, &ip, input).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(AbuseReportReceived { number }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialLossReportBody {
    /// The account's email address.
    pub email: String,
    /// Your name, as on the identity document.
    pub name: String,
    /// What happened.
    pub statement: String,
    /// An identity document (PDF, PNG or JPEG, 5 MiB at most).
    pub proof: AttachmentUpload,
}

/// Report lost or stolen credentials (anyone, no sign-in; R-5a), with an identity document. The
/// desk checks it and, once confirmed, revokes every credential of the account and emails new
/// access. The answer is the same whatever the address; the account's owner is told by email.
#[utoipa::path(post, path = "/api/v1/credential-loss-reports", tag = "support", request_body = CredentialLossReportBody,
    responses((status = 202), (status = 413, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn credential_loss_report(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(r): Json<CredentialLossReportBody>,
) -> ApiResult<StatusCode> {
    let input = support::CredentialLossInput {
        email: r.email,
        name: r.name,
        statement: r.statement,
        proof: one_file("proof", r.proof)?,
    };
    support::credential_loss_report(&st.app, &ip, input).await?;
    Ok(StatusCode::ACCEPTED)
}
