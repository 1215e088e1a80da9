//! Personal data in the console. The subscriber's page, `/account/privacy`: marketing
//! consent per purpose (opt-in, R-9.2) with every change, restriction and objection with
//! theirs, the access export (asked for, built by a job, downloaded as a ZIP for 7 days), and
//! erasure, confirmed twice (an emailed code, then the code with the account's address typed
//! back), after which the session is gone and the visitor lands on the home page. Anyone reads
//! the register of processors and recipients at `/processors` and opts out of a
//! marketing email at `/unsubscribe?t=…`: a page with one button carrying the double-submit
//! token, or the RFC 8058 one-click POST mail clients send (`List-Unsubscribe=One-Click`), which
//! carries none — the signed token is the authorisation. In the back office, `/admin/privacy`:
//! the register (admins add, edit, remove), the k-anonymous statistics (billing and admins) and
//! the marketing email (admins); each use case checks the role.
//!
//! Saving the consents form calls `set_consent` once for each purpose whose box changed since
//! the page was shown (the page sends what it showed), so the history records what the
//! subscriber did and nothing else. Reasons come from `console.privacy.reason` (then the shared
//! table); a notice after a redirect comes back as `?done=<key>`, one of [`DONE`].

use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::storage::bytes_text;
use super::support::{options, path_id};
use super::view::{when, when_opt};
use super::visitor::{OperatorIn, SignedIn, Visitor};
use crate::AppState;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::i18n::{self, Lang};
use maocloud_app::model::AccountKind;
use maocloud_app::privacy::{self, Processor, ProcessorInput, Statistic};
use maocloud_app::Error;
use maocloud_billing::calendar::paris_date;
use maocloud_types::OperatorRole;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Page = Result<Response, Response>;

/// The notices a page shows after a redirect (`?done=<key>`, `console.privacy.done.<key>`).
const DONE: &[&str] = &[
    "consents_saved",
    "restriction_on",
    "restriction_off",
    "objection_on",
    "objection_off",
    "export_requested",
    "erasure_code_sent",
    "processor_added",
    "processor_updated",
    "processor_removed",
    "marketing_sent",
];

/// The flash notice the home page shows once the account is erased (`console.notice.…`).
const ERASED: &str = "privacy.erased";

const CHOICES: [&str; 2] = ["restriction", "objection"];
const KINDS: [&str; 2] = ["processor", "recipient"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/privacy", get(subscriber_page))
        .route("/account/privacy/consents", post(consents_save))
        .route("/account/privacy/choices", post(choice_set))
        .route("/account/privacy/exports", post(export_request))
        .route(
            "/account/privacy/exports/{id}/download",
            get(export_download),
        )
        .route("/account/privacy/erasure", post(erasure_request))
        .route("/account/privacy/erasure/confirm", post(erasure_confirm))
        .route("/processors", get(register))
        .route("/unsubscribe", get(unsubscribe_form).post(unsubscribe))
        .route("/admin/privacy", get(admin_page))
        .route("/admin/privacy/processors", post(processor_create))
        .route("/admin/privacy/processors/{id}", post(processor_update))
        .route(
            "/admin/privacy/processors/{id}/remove",
            post(processor_remove),
        )
        .route("/admin/privacy/marketing", post(marketing_send))
}

// --- Reasons, field errors, notices ---

/// A reason of the personal-data use cases in `lang`: this area's catalog first, then the
/// shared `reason` table, else the English text.
fn reason(lang: Lang, english: &str) -> String {
    if let Some(status) = english
        .strip_prefix("this export is ")
        .and_then(|r| r.strip_suffix(", not ready to download"))
    {
        let status = i18n::t(lang, &format!("console.privacy.export_status.{status}"));
        return i18n::tf(
            lang,
            "console.privacy.export_not_ready",
            &[("status", &status)],
        );
    }
    if lang == Lang::En {
        return english.to_string();
    }
    let key = format!("console.privacy.reason.{english}");
    let text = i18n::t(lang, &key);
    if text != key {
        return text;
    }
    i18n::reason(lang, english)
}

/// A reason as a sentence standing on its own (capital first, full stop last).
fn sentence(lang: Lang, english: &str) -> String {
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

/// The field errors of a refused form, for the fields that form has (`rename` maps a use
/// case's field to the form's). A refusal about no field, or about a field the form does not
/// have, comes back as `Err`.
fn field_errors(
    lang: Lang,
    e: Error,
    fields: &[&str],
    rename: &dyn Fn(&str) -> Option<&'static str>,
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
    for (field, why) in &pairs {
        let name = rename(field).map(str::to_owned).unwrap_or(field.clone());
        if !fields.contains(&name.as_str()) {
            return Err(e);
        }
        errors.push(&name, reason(lang, why));
    }
    if errors.is_empty() {
        return Err(e);
    }
    Ok(errors)
}

/// A refusal shown as one text in its section: a conflict's reason, or each invalid field
/// with its reason. Anything else is an error page.
fn refusal(lang: Lang, e: &Error) -> Option<(StatusCode, String)> {
    match e {
        Error::Conflict { reason, .. } => Some((StatusCode::CONFLICT, sentence(lang, reason))),
        Error::Invalid(fields) => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            fields
                .iter()
                .map(|f| {
                    i18n::tf(
                        lang,
                        "console.form.summary_item",
                        &[
                            (
                                "field",
                                &i18n::t(lang, &format!("console.privacy.field.{}", f.field)),
                            ),
                            ("reason", &reason(lang, &f.reason)),
                        ],
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
        )),
        _ => None,
    }
}

fn refusal_status(e: &Error) -> StatusCode {
    match e {
        Error::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DoneQuery {
    done: String,
    /// How many marketing emails were queued (`done=marketing_sent`).
    count: String,
    /// The statistics' first month (`YYYY-MM`).
    since: String,
    /// `code`: the erasure's second step, for a subscriber who already has their code.
    step: String,
}

/// The notice of a `?done=` key, if it is one of ours.
fn done_notice(v: &Visitor, q: &DoneQuery) -> Option<String> {
    let key = DONE.iter().find(|d| **d == q.done)?;
    let count = q.count.trim().parse::<u64>().unwrap_or(0).to_string();
    Some(i18n::tf(
        v.lang,
        &format!("console.privacy.done.{key}"),
        &[("count", &count)],
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

// --- The subscriber's page ---

/// This page is the subscriber's; operators have theirs in the back office.
fn subscribers_only(s: &SignedIn) -> Result<(), Response> {
    match s.account.kind {
        AccountKind::Subscriber => Ok(()),
        AccountKind::Operator => Err(s.v.redirect("/admin/privacy")),
    }
}

/// A form of the subscriber's page that was refused: which one, its errors or alert, and
/// what was typed.
#[derive(Default)]
struct Refused {
    /// `consents`, `restriction`, `objection`, `export`, `erasure` or `confirm`.
    form: &'static str,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    reason: String,
    code: String,
    email: String,
}

async fn subscriber_page(State(st): State<AppState>, s: SignedIn, RawQuery(raw): RawQuery) -> Page {
    subscribers_only(&s)?;
    let q: DoneQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q);
    let step_code = q.done == "erasure_code_sent" || q.step == "code";
    page(
        &st,
        &s,
        StatusCode::OK,
        notice,
        step_code,
        Refused::default(),
    )
    .await
}

async fn page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    step_code: bool,
    refused: Refused,
) -> Page {
    let fail = |e| s.v.fail(e);
    let lang = s.v.lang;
    let consents = privacy::consents(&st.app, &s.ctx, None)
        .await
        .map_err(fail)?;
    let choices = privacy::choices(&st.app, &s.ctx, None)
        .await
        .map_err(fail)?;
    let exports = privacy::exports(&st.app, &s.ctx).await.map_err(fail)?;
    let now = st.app.now();
    let purposes: Vec<Value> = consents
        .purposes
        .iter()
        .map(|(p, granted)| context! { value => p, granted => granted })
        .collect();
    let consent_history: Vec<Value> = consents
        .history
        .iter()
        .rev()
        .map(|e| {
            context! {
                at => when(e.created_at),
                purpose => &e.purpose,
                granted => e.granted,
                source => &e.source,
            }
        })
        .collect();
    let choice_history: Vec<Value> = choices
        .history
        .iter()
        .rev()
        .map(|e| {
            context! {
                at => when(e.created_at),
                choice => &e.choice,
                active => e.active,
                reason => &e.reason,
                source => &e.source,
            }
        })
        .collect();
    let export_list: Vec<Value> = exports
        .iter()
        .map(|e| {
            let ready = e.status == "ready" && e.expires_at.is_none_or(|x| x > now);
            let url = format!("/account/privacy/exports/{}/download", e.id);
            context! {
                id => &e.id,
                status => if e.status == "ready" && !ready { "expired" } else { e.status.as_str() },
                requested_at => when(e.requested_at),
                ready_at => when_opt(e.ready_at),
                expires_at => when_opt(e.expires_at),
                size => e.size.map(|n| bytes_text(lang, n)),
                download_url => ready.then_some(url),
            }
        })
        .collect();
    let preparing = exports.iter().any(|e| e.status == "queued");
    let ctx = context! {
        section => "account",
        purposes => purposes,
        consent_history => consent_history,
        restricted => choices.state.restricted,
        objected => choices.state.objected,
        choice_history => choice_history,
        exports => export_list,
        preparing => preparing,
        export_days => privacy::EXPORT_DAYS,
        code_minutes => privacy::ERASURE_CODE_MINUTES,
        step_code => step_code || refused.form == "confirm",
        refused => refused.form,
        alert => refused.alert,
        reason_form => refused.reason,
        confirm_form => context! { code => refused.code, email => refused.email },
        notice => notice,
    };
    Ok(s.v.page(
        status,
        "account/privacy.html",
        with_errors(ctx, refused.errors),
    ))
}

/// Every value of a repeated field of a form (checkboxes).
fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn consents_save(
    State(st): State<AppState>,
    s: SignedIn,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(values(&pairs, "csrf").last().copied().unwrap_or(""))?;
    let wanted = values(&pairs, "granted");
    let shown = values(&pairs, "shown");
    for purpose in privacy::PURPOSES {
        let want = wanted.contains(&purpose);
        if want == shown.contains(&purpose) {
            continue;
        }
        if let Err(e) = privacy::set_consent(&st.app, &s.ctx, purpose, want, "console").await {
            return match refusal(s.v.lang, &e) {
                Some((status, alert)) => {
                    let refused = Refused {
                        form: "consents",
                        alert: Some(alert),
                        ..Refused::default()
                    };
                    page(&st, &s, status, None, false, refused).await
                }
                None => Err(s.v.fail(e)),
            };
        }
    }
    Ok(s.v.redirect("/account/privacy?done=consents_saved#consents"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChoiceForm {
    csrf: String,
    choice: String,
    /// `1` to restrict or object, `0` to lift it.
    active: String,
    /// The reason typed in the restriction's form, or the objection's.
    restriction_reason: String,
    objection_reason: String,
}

async fn choice_set(State(st): State<AppState>, s: SignedIn, Form(form): Form<ChoiceForm>) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    let Some(choice) = CHOICES.iter().copied().find(|c| *c == form.choice.trim()) else {
        return Err(s
            .v
            .fail(Error::invalid("choice", "must be restriction or objection")));
    };
    let active = form.active.trim() == "1";
    let typed = if choice == "restriction" {
        &form.restriction_reason
    } else {
        &form.objection_reason
    };
    let reason_text = forms::opt(typed);
    let r = privacy::set_choice(
        &st.app,
        &s.ctx,
        choice,
        active,
        reason_text.as_deref(),
        "console",
    )
    .await;
    match r {
        Ok(_) => {
            let done = match (choice, active) {
                ("restriction", true) => "restriction_on",
                ("restriction", false) => "restriction_off",
                (_, true) => "objection_on",
                (_, false) => "objection_off",
            };
            Ok(s.v.redirect(&format!("/account/privacy?done={done}#choices")))
        }
        Err(e) => {
            let status = refusal_status(&e);
            let field: &'static str = if choice == "restriction" {
                "restriction_reason"
            } else {
                "objection_reason"
            };
            let mut refused = Refused {
                form: choice,
                reason: typed.clone(),
                ..Refused::default()
            };
            let rename = move |f: &str| (f == "reason").then_some(field);
            match field_errors(s.v.lang, e, &[field], &rename) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(s.v.lang, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            page(&st, &s, status, None, false, refused).await
        }
    }
}

async fn export_request(
    State(st): State<AppState>,
    s: SignedIn,
    Form(form): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    match privacy::export_request(&st.app, &s.ctx).await {
        Ok(_) => {
            Ok(s.v.redirect("/account/privacy?done=export_requested#export"))
        }
        Err(e) => match refusal(s.v.lang, &e) {
            Some((status, alert)) => {
                let refused = Refused {
                    form: "export",
                    alert: Some(alert),
                    ..Refused::default()
                };
                page(&st, &s, status, None, false, refused).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

/// The archive, as a file to save: for its subscriber only (another's is the 404 page), while
/// it is ready.
async fn export_download(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    subscribers_only(&s)?;
    let id = path_id(&s.v, &id)?;
    let bytes = privacy::export_download(&st.app, &s.ctx, &id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    // The id is a UUID: nothing to escape in the name.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"maocloud-export-{id}.zip\""
    )) {
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

async fn erasure_request(
    State(st): State<AppState>,
    s: SignedIn,
    Form(form): Form<CsrfOnly>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    match privacy::erasure_request(&st.app, &s.ctx).await {
        Ok(()) => {
            Ok(s.v.redirect("/account/privacy?done=erasure_code_sent#erasure"))
        }
        Err(e) => match refusal(s.v.lang, &e) {
            Some((status, alert)) => {
                let refused = Refused {
                    form: "erasure",
                    alert: Some(alert),
                    ..Refused::default()
                };
                page(&st, &s, status, None, false, refused).await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfirmForm {
    csrf: String,
    code: String,
    email: String,
}

async fn erasure_confirm(
    State(st): State<AppState>,
    s: SignedIn,
    Form(form): Form<ConfirmForm>,
) -> Page {
    subscribers_only(&s)?;
    s.v.check_csrf(&form.csrf)?;
    match privacy::erasure_confirm(&st.app, &s.ctx, &form.code, &form.email).await {
        Ok(()) => {
            // The account is gone, its sessions with it: this browser leaves signed out.
            let mut v = s.v.clone();
            v.session = None;
            v.clear_session_cookie();
            v.flash(ERASED);
            Ok(v.redirect("/"))
        }
        Err(e) => {
            let status = refusal_status(&e);
            let mut refused = Refused {
                form: "confirm",
                code: form.code.trim().to_owned(),
                email: form.email.trim().to_owned(),
                ..Refused::default()
            };
            match field_errors(s.v.lang, e, &["code", "email"], &|_| None) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(s.v.lang, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            page(&st, &s, status, None, true, refused).await
        }
    }
}

// --- The register of processors and recipients, for anyone ---

fn processor_value(p: &Processor) -> Value {
    context! {
        id => &p.id,
        kind => &p.kind,
        name => &p.name,
        purpose => &p.purpose,
        data_categories => &p.data_categories,
        country => &p.country,
        safeguards => &p.safeguards,
        updated_at => when(p.updated_at),
    }
}

async fn register(State(st): State<AppState>, v: Visitor) -> Page {
    let list = privacy::processors(&st.app).await.map_err(|e| v.fail(e))?;
    let ctx = context! {
        section => "processors",
        processors => list.iter().map(processor_value).collect::<Vec<_>>(),
    };
    Ok(v.page(StatusCode::OK, "processors.html", ctx))
}

// --- The one-click opt-out of marketing emails (R-9.2) ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenQuery {
    t: String,
}

fn unsubscribe_page(
    v: &Visitor,
    status: StatusCode,
    token: &str,
    withdrawn: Option<String>,
    errors: Option<FieldErrors>,
) -> Response {
    let ctx = context! {
        section => "unsubscribe",
        token => token,
        withdrawn => withdrawn,
    };
    v.page(status, "unsubscribe.html", with_errors(ctx, errors))
}

async fn unsubscribe_form(v: Visitor, RawQuery(raw): RawQuery) -> Response {
    let q: TokenQuery = forms::query(raw.as_deref());
    unsubscribe_page(&v, StatusCode::OK, q.t.trim(), None, None)
}

/// The fields of a POST, urlencoded (the page's form, most mail clients) or multipart (what
/// RFC 8058 recommends mail clients send).
async fn posted_fields(st: &AppState, req: Request) -> Option<Vec<(String, String)>> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let mut body = Multipart::from_request(req, st).await.ok()?;
        let mut out = Vec::new();
        while let Ok(Some(field)) = body.next_field().await {
            let name = field.name().unwrap_or("").to_owned();
            out.push((name, field.text().await.ok()?));
        }
        Some(out)
    } else {
        let bytes = axum::body::to_bytes(req.into_body(), crate::BODY_LIMIT)
            .await
            .ok()?;
        serde_urlencoded::from_bytes(&bytes).ok()
    }
}

/// A plain-text answer, for mail clients.
fn plain(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn unsubscribe(
    State(st): State<AppState>,
    v: Visitor,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Page {
    let q: TokenQuery = forms::query(raw.as_deref());
    let Some(fields) = posted_fields(&st, req).await else {
        return Err(v.status_page(
            StatusCode::BAD_REQUEST,
            "console.error.invalid_title",
            v.t("console.error.bad_form"),
        ));
    };
    let field = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let purpose_label = |p: &str| i18n::t(v.lang, &format!("privacy.purpose.{p}"));

    // RFC 8058: a mail client's one-click POST. No session and no CSRF token: the signed
    // token in the link is the authorisation, and all it can do is withdraw one consent.
    if let Some(one_click) = field("List-Unsubscribe") {
        if one_click.trim() != "One-Click" {
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                v.t("console.privacy.one_click_bad"),
            ));
        }
        return match privacy::unsubscribe(&st.app, &q.t, &v.ip).await {
            Ok(purpose) => Ok(plain(
                StatusCode::OK,
                i18n::tf(
                    v.lang,
                    "console.privacy.unsubscribed",
                    &[("purpose", &purpose_label(&purpose))],
                ),
            )),
            Err(Error::Invalid(_)) => Ok(plain(
                StatusCode::BAD_REQUEST,
                reason(v.lang, "is not a valid opt-out link"),
            )),
            Err(e) => Err(v.fail(e)),
        };
    }

    // The page's button: a pre-session form, with its double-submit token.
    v.check_anon_csrf(field("csrf").unwrap_or(""))?;
    let token = field("t").unwrap_or(&q.t).trim().to_owned();
    match privacy::unsubscribe(&st.app, &token, &v.ip).await {
        Ok(purpose) => Ok(unsubscribe_page(
            &v,
            StatusCode::OK,
            &token,
            Some(purpose_label(&purpose)),
            None,
        )),
        Err(e) => match field_errors(v.lang, e, &["token"], &|_| None) {
            Ok(errors) => Ok(unsubscribe_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &token,
                None,
                Some(errors),
            )),
            Err(e) => Err(v.fail(e)),
        },
    }
}

// --- The back office: register, statistics, marketing ---

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
struct ProcessorForm {
    #[serde(skip_serializing)]
    csrf: String,
    kind: String,
    name: String,
    purpose: String,
    data_categories: String,
    country: String,
    safeguards: String,
}

impl ProcessorForm {
    fn input(&self) -> ProcessorInput {
        ProcessorInput {
            kind: self.kind.trim().to_owned(),
            name: self.name.clone(),
            purpose: self.purpose.clone(),
            data_categories: self.data_categories.clone(),
            country: self.country.trim().to_uppercase(),
            safeguards: self.safeguards.clone(),
        }
    }
}

const PROCESSOR_FIELDS: [&str; 6] = [
    "kind",
    "name",
    "purpose",
    "data_categories",
    "country",
    "safeguards",
];

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct MarketingForm {
    #[serde(skip_serializing)]
    csrf: String,
    marketing_purpose: String,
    subject: String,
    body: String,
}

/// A form of the back-office page that was refused.
#[derive(Default)]
struct AdminRefused {
    /// `add`, `edit`, `remove` or `marketing`.
    form: &'static str,
    /// The entry an edit or removal was about.
    id: String,
    errors: Option<FieldErrors>,
    alert: Option<String>,
    processor: ProcessorForm,
    marketing: MarketingForm,
}

/// The statistics' first month by default: eleven months back, so a year shows.
fn default_since(st: &AppState) -> String {
    let today = paris_date(st.app.now());
    today
        .checked_sub(jiff::Span::new().months(11))
        .unwrap_or(today)
        .strftime("%Y-%m")
        .to_string()
}

fn statistic_value(s: &Statistic) -> Value {
    let money = s.name.starts_with("revenue");
    context! {
        name => &s.name,
        money => money,
        k => s.k,
        rows => s.groups.iter().map(|g| {
            // Revenue groups are keyed "YYYY-MM code".
            let (month, code) = match g.key.split_once(' ') {
                Some((m, c)) if money => (Some(m.to_owned()), c.to_owned()),
                _ => (None, g.key.clone()),
            };
            context! {
                key => &g.key,
                month => month,
                code => code,
                label => &g.label,
                subscribers => g.subscribers,
                total => g.total,
            }
        }).collect::<Vec<_>>(),
    }
}

async fn admin_page(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    RawQuery(raw): RawQuery,
) -> Page {
    let q: DoneQuery = forms::query(raw.as_deref());
    let notice = done_notice(&s.v, &q);
    let since = match q.since.trim() {
        "" => default_since(&st),
        m => m.to_owned(),
    };
    admin_render(
        &st,
        &s,
        StatusCode::OK,
        notice,
        &since,
        AdminRefused::default(),
    )
    .await
}

async fn admin_render(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    since: &str,
    refused: AdminRefused,
) -> Page {
    let lang = s.v.lang;
    let list = privacy::processors(&st.app)
        .await
        .map_err(|e| s.v.fail(e))?;
    let can_edit = s.ctx.require_operator(&[]).is_ok();
    let can_stats = s.ctx.require_operator(&[OperatorRole::Billing]).is_ok();
    let mut status = status;
    let mut since_errors = None;
    let mut statistics: Vec<Value> = vec![];
    if can_stats {
        match privacy::statistics(&st.app, &s.ctx, since).await {
            Ok(list) => statistics = list.iter().map(statistic_value).collect(),
            Err(e) => {
                status = refusal_status(&e);
                match field_errors(lang, e, &["since"], &|_| None) {
                    Ok(errors) => since_errors = Some(errors),
                    Err(e) => return Err(s.v.fail(e)),
                }
            }
        }
    }
    // Errors of the form refused: the add form's and the marketing form's are the page's
    // (`errors`), an edit form's stay with its entry (`edit_errors`).
    let (errors, edit_errors) = match refused.form {
        "edit" => (
            since_errors,
            refused
                .errors
                .map(|e| e.pairs().into_iter().collect::<BTreeMap<_, _>>()),
        ),
        _ => (refused.errors.or(since_errors), None),
    };
    let mut kinds = options(lang, "console.privacy.kind", &KINDS);
    kinds.insert(
        0,
        context! { value => "", label => i18n::t(lang, "console.privacy.choose_kind") },
    );
    let add_form = if refused.form == "add" {
        refused.processor.clone()
    } else {
        ProcessorForm {
            kind: "processor".into(),
            ..ProcessorForm::default()
        }
    };
    let ctx = context! {
        section => "admin",
        processors => list.iter().map(processor_value).collect::<Vec<_>>(),
        can_edit => can_edit,
        can_stats => can_stats,
        kinds => kinds,
        purposes => options(lang, "privacy.purpose", &privacy::PURPOSES),
        add_form => add_form,
        refused => refused.form,
        refused_id => refused.id,
        edit_form => (refused.form == "edit").then_some(refused.processor),
        edit_errors => edit_errors,
        alert => refused.alert,
        marketing_form => refused.marketing,
        since => since,
        statistics => statistics,
        privacy_k => st.app.settings().privacy_k,
        notice => notice,
    };
    Ok(s.v.page(status, "admin/privacy.html", with_errors(ctx, errors)))
}

async fn processor_create(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<ProcessorForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match privacy::processor_create(&st.app, &s.ctx, form.input()).await {
        Ok(_) => Ok(s.v.redirect("/admin/privacy?done=processor_added#register")),
        Err(e) => {
            let status = refusal_status(&e);
            let mut refused = AdminRefused {
                form: "add",
                processor: form,
                ..AdminRefused::default()
            };
            match field_errors(s.v.lang, e, &PROCESSOR_FIELDS, &|_| None) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(s.v.lang, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            let since = default_since(&st);
            admin_render(&st, &s, status, None, &since, refused).await
        }
    }
}

async fn processor_update(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<ProcessorForm>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    match privacy::processor_update(&st.app, &s.ctx, &id, form.input()).await {
        Ok(_) => Ok(s.v.redirect(&format!(
            "/admin/privacy?done=processor_updated#processor-{id}"
        ))),
        Err(e) => {
            let status = refusal_status(&e);
            let mut refused = AdminRefused {
                form: "edit",
                id,
                processor: form,
                ..AdminRefused::default()
            };
            match field_errors(s.v.lang, e, &PROCESSOR_FIELDS, &|_| None) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(s.v.lang, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            let since = default_since(&st);
            admin_render(&st, &s, status, None, &since, refused).await
        }
    }
}

async fn processor_remove(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    let id = path_id(&s.v, &id)?;
    s.v.check_csrf(&form.csrf)?;
    privacy::processor_remove(&st.app, &s.ctx, &id)
        .await
        .map_err(|e| s.v.fail(e))?;
    Ok(s.v.redirect("/admin/privacy?done=processor_removed#register"))
}

async fn marketing_send(
    State(st): State<AppState>,
    OperatorIn(s): OperatorIn,
    Form(form): Form<MarketingForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let purpose = form.marketing_purpose.trim().to_owned();
    match privacy::marketing_send(&st.app, &s.ctx, &purpose, &form.subject, &form.body).await {
        Ok(count) => Ok(s.v.redirect(&format!(
            "/admin/privacy?done=marketing_sent&count={count}#marketing"
        ))),
        Err(e) => {
            let status = refusal_status(&e);
            let mut refused = AdminRefused {
                form: "marketing",
                marketing: form,
                ..AdminRefused::default()
            };
            let rename = |f: &str| (f == "purpose").then_some("marketing_purpose");
            match field_errors(
                s.v.lang,
                e,
                &["marketing_purpose", "subject", "body"],
                &rename,
            ) {
                Ok(errors) => refused.errors = Some(errors),
                Err(e) => match refusal(s.v.lang, &e) {
                    Some((_, alert)) => refused.alert = Some(alert),
                    None => return Err(s.v.fail(e)),
                },
            }
            let since = default_since(&st);
            admin_render(&st, &s, status, None, &since, refused).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_areas_reasons_read_in_french() {
        assert_eq!(
            reason(Lang::Fr, "this export is queued, not ready to download"),
            i18n::tf(
                Lang::Fr,
                "console.privacy.export_not_ready",
                &[(
                    "status",
                    &i18n::t(Lang::Fr, "console.privacy.export_status.queued")
                )]
            )
        );
        for english in [
            "is not a valid opt-out link",
            "must be your account's email address, typed to confirm",
            "is not the code we emailed, or it expired: ask again",
            "an export is already being prepared",
            "you still have an active contract: terminate it first (your data is erased once it has ended)",
        ] {
            assert_ne!(reason(Lang::Fr, english), english, "{english}");
            assert_eq!(reason(Lang::En, english), english);
        }
        // The shared table still answers for the rest.
        assert_eq!(reason(Lang::Fr, "is required"), "est obligatoire");
        assert!(sentence(Lang::Fr, "an export is already being prepared").ends_with('.'));
    }

    #[test]
    fn a_refused_form_keeps_its_errors_at_its_own_fields() {
        let e = Error::invalid("reason", "is too long");
        let rename = |f: &str| (f == "reason").then_some("objection_reason");
        let errors = field_errors(Lang::Fr, e, &["objection_reason"], &rename).unwrap();
        assert_eq!(
            errors.pairs(),
            vec![("objection_reason".to_string(), "est trop long".to_string())]
        );
        // A field the form does not have is no form error.
        let e = Error::invalid("choice", "must be restriction or objection");
        assert!(field_errors(Lang::Fr, e, &["objection_reason"], &|_| None).is_err());
    }
}
