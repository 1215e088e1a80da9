//! The support desk (R-1d) in the subscriber area, and its two public forms. A subscriber lists
//! their tickets, opens one (category, priority, their VMs, buckets and invoices it is about, up
//! to 3 attachments) with the response targets they are promised in view, follows the thread
//! (never the operators' internal notes: the use case leaves them out), replies with files,
//! closes with a rating and reopens. Anyone, signed in or not, reports abuse (R-4a) or lost or
//! stolen credentials with an identity document (R-5a) at `/abuse` and `/lost-credentials`;
//! these carry the double-submit CSRF token like sign-up, and the use cases limit them per
//! source address. The back office's side is `admin_support`; the views, the reading of forms
//! with files and the translation of the desk's reasons are shared from here.
//!
//! Forms with files are `multipart/form-data` with the CSRF token first: it is checked when the
//! first file arrives, before a byte of it is read, and again once the form is read. An
//! attachment is served as a download (`nosniff`, sandboxed), never inline. Another
//! subscriber's ticket and its attachments are the 404 page.
//!
//! The desk's reasons are the use cases' English fragments, translated from
//! `console.support.reason` (then the shared `reason` table). A notice after a redirect comes
//! back as `?done=<key>`, one of [`DONE`].

use super::account::cursor;
use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::storage::bytes_text;
use super::view::{self, when, when_opt};
use super::visitor::{SignedIn, Visitor};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::compute::vms;
use maocloud_app::i18n::{self, Lang};
use maocloud_app::model::AccountKind;
use maocloud_app::support::{
    self, AbuseReportInput, CredentialLossInput, NewAttachment, NewReply, NewTicket, Rating,
    ResourceRef, SupportTarget, Ticket, TicketFilter, TicketView,
};
use maocloud_app::{billing, storage, Error};
use maocloud_types::{PageRequest, Timestamp};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

/// A form's whole body: 3 attachments of 5 MiB and the fields around them.
pub(super) const FORM_LIMIT: usize =
    support::MAX_ATTACHMENTS * support::MAX_ATTACHMENT_BYTES + 1024 * 1024;
/// Tickets on one page of a list.
pub(super) const LIST_PAGE: u32 = 50;

/// The notices a page shows after a redirect (`?done=<key>`, `console.support.done.<key>`).
pub(super) const DONE: &[&str] = &[
    "opened",
    "replied",
    "closed",
    "rated",
    "reopened",
    "noted",
    "updated",
    "merged",
    "confirmed",
    "rejected",
    "letter",
    "canned_added",
    "canned_deleted",
    "target_saved",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/account/support",
            get(list)
                .post(open)
                .layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/account/support/new", get(new_form))
        .route("/account/support/{id}", get(detail))
        .route(
            "/account/support/{id}/reply",
            post(reply).layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/account/support/{id}/close", post(close))
        .route("/account/support/{id}/reopen", post(reopen))
        .route(
            "/account/support/{id}/attachments/{aid}",
            get(attachment_file),
        )
        .route(
            "/abuse",
            get(abuse_form)
                .post(abuse)
                .layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route(
            "/lost-credentials",
            get(lost_form)
                .post(lost)
                .layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
}

// --- Shared with the back office ---

/// A ticket or attachment id from a path: anything that is not one is a page that does not
/// exist.
pub(super) fn path_id(v: &Visitor, id: &str) -> Result<String, Response> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| v.fail(Error::NotFound))
}

/// A reason of the desk's use cases in `lang`: the desk's own catalog first, then the shared
/// `reason` table, else the English text.
pub(super) fn reason(lang: Lang, english: &str) -> String {
    if lang == Lang::En {
        return english.to_string();
    }
    let key = format!("console.support.reason.{english}");
    let text = i18n::t(lang, &key);
    if text != key {
        return text;
    }
    if let Some(n) = english
        .strip_prefix("this ticket was merged into #")
        .and_then(|r| r.strip_suffix(": reply there"))
    {
        return i18n::tf(lang, "console.support.merged_reply_there", &[("number", n)]);
    }
    i18n::reason(lang, english)
}

/// A reason as a sentence standing on its own (capital first, full stop last).
pub(super) fn sentence(lang: Lang, english: &str) -> String {
    let r = reason(lang, english);
    let mut chars = r.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return r,
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The label of a field of the desk's forms.
pub(super) fn field_label(lang: Lang, field: &str) -> String {
    i18n::t(lang, &format!("console.support.field.{field}"))
}

/// The field errors of a refused form, for the fields of that form: `attachments[1]` is shown
/// at the file input as "its-name.pdf: reason" (`files` are the names sent, in order), and
/// `rename` maps a use case's field to the form's. A refusal that is not about fields, or names
/// a field the form does not have (`fields`), comes back as `Err`.
pub(super) fn field_errors(
    lang: Lang,
    e: Error,
    fields: &[&str],
    files: &[String],
    rename: &(dyn Fn(&str) -> Option<&'static str> + Sync),
) -> Result<FieldErrors, Error> {
    let pairs: Vec<(String, String)> = match &e {
        Error::Invalid(list) => list
            .iter()
            .map(|f| (f.field.clone(), f.reason.clone()))
            .collect(),
        Error::Conflict {
            field: Some(f),
            reason,
        } => vec![(f.clone(), reason.clone())],
        _ => return Err(e),
    };
    let mut errors = FieldErrors::default();
    for (field, why) in pairs {
        let (base, index) = match field.split_once('[') {
            Some((b, rest)) => (
                b.to_string(),
                rest.trim_end_matches(']').parse::<usize>().ok(),
            ),
            None => (field.clone(), None),
        };
        let name = rename(&base).map(str::to_owned).unwrap_or(base);
        if !fields.contains(&name.as_str()) {
            return Err(e);
        }
        let text = match index.and_then(|i| files.get(i)) {
            Some(file) => i18n::tf(
                lang,
                "console.support.file_reason",
                &[("file", file), ("reason", &reason(lang, &why))],
            ),
            None => reason(lang, &why),
        };
        errors.push(&name, text);
    }
    if errors.is_empty() {
        return Err(e);
    }
    Ok(errors)
}

/// A refusal as one text for a page's alert (a conflict, or each invalid field with its
/// reason), with its status; anything else is an error page.
pub(super) fn refusal(v: &Visitor, e: &Error) -> Option<(StatusCode, String)> {
    match e {
        Error::Conflict { reason, .. } => Some((StatusCode::CONFLICT, sentence(v.lang, reason))),
        Error::Invalid(fields) => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            fields
                .iter()
                .map(|f| {
                    let base = f.field.split('[').next().unwrap_or(&f.field);
                    i18n::tf(
                        v.lang,
                        "console.form.summary_item",
                        &[
                            ("field", &field_label(v.lang, base)),
                            ("reason", &reason(v.lang, &f.reason)),
                        ],
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
        )),
        _ => None,
    }
}

pub(super) fn refusal_status(e: &Error) -> StatusCode {
    match e {
        Error::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The notice of a `?done=` key, if it is one of ours.
pub(super) fn done_notice(v: &Visitor, done: &str) -> Option<String> {
    DONE.iter()
        .find(|d| **d == done)
        .map(|d| v.t(&format!("console.support.done.{d}")))
}

/// `{value, label}` options of a select, labelled from `prefix.value`.
pub(super) fn options(lang: Lang, prefix: &str, values: &[&str]) -> Vec<Value> {
    values
        .iter()
        .map(|v| context! { value => v, label => i18n::t(lang, &format!("{prefix}.{v}")) })
        .collect()
}

/// A duration in minutes as people read a target: `30 min`, `4 h`, `2 j` / `2 d`, `1 h 30 min`.
pub(super) fn duration_text(lang: Lang, minutes: i64) -> String {
    let f = |key: &str, n: i64| i18n::tf(lang, key, &[("n", &n.to_string())]);
    if minutes >= 1440 && minutes % 1440 == 0 {
        f("console.support.days", minutes / 1440)
    } else if minutes >= 60 && minutes % 60 == 0 {
        f("console.support.hours", minutes / 60)
    } else if minutes > 60 {
        i18n::tf(
            lang,
            "console.support.hours_minutes",
            &[
                ("h", &(minutes / 60).to_string()),
                ("n", &(minutes % 60).to_string()),
            ],
        )
    } else {
        f("console.support.minutes", minutes)
    }
}

/// The response targets, highest priority first.
pub(super) fn targets_view(lang: Lang, list: &[SupportTarget]) -> Vec<Value> {
    list.iter()
        .map(|t| {
            context! {
                priority => &t.priority,
                first_response_minutes => t.first_response_minutes,
                resolution_minutes => t.resolution_minutes,
                first_response => duration_text(lang, t.first_response_minutes),
                resolution => duration_text(lang, t.resolution_minutes),
            }
        })
        .collect()
}

/// Where a ticket's deadlines stand at `now`.
pub(super) struct Deadlines {
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    /// Escalated (80 % of a target gone) and not breached yet.
    pub at_risk: bool,
}

pub(super) fn deadlines(t: &Ticket, now: Timestamp) -> Deadlines {
    let active = !matches!(t.status.as_str(), "resolved" | "closed") && t.merged_into.is_none();
    let fr_open = active && t.first_response_at.is_none();
    let res_open = active && t.resolved_at.is_none();
    let first_response_breached =
        t.first_response_breached || (fr_open && now >= t.first_response_due_at);
    let resolution_breached = t.resolution_breached || (res_open && now >= t.resolution_due_at);
    let warned =
        |stage: i64, due: Timestamp| stage >= 1 || now >= support::warn_at(t.created_at, due);
    let at_risk = !first_response_breached
        && !resolution_breached
        && ((fr_open && warned(t.first_response_stage, t.first_response_due_at))
            || (res_open && warned(t.resolution_stage, t.resolution_due_at)));
    Deadlines {
        first_response_breached,
        resolution_breached,
        at_risk,
    }
}

fn detail_str(t: &Ticket, key: &str) -> Option<String> {
    t.detail
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// A ticket's facts as templates show them (`base`: `/account/support` or `/admin/support`).
pub(super) fn ticket_value(t: &Ticket, now: Timestamp, base: &str) -> Value {
    let d = deadlines(t, now);
    context! {
        id => &t.id,
        number => t.number,
        url => format!("{base}/{}", t.id),
        kind => &t.kind,
        subject => &t.subject,
        category => &t.category,
        priority => &t.priority,
        status => &t.status,
        source => &t.source,
        subscriber_id => t.subscriber_id.map(|s| s.to_string()),
        contact_email => &t.contact_email,
        contact_name => &t.contact_name,
        assignee_id => &t.assignee_id,
        merged_into => &t.merged_into,
        merged_url => t.merged_into.as_ref().map(|m| format!("{base}/{m}")),
        resources => t.resources.iter().map(|r| context! { kind => &r.kind, id => &r.id, label => &r.label }).collect::<Vec<_>>(),
        created_at => when(t.created_at),
        updated_at => when(t.updated_at),
        first_response_due_at => when(t.first_response_due_at),
        resolution_due_at => when(t.resolution_due_at),
        first_response_at => when_opt(t.first_response_at),
        resolved_at => when_opt(t.resolved_at),
        closed_at => when_opt(t.closed_at),
        first_response_breached => d.first_response_breached,
        resolution_breached => d.resolution_breached,
        breached => d.first_response_breached || d.resolution_breached,
        at_risk => d.at_risk,
        rating => t.rating,
        rating_comment => &t.rating_comment,
        can_reopen => matches!(t.status.as_str(), "resolved" | "closed") && t.merged_into.is_none(),
        can_close => t.status != "closed" && t.merged_into.is_none(),
        can_rate => t.status == "closed" && t.rating.is_none() && t.merged_into.is_none(),
        // What the public forms and letters recorded.
        abuse_kind => detail_str(t, "abuse_kind"),
        reported => detail_str(t, "reported"),
        reporter_ip => detail_str(t, "reporter_ip"),
        claimed_name => detail_str(t, "claimed_name"),
        decision => detail_str(t, "status"),
        decided_by => detail_str(t, "decided_by"),
        decided_at => detail_str(t, "decided_at"),
        s3_keys_revoked => t.detail.get("s3_keys_revoked").and_then(|v| v.as_i64()),
        received_on => detail_str(t, "received_on"),
        letter_subject => detail_str(t, "letter_subject"),
        termination_id => detail_str(t, "termination_id"),
        end_date => detail_str(t, "end_date"),
    }
}

/// A ticket's thread as its reader may see it, attachments linked under `base`.
pub(super) fn thread_value(lang: Lang, view: &TicketView, base: &str) -> Vec<Value> {
    view.thread
        .iter()
        .map(|m| {
            let msg = &m.message;
            context! {
                id => &msg.id,
                author_kind => &msg.author_kind,
                author_label => &msg.author_label,
                internal => msg.internal,
                via => &msg.via,
                created_at => when(msg.created_at),
                body_html => view::linkify(&msg.body),
                attachments => m.attachments.iter().map(|a| context! {
                    id => &a.id,
                    file_name => &a.file_name,
                    content_type => &a.content_type,
                    size => bytes_text(lang, a.size),
                    url => format!("{base}/{}/attachments/{}", view.ticket.id, a.id),
                }).collect::<Vec<_>>(),
            }
        })
        .collect()
}

/// An attachment as a download, if the reader may see the message carrying it (operators'
/// reads are audited by the use case).
pub(super) async fn attachment_download(
    st: &AppState,
    s: &SignedIn,
    ticket: &str,
    id: &str,
) -> Page {
    let ticket = path_id(&s.v, ticket)?;
    let id = path_id(&s.v, id)?;
    let (meta, bytes) = support::attachment(&st.app, &s.ctx, &ticket, &id)
        .await
        .map_err(|e| s.v.fail(e))?;
    // Only the types the desk accepts, and only as files to save.
    let content_type: &'static str = match meta.content_type.as_str() {
        "application/pdf" => "application/pdf",
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "text/plain" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&crate::content_disposition(&meta.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(r)
}

// --- Forms with files ---

/// Whose token a form carries: the session's, or the double-submit cookie's (public forms).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    Session,
    Anon,
}

/// A `multipart/form-data` form as read: its text fields in order and its files.
#[derive(Default)]
pub(super) struct Multi {
    text: Vec<(String, String)>,
    files: Vec<(String, NewAttachment)>,
}

impl Multi {
    /// The last value of a text field ("" when absent).
    pub fn text(&self, name: &str) -> String {
        self.text
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.text
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The files of one file input, in the order sent.
    pub fn files(&mut self, name: &str) -> Vec<NewAttachment> {
        let (mine, rest) = std::mem::take(&mut self.files)
            .into_iter()
            .partition(|(k, _)| k == name);
        self.files = rest;
        mine.into_iter().map(|(_, a)| a).collect()
    }
}

/// A file name as browsers send it, without any directory part.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or("").trim()
}

/// The type of a sent file: from its extension when it is one the desk knows (the use case
/// checks the bytes against it), else what the browser said, without parameters.
fn file_type(sent: Option<&str>, name: &str) -> String {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let known = match ext.as_str() {
        "pdf" => Some("application/pdf"),
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "txt" | "log" => Some("text/plain"),
        _ => None,
    };
    match known {
        Some(k) => k.to_owned(),
        None => sent
            .and_then(|s| s.split(';').next())
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "application/octet-stream".into()),
    }
}

/// Reads a form with files. Its token is checked at the first file (before reading it) and
/// at the end; a form without the right token is the 403 page and nothing is done.
pub(super) async fn read_form(
    v: &Visitor,
    mut body: Multipart,
    token: Token,
) -> Result<Multi, Response> {
    let check = |csrf: &str| match token {
        Token::Session => v.check_csrf(csrf),
        Token::Anon => v.check_anon_csrf(csrf),
    };
    let mut csrf = String::new();
    let mut out = Multi::default();
    loop {
        let field = match body.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(unreadable(v, e.status())),
        };
        let name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            None => {
                let text = field.text().await.map_err(|e| unreadable(v, e.status()))?;
                if name == "csrf" {
                    csrf = text;
                } else {
                    out.text.push((name, text));
                }
            }
            Some(file_name) => {
                check(&csrf)?;
                let file_name = base_name(&file_name).to_owned();
                let sent = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(|e| unreadable(v, e.status()))?;
                // A file input left empty still sends a part, nameless and empty.
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                out.files.push((
                    name,
                    NewAttachment {
                        content_type: file_type(sent.as_deref(), &file_name),
                        file_name,
                        bytes: bytes.to_vec(),
                    },
                ));
            }
        }
    }
    check(&csrf)?;
    Ok(out)
}

/// A body that could not be read: too large, or not a form.
fn unreadable(v: &Visitor, status: StatusCode) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let max = (support::MAX_ATTACHMENT_BYTES / (1024 * 1024)).to_string();
        let count = support::MAX_ATTACHMENTS.to_string();
        v.status_page(
            status,
            "console.support.too_large_title",
            i18n::tf(
                v.lang,
                "console.support.too_large",
                &[("max", &max), ("count", &count)],
            ),
        )
    } else {
        v.status_page(
            StatusCode::BAD_REQUEST,
            "console.error.invalid_title",
            v.t("console.error.bad_form"),
        )
    }
}

fn file_names(files: &[NewAttachment]) -> Vec<String> {
    files.iter().map(|f| f.file_name.clone()).collect()
}

// --- The subscriber's tickets ---

/// These pages are the subscriber's; operators work the desk from the back office.
fn subscribers_only(s: &SignedIn, operators_go: &str) -> Result<(), Response> {
    match s.account.kind {
        AccountKind::Subscriber => Ok(()),
        AccountKind::Operator => Err(s.v.redirect(operators_go)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    cursor: String,
    done: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn list(State(st): State<AppState>, s: SignedIn, RawQuery(raw): RawQuery) -> Page {
    subscribers_only(&s, "/admin/support")?;
    let q: PageQuery = forms::query(raw.as_deref());
    let page = PageRequest {
        limit: LIST_PAGE,
        after: cursor(&q.cursor),
    };
    let listing = support::list(&st.app, &s.ctx, TicketFilter::default(), &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let now = st.app.now();
    let ctx = context! {
        section => "account",
        tickets => listing.items.iter().map(|t| ticket_value(t, now, "/account/support")).collect::<Vec<_>>(),
        next_url => listing.next_cursor.map(|c| format!("/account/support?cursor={c}")),
        first_url => cursor(&q.cursor).map(|_| "/account/support"),
        notice => done_notice(&s.v, &q.done),
    };
    Ok(s.v.page(StatusCode::OK, "account/support.html", ctx))
}

/// The new-ticket form as typed (files are not sent back: the browser cannot be given them).
#[derive(Debug, Default, Serialize)]
struct TicketForm {
    subject: String,
    category: String,
    priority: String,
    message: String,
    resources: Vec<String>,
}

async fn new_form(State(st): State<AppState>, s: SignedIn) -> Page {
    subscribers_only(&s, "/admin/support")?;
    let form = TicketForm {
        category: "technical".into(),
        priority: "normal".into(),
        ..TicketForm::default()
    };
    new_page(&st, &s, StatusCode::OK, &form, None, None).await
}

async fn new_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &TicketForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Page {
    let fail = |e| s.v.fail(e);
    let lang = s.v.lang;
    let targets = support::targets(&st.app).await.map_err(fail)?;
    let vm_list = vms::list(&st.app, &s.ctx, None, &PageRequest::first(100))
        .await
        .map_err(fail)?;
    let buckets = storage::bucket_list(&st.app, &s.ctx).await.map_err(fail)?;
    let invoices =
        billing::document_list(&st.app, &s.ctx, "invoice", None, &PageRequest::first(24))
            .await
            .map_err(fail)?;
    let resource = |kind: &str, id: String, label: String| {
        let value = format!("{kind}:{id}");
        context! {
            checked => form.resources.contains(&value),
            value => value,
            label => label,
        }
    };
    let vms: Vec<Value> = vm_list
        .iter()
        .filter(|v| v.state != "deleted")
        .map(|v| resource("vm", v.id.to_string(), v.name.clone()))
        .collect();
    let buckets: Vec<Value> = buckets
        .iter()
        .map(|b| resource("bucket", b.name.clone(), b.name.clone()))
        .collect();
    let invoices: Vec<Value> = invoices
        .items
        .iter()
        .map(|i| {
            let label = i18n::tf(
                lang,
                "console.support.invoice_label",
                &[("number", &i.number), ("date", &i.issue_date)],
            );
            resource("invoice", i.id.to_string(), label)
        })
        .collect();
    let ctx = context! {
        section => "account",
        form => form,
        categories => options(lang, "support.category", &support::CATEGORIES),
        priorities => options(lang, "support.priority", &support::PRIORITIES),
        targets => targets_view(lang, &targets),
        vms => vms,
        buckets => buckets,
        invoices => invoices,
        max_files => support::MAX_ATTACHMENTS,
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        alert => alert,
    };
    Ok(s.v.page(status, "account/support_new.html", with_errors(ctx, errors)))
}

async fn open(State(st): State<AppState>, s: SignedIn, body: Multipart) -> Page {
    subscribers_only(&s, "/admin/support")?;
    let mut f = read_form(&s.v, body, Token::Session).await?;
    let form = TicketForm {
        subject: f.text("subject"),
        category: f.text("category"),
        priority: f.text("priority"),
        message: f.text("message"),
        resources: f.all("resources"),
    };
    let attachments = f.files("attachments");
    let names = file_names(&attachments);
    let resources = form
        .resources
        .iter()
        .filter_map(|r| r.split_once(':'))
        .map(|(kind, id)| ResourceRef {
            kind: kind.to_owned(),
            id: id.to_owned(),
        })
        .collect();
    let input = NewTicket {
        subject: form.subject.clone(),
        category: form.category.trim().to_owned(),
        priority: form.priority.trim().to_owned(),
        body: form.message.clone(),
        resources,
        attachments,
        source: "console".into(),
    };
    match support::open(&st.app, &s.ctx, input).await {
        Ok(view) => {
            Ok(s.v.redirect(&format!("/account/support/{}?done=opened", view.ticket.id)))
        }
        Err(e) => {
            let status = refusal_status(&e);
            let fields = [
                "subject",
                "category",
                "priority",
                "message",
                "resources",
                "attachments",
            ];
            match field_errors(s.v.lang, e, &fields, &names, &|_| None) {
                Ok(errors) => new_page(&st, &s, status, &form, Some(errors), None).await,
                Err(e) => match refusal(&s.v, &e) {
                    Some((status, alert)) => {
                        new_page(&st, &s, status, &form, None, Some(alert)).await
                    }
                    None => Err(s.v.fail(e)),
                },
            }
        }
    }
}

/// A form of the ticket page that was refused: which one, its errors or alert, what was typed.
#[derive(Default)]
struct Refused {
    form: &'static str,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    message: String,
    rating: String,
    comment: String,
}

async fn detail(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Page {
    let id = path_id(&s.v, &id)?;
    subscribers_only(&s, &format!("/admin/support/{id}"))?;
    let q: PageQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q.done);
    ticket_page(&st, &s, &id, StatusCode::OK, notice, Refused::default()).await
}

async fn ticket_page(
    st: &AppState,
    s: &SignedIn,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    refused: Refused,
) -> Page {
    let lang = s.v.lang;
    let view = support::get(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let base = "/account/support";
    let ctx = context! {
        section => "account",
        ticket => ticket_value(&view.ticket, st.app.now(), base),
        thread => thread_value(lang, &view, base),
        assignee_name => &view.assignee_name,
        ratings => ["5", "4", "3", "2", "1"],
        max_files => support::MAX_ATTACHMENTS,
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        refused => refused.form,
        alert => refused.alert,
        reply_form => context! { message => refused.message },
        close_form => context! { rating => refused.rating, comment => refused.comment },
        notice => notice,
    };
    Ok(s.v.page(
        status,
        "account/support_ticket.html",
        with_errors(ctx, refused.errors),
    ))
}

async fn reply(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    body: Multipart,
) -> Page {
    let id = path_id(&s.v, &id)?;
    subscribers_only(&s, &format!("/admin/support/{id}"))?;
    let mut f = read_form(&s.v, body, Token::Session).await?;
    let message = f.text("message");
    let attachments = f.files("attachments");
    let names = file_names(&attachments);
    let input = NewReply {
        body: message.clone(),
        attachments,
        ..NewReply::default()
    };
    match support::reply(&st.app, &s.ctx, &id, input).await {
        Ok(_) => {
            Ok(s.v.redirect(&format!("/account/support/{id}?done=replied#thread")))
        }
        Err(e) => {
            let status = refusal_status(&e);
            let mut refused = Refused {
                form: "reply",
                message,
                ..Refused::default()
            };
            match field_errors(s.v.lang, e, &["message", "attachments"], &names, &|_| None) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(&s.v, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            ticket_page(&st, &s, &id, status, None, refused).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CloseForm {
    csrf: String,
    rating: String,
    comment: String,
}

async fn close(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CloseForm>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    subscribers_only(&s, &format!("/admin/support/{id}"))?;
    s.v.check_csrf(&form.csrf)?;
    let mut refused = Refused {
        form: "close",
        rating: form.rating.clone(),
        comment: form.comment.clone(),
        ..Refused::default()
    };
    let score = form.rating.trim();
    let rating = if score.is_empty() {
        if !form.comment.trim().is_empty() {
            let mut errors = FieldErrors::default();
            errors.push("rating", s.v.t("console.support.rating_needed"));
            refused.errors = Some(errors);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return ticket_page(&st, &s, &id, status, None, refused).await;
        }
        None
    } else {
        Some(Rating {
            score: score.parse().unwrap_or(0),
            comment: forms::opt(&form.comment),
        })
    };
    let rated = rating.is_some();
    match support::close(&st.app, &s.ctx, &id, rating).await {
        Ok(_) => {
            let done = if rated { "rated" } else { "closed" };
            Ok(s.v.redirect(&format!("/account/support/{id}?done={done}")))
        }
        Err(e) => {
            let status = refusal_status(&e);
            match field_errors(s.v.lang, e, &["rating", "comment"], &[], &|_| None) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(&s.v, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            ticket_page(&st, &s, &id, status, None, refused).await
        }
    }
}

async fn reopen(
    State(st): State<AppState>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    subscribers_only(&s, &format!("/admin/support/{id}"))?;
    s.v.check_csrf(&form.csrf)?;
    match support::reopen(&st.app, &s.ctx, &id).await {
        Ok(_) => {
            Ok(s.v.redirect(&format!("/account/support/{id}?done=reopened")))
        }
        Err(e) => match refusal(&s.v, &e) {
            Some((status, alert)) => {
                let refused = Refused {
                    form: "reopen",
                    alert: Some(alert),
                    ..Refused::default()
                };
                ticket_page(&st, &s, &id, status, None, refused).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

async fn attachment_file(
    State(st): State<AppState>,
    s: SignedIn,
    Path((id, aid)): Path<(String, String)>,
) -> Page {
    subscribers_only(&s, "/admin/support")?;
    attachment_download(&st, &s, &id, &aid).await
}

// --- Public forms: abuse reports (R-4a), lost or stolen credentials (R-5a) ---

#[derive(Debug, Default, Serialize)]
struct AbuseForm {
    reporter_email: String,
    reporter_name: String,
    resource: String,
    kind: String,
    description: String,
}

async fn abuse_form(v: Visitor) -> Response {
    abuse_page(&v, StatusCode::OK, &AbuseForm::default(), None, None, None)
}

fn abuse_page(
    v: &Visitor,
    status: StatusCode,
    form: &AbuseForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    sent: Option<i64>,
) -> Response {
    let mut kinds = vec![context! { value => "", label => v.t("console.abuse.choose_kind") }];
    kinds.extend(options(v.lang, "console.abuse.kind", &support::ABUSE_KINDS));
    let ctx = context! {
        section => "abuse",
        form => form,
        kinds => kinds,
        sent_number => sent,
        max_files => support::MAX_ATTACHMENTS,
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        alert => alert,
    };
    v.page(status, "abuse.html", with_errors(ctx, errors))
}

/// A 429 from a public form: the form again, with when to try again.
fn too_many(r: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

async fn abuse(State(st): State<AppState>, v: Visitor, body: Multipart) -> Page {
    let mut f = read_form(&v, body, Token::Anon).await?;
    let form = AbuseForm {
        reporter_email: f.text("reporter_email").trim().to_owned(),
        reporter_name: f.text("reporter_name"),
        resource: f.text("resource"),
        kind: f.text("kind").trim().to_owned(),
        description: f.text("description"),
    };
    let evidence = f.files("evidence");
    let names = file_names(&evidence);
    let input = AbuseReportInput {
        reporter_email: form.reporter_email.clone(),
        reporter_name: forms::opt(&form.reporter_name),
        resource: form.resource.clone(),
        kind: form.kind.clone(),
        description: form.description.clone(),
        evidence,
    };
    match support::abuse_report(&st.app, &v.ip, input).await {
        Ok(number) => Ok(abuse_page(
            &v,
            StatusCode::OK,
            &AbuseForm::default(),
            None,
            None,
            Some(number),
        )),
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let alert = Some(v.too_many(retry_after_secs));
            let mut r = abuse_page(&v, StatusCode::TOO_MANY_REQUESTS, &form, None, alert, None);
            too_many(&mut r, retry_after_secs);
            Ok(r)
        }
        Err(e) => {
            let fields = [
                "reporter_email",
                "reporter_name",
                "resource",
                "kind",
                "description",
                "evidence",
            ];
            match field_errors(v.lang, e, &fields, &names, &|_| None) {
                Ok(errors) => Ok(abuse_page(
                    &v,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &form,
                    Some(errors),
                    None,
                    None,
                )),
                Err(e) => Err(v.fail(e)),
            }
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct LostForm {
    email: String,
    name: String,
    statement: String,
}

async fn lost_form(v: Visitor) -> Response {
    lost_page(&v, StatusCode::OK, &LostForm::default(), None, None, false)
}

fn lost_page(
    v: &Visitor,
    status: StatusCode,
    form: &LostForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    sent: bool,
) -> Response {
    let ctx = context! {
        section => "lost_credentials",
        form => form,
        sent => sent,
        max_mib => support::MAX_ATTACHMENT_BYTES / (1024 * 1024),
        alert => alert,
    };
    v.page(status, "lost_credentials.html", with_errors(ctx, errors))
}

async fn lost(State(st): State<AppState>, v: Visitor, body: Multipart) -> Page {
    let mut f = read_form(&v, body, Token::Anon).await?;
    let form = LostForm {
        email: f.text("email").trim().to_owned(),
        name: f.text("name"),
        statement: f.text("statement"),
    };
    let proof = f.files("proof").into_iter().next();
    let missing = proof.is_none();
    let input = CredentialLossInput {
        email: form.email.clone(),
        name: form.name.clone(),
        statement: form.statement.clone(),
        proof: proof.unwrap_or(NewAttachment {
            file_name: String::new(),
            content_type: String::new(),
            bytes: vec![],
        }),
    };
    match support::credential_loss_report(&st.app, &v.ip, input).await {
        // The same answer whether the address is a subscriber's or not.
        Ok(()) => Ok(lost_page(
            &v,
            StatusCode::OK,
            &LostForm::default(),
            None,
            None,
            true,
        )),
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let alert = Some(v.too_many(retry_after_secs));
            let mut r = lost_page(&v, StatusCode::TOO_MANY_REQUESTS, &form, None, alert, false);
            too_many(&mut r, retry_after_secs);
            Ok(r)
        }
        Err(e) => {
            let fields = ["email", "name", "statement", "proof"];
            match field_errors(v.lang, e, &fields, &[], &|_| None) {
                Ok(found) => {
                    // No file chosen reads better than "a file name that is empty".
                    let mut errors = FieldErrors::default();
                    for (field, text) in found.pairs() {
                        if field == "proof" && missing {
                            errors.push("proof", v.t("console.support.no_file"));
                        } else {
                            errors.push(&field, text);
                        }
                    }
                    Ok(lost_page(
                        &v,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &form,
                        Some(errors),
                        None,
                        false,
                    ))
                }
                Err(e) => Err(v.fail(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_durations() {
        assert_eq!(duration_text(Lang::En, 30), "30 min");
        assert_eq!(duration_text(Lang::En, 240), "4 h");
        assert_eq!(duration_text(Lang::En, 90), "1 h 30 min");
        assert_eq!(duration_text(Lang::En, 2880), "2 d");
        assert_eq!(duration_text(Lang::Fr, 2880), "2\u{a0}j");
        assert_eq!(duration_text(Lang::Fr, 60), "1\u{a0}h");
    }

    #[test]
    fn sent_files_get_the_type_their_name_says() {
        assert_eq!(
            file_type(Some("application/octet-stream"), "a.PDF"),
            "application/pdf"
        );
        assert_eq!(file_type(Some("text/x-log"), "boot.log"), "text/plain");
        assert_eq!(
            file_type(Some("text/html; charset=utf-8"), "x.html"),
            "text/html"
        );
        assert_eq!(file_type(None, "x"), "application/octet-stream");
        assert_eq!(base_name("C:\\Users\\me\\capture.png"), "capture.png");
    }

    #[test]
    fn the_desks_reasons_land_next_to_their_fields_in_french() {
        let e = Error::Invalid(vec![
            maocloud_app::FieldError {
                field: "attachments[1]".into(),
                reason: "has a file-name extension that does not match its type".into(),
            },
            maocloud_app::FieldError {
                field: "subject".into(),
                reason: "is required".into(),
            },
        ]);
        let files = vec!["a.pdf".to_string(), "b.exe".to_string()];
        let errors =
            field_errors(Lang::Fr, e, &["subject", "attachments"], &files, &|_| None).unwrap();
        let pairs = errors.pairs();
        assert_eq!(pairs[0].0, "attachments");
        assert!(pairs[0].1.starts_with("b.exe"), "{pairs:?}");
        assert!(
            !pairs[0].1.contains("extension that"),
            "translated: {pairs:?}"
        );
        assert_eq!(pairs[1], ("subject".into(), "est obligatoire".into()));
        // A field the form does not have is no form error.
        let e = Error::invalid("into", "must be another ticket");
        assert!(field_errors(Lang::Fr, e, &["message"], &[], &|_| None).is_err());
        assert_eq!(
            reason(Lang::Fr, "this ticket was merged into #12: reply there"),
            i18n::tf(
                Lang::Fr,
                "console.support.merged_reply_there",
                &[("number", "12")]
            )
        );
    }

    #[test]
    fn downloads_name_the_file_safely() {
        assert_eq!(
            crate::content_disposition("relevé \"mai\".pdf"),
            "attachment; filename=\"relev_ _mai_.pdf\"; filename*=UTF-8''relev%C3%A9%20%22mai%22.pdf"
        );
    }
}
