//! The contract's lifecycle in the subscriber area: terminating a subscription online (R-7.2,
//! ) and withdrawing it while scheduled, the suspensions of the account with what lifts
//! them, the documents operators asked for with their upload, and the terms
//! versions with the notices received and their penalty-free window.
//!
//! The records come from `maocloud_app` (suspension, proofs, termination, terms); the views
//! built here (`*_view!`) are shared with the back office (`admin_contract`).

use super::billing::subscription_page_with;
use super::forms::{self, Form};
use super::view::{self, when};
use super::visitor::{SignedIn, Visitor};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::model::AccountKind;
use maocloud_app::termination::{self, Dues, TerminationInput, TerminationView};
use maocloud_app::{i18n, proofs, suspension, terms, Error};
use maocloud_billing::calendar::paris_date;
use maocloud_types::SubscriptionId;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/subscriptions/{id}/terminate", post(terminate))
        .route(
            "/account/subscriptions/{id}/termination/withdraw",
            post(withdraw),
        )
        .route("/account/suspensions", get(suspensions))
        .route("/account/documents", get(documents))
        .route(
            "/account/documents/{id}/upload",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/account/documents/{id}/file", get(document_file))
        .route("/account/terms", get(terms_page))
}

/// A proof document and the form fields around it.
const UPLOAD_LIMIT: usize = proofs::MAX_SIZE + 64 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

/// The refusal of an action as one text: a conflict's reason, or every invalid field with its
/// reason (`field_key` names a field in the visitor's language).
pub(super) fn refusal_text(v: &Visitor, e: &Error) -> Option<String> {
    match e {
        Error::Conflict { reason, .. } => Some(v.reason_sentence(reason)),
        Error::Invalid(fields) => Some(
            fields
                .iter()
                .map(|f| {
                    let field = v.t(&format!("console.field.{}", f.field));
                    i18n::tf(
                        v.lang,
                        "console.form.summary_item",
                        &[
                            ("field", &field),
                            ("reason", &i18n::reason(v.lang, &f.reason)),
                        ],
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
        ),
        _ => None,
    }
}

pub(super) fn refusal_status(e: &Error) -> StatusCode {
    match e {
        Error::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A catalog text, or `fallback`'s when the catalog has no text for `key`.
pub(super) fn t_or(v: &Visitor, key: &str, fallback: &str) -> String {
    let text = v.t(key);
    if text == key {
        v.t(fallback)
    } else {
        text
    }
}

/// What lifts a suspension of this cause, in the visitor's language.
pub(super) fn what_lifts(v: &Visitor, cause: &str) -> String {
    t_or(
        v,
        &format!("console.suspension.lifts.{cause}"),
        "console.suspension.lifts.other",
    )
}

/// A suspension as templates show it (`$v`: the visitor, for what lifts it).
macro_rules! suspension_view {
    ($v:expr, $s:expr) => {{
        let s = $s;
        minijinja::context! {
            id => &s.id,
            subscriber_id => s.subscriber_id.to_string(),
            cause => &s.cause,
            reason => &s.reason,
            status => &s.status,
            created_by => &s.created_by,
            created_at => $crate::console::view::when(s.created_at),
            started_at => $crate::console::view::when_opt(s.started_at),
            lifted_at => $crate::console::view::when_opt(s.lifted_at),
            lifted_by => &s.lifted_by,
            lift_reason => &s.lift_reason,
            lifts => $crate::console::contract::what_lifts($v, &s.cause),
        }
    }};
}
pub(super) use suspension_view;

/// A proof request as templates show it.
macro_rules! proof_view {
    ($p:expr) => {{
        let p = $p;
        minijinja::context! {
            id => &p.id,
            subscriber_id => p.subscriber_id.to_string(),
            kind => &p.kind,
            note => &p.note,
            status => &p.status,
            requested_by => &p.requested_by,
            requested_at => $crate::console::view::when(p.requested_at),
            requested_on => &p.requested_on,
            file_name => &p.file_name,
            content_type => &p.content_type,
            size_kib => p.size.map(|s| (s + 1023) / 1024),
            submitted_at => $crate::console::view::when_opt(p.submitted_at),
            decided_at => $crate::console::view::when_opt(p.decided_at),
            decided_by => &p.decided_by,
            decision_reason => &p.decision_reason,
            can_upload => p.status == "open" || p.status == "rejected",
        }
    }};
}
pub(super) use proof_view;

/// A termination and where its dues stand.
pub(super) fn termination_view(t: &TerminationView) -> Value {
    let x = &t.termination;
    context! {
        id => &x.id,
        subscription_id => x.subscription_id.to_string(),
        subscriber_id => x.subscriber_id.to_string(),
        channel => &x.channel,
        received_on => &x.received_on,
        end_choice => &x.end_choice,
        end_date => &x.end_date,
        reason => &x.reason,
        status => &x.status,
        recorded_by => &x.recorded_by,
        created_at => when(x.created_at),
        final_invoice_id => x.final_invoice_id.map(|i| i.to_string()),
        erase_on => &x.erase_on,
        commitment_end => &t.commitment_end,
        dues => t.dues.code(),
        dues_amount => t.dues.amount().0,
        dues_terms => match &t.dues {
            Dues::WaivedTerms(v) => Some(v.clone()),
            _ => None,
        },
        reason_status => &t.reason_status,
        scheduled => x.status == "scheduled",
    }
}

// --- Termination (R-7.2, R-7.3) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct TerminateForm {
    #[serde(skip_serializing)]
    csrf: String,
    pub end: String,
    pub date: String,
    pub reason: String,
}

/// The context the subscription page adds: each subscription's current termination, the
/// termination form's choices and, after a refusal, which form it was and why.
pub(super) async fn subscription_extra(
    st: &AppState,
    s: &SignedIn,
    refused: Option<(String, String, TerminateForm)>,
) -> Result<Value, Response> {
    let list = termination::list(&st.app, &s.ctx, None)
        .await
        .map_err(|e| s.v.fail(e))?;
    let mut current = std::collections::BTreeMap::new();
    // Newest first: the first one of each subscription that was not withdrawn.
    for t in list.iter().filter(|t| t.termination.status != "withdrawn") {
        current
            .entry(t.termination.subscription_id.to_string())
            .or_insert_with(|| termination_view(t));
    }
    let today = paris_date(st.app.now());
    let latest = today
        .checked_add(jiff::Span::new().days(termination::MAX_DAYS_AFTER_RECEIPT))
        .unwrap_or(today);
    let (term_refused_id, term_alert, term_form) = match refused {
        Some((id, alert, form)) => (Some(id), Some(alert), Some(form)),
        None => (None, None, None),
    };
    Ok(context! {
        terminations => current,
        reasons => termination::REASONS,
        today => today.to_string(),
        latest => latest.to_string(),
        term_refused_id => term_refused_id,
        term_alert => term_alert,
        term_form => term_form,
    })
}

async fn terminate(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<TerminateForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let sub: SubscriptionId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let end = form.end.trim().to_owned();
    let date = match forms::opt(&form.date).filter(|_| end == "date") {
        None => Ok(None),
        Some(d) => d.parse::<jiff::civil::Date>().map(Some).map_err(|_| {
            i18n::tf(
                s.v.lang,
                "console.form.summary_item",
                &[
                    ("field", &s.v.t("console.field.date")),
                    ("reason", &s.v.t("console.form.not_a_date")),
                ],
            )
        }),
    };
    let result = match date {
        Ok(date) => {
            let input = TerminationInput {
                end,
                date,
                reason: forms::opt(&form.reason),
                received_on: None,
            };
            termination::request(&st.app, &s.ctx, sub, input)
                .await
                .map_err(|e| match refusal_text(&s.v, &e) {
                    Some(text) => Ok((refusal_status(&e), text)),
                    None => Err(e),
                })
        }
        Err(text) => Err(Ok((StatusCode::UNPROCESSABLE_ENTITY, text))),
    };
    match result {
        Ok(_) => {
            s.v.flash("termination_scheduled");
            Ok(s.v.redirect("/account/subscription"))
        }
        Err(Ok((status, alert))) => {
            let extra = subscription_extra(&st, &s, Some((sub.to_string(), alert, form))).await?;
            subscription_page_with(&st, &s, status, None, extra).await
        }
        Err(Err(e)) => Err(s.v.fail(e)),
    }
}

async fn withdraw(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let sub: SubscriptionId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    termination::withdraw(&st.app, &s.ctx, sub)
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("termination_withdrawn");
    Ok(s.v.redirect("/account/subscription"))
}

// --- Suspensions (R-7.1) ---

/// The active suspensions of the signed-in subscriber, for the banner of their pages.
pub(super) async fn active_suspensions(
    st: &AppState,
    s: &SignedIn,
) -> Result<Vec<Value>, Response> {
    let list = suspension::list(&st.app, &s.ctx, None)
        .await
        .map_err(|e| s.v.fail(e))?;
    Ok(list
        .iter()
        .filter(|x| x.status == "active")
        .map(|x| suspension_view!(&s.v, x))
        .collect())
}

fn subscriber_only(s: &SignedIn) -> Result<(), Response> {
    match s.account.kind {
        AccountKind::Operator => Err(s.v.redirect("/admin")),
        AccountKind::Subscriber => Ok(()),
    }
}

async fn suspensions(State(st): State<AppState>, s: SignedIn) -> Page {
    subscriber_only(&s)?;
    let list = suspension::list(&st.app, &s.ctx, None)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "account",
        active => list.iter().filter(|x| x.status == "active").map(|x| suspension_view!(&s.v, x)).collect::<Vec<_>>(),
        suspensions => list.iter().map(|x| suspension_view!(&s.v, x)).collect::<Vec<_>>(),
    };
    Ok(s.v.page(StatusCode::OK, "account/suspensions.html", ctx))
}

// --- Documents (R-3.3) ---

async fn documents(State(st): State<AppState>, s: SignedIn) -> Page {
    documents_page(&st, &s, StatusCode::OK, None).await
}

/// The page, with an upload refused for one request: (its id, why).
async fn documents_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    refused: Option<(String, String)>,
) -> Page {
    subscriber_only(s)?;
    let list = proofs::list(&st.app, &s.ctx, None)
        .await
        .map_err(|e| s.v.fail(e))?;
    let (refused_id, alert) = refused.unzip();
    let ctx = context! {
        section => "account",
        proofs => list.iter().map(|p| proof_view!(p)).collect::<Vec<_>>(),
        max_mib => proofs::MAX_SIZE / (1024 * 1024),
        refused_id => refused_id,
        alert => alert,
    };
    Ok(s.v.page(status, "account/documents.html", ctx))
}

/// The type of an uploaded file: what the browser said, else guessed from its name.
fn content_type_of(sent: &str, file_name: &str) -> String {
    let sent = sent.trim().to_ascii_lowercase();
    if !sent.is_empty() && sent != "application/octet-stream" {
        return sent;
    }
    let lower = file_name.to_ascii_lowercase();
    let guessed = if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
    guessed.to_owned()
}

/// The subscriber uploads the document of one request (a `multipart/form-data` form with
/// `csrf` and `document`). The token is checked before anything is done.
async fn upload(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    mut body: Multipart,
) -> Page {
    let mut csrf = String::new();
    let mut file: Option<(String, String, Vec<u8>)> = None;
    loop {
        match body.next_field().await {
            Ok(Some(field)) => match field.name().unwrap_or("") {
                "csrf" => csrf = field.text().await.unwrap_or_default(),
                "document" => {
                    let name = field.file_name().unwrap_or("").to_owned();
                    let sent = field.content_type().unwrap_or("").to_owned();
                    match field.bytes().await {
                        Ok(bytes) => {
                            file =
                                Some((name.clone(), content_type_of(&sent, &name), bytes.to_vec()))
                        }
                        Err(e) => return Err(upload_unreadable(&s.v, e.status())),
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return Err(upload_unreadable(&s.v, e.status())),
        }
    }
    s.v.check_csrf(&csrf)?;
    let (name, content_type, bytes) = file.unwrap_or_default();
    let result = proofs::upload(&st.app, &s.ctx, &id, &name, &content_type, &bytes).await;
    match result {
        Ok(_) => {
            s.v.flash("document_uploaded");
            Ok(s.v.redirect("/account/documents"))
        }
        Err(e) => {
            let e = forms::rename_fields(e, |f| {
                matches!(f, "file_name" | "content_type").then_some("document")
            });
            match refusal_text(&s.v, &e) {
                Some(alert) => documents_page(&st, &s, refusal_status(&e), Some((id, alert))).await,
                None => Err(s.v.fail(e)),
            }
        }
    }
}

/// A body that could not be read: too large, or not a form.
fn upload_unreadable(v: &Visitor, status: StatusCode) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let max = (proofs::MAX_SIZE / (1024 * 1024)).to_string();
        v.status_page(
            status,
            "console.documents.too_large_title",
            i18n::tf(v.lang, "console.documents.too_large", &[("max", &max)]),
        )
    } else {
        v.status_page(
            StatusCode::BAD_REQUEST,
            "console.error.invalid_title",
            v.t("console.error.bad_form"),
        )
    }
}

async fn document_file(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    proof_download(&st, &s, &id).await
}

/// An uploaded document as a download (the subscriber's own; operators through the back
/// office, audited by the use case).
pub(super) async fn proof_download(st: &AppState, s: &SignedIn, id: &str) -> Page {
    let (p, bytes) = proofs::document(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let content_type: &'static str = match p.content_type.as_deref() {
        Some("application/pdf") => "application/pdf",
        Some("image/png") => "image/png",
        Some("image/jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    };
    let name: String = p
        .file_name
        .as_deref()
        .unwrap_or("document")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

// --- Terms versions and notices (R-6.3, R-3.5) ---

/// A terms version with its classing; `now` says whether it is in force, past or to come.
pub(super) fn terms_version_view(
    v: &terms::VersionView,
    now: maocloud_types::Timestamp,
    current_id: Option<&str>,
) -> Value {
    let (t, c) = v;
    let id = t.id.to_string();
    let state = if current_id == Some(id.as_str()) {
        "current"
    } else if t.effective_at > now {
        "upcoming"
    } else {
        "past"
    };
    context! {
        id => id,
        version => &t.version,
        title => &t.title,
        published_at => when(t.published_at),
        effective_on => paris_date(t.effective_at).to_string(),
        class => &c.class,
        substantial => c.substantial,
        closure => c.closure,
        equivalent_migration => c.equivalent_migration,
        summary => &c.summary,
        published_by => &c.published_by,
        state => state,
        body_html => view::terms_html(&t.body),
    }
}

/// The id of the version in force at `now` (the list is newest effective first).
pub(super) fn current_version(
    list: &[terms::VersionView],
    now: maocloud_types::Timestamp,
) -> Option<String> {
    list.iter()
        .find(|(t, _)| t.effective_at <= now)
        .map(|(t, _)| t.id.to_string())
}

async fn terms_page(State(st): State<AppState>, s: SignedIn) -> Page {
    subscriber_only(&s)?;
    let fail = |e| s.v.fail(e);
    let list = terms::list(&st.app).await.map_err(fail)?;
    let notices = terms::notices(&st.app, &s.ctx, None).await.map_err(fail)?;
    let now = st.app.now();
    let today = paris_date(now).to_string();
    let current = current_version(&list, now);
    let ctx = context! {
        section => "account",
        versions => list.iter().map(|v| terms_version_view(v, now, current.as_deref())).collect::<Vec<_>>(),
        notices => notices.iter().map(|n| context! {
            version => &n.version,
            notified_at => when(n.notified_at),
            window_end => &n.window_end,
            window_open => n.window_end.as_deref().is_some_and(|w| w >= today.as_str()),
        }).collect::<Vec<_>>(),
    };
    Ok(s.v.page(StatusCode::OK, "account/terms.html", ctx))
}
