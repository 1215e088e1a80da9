//! The subscriber area: the overview (profile, email verification, latest messages), the
//! profile's correction (R-9.5 rectification), the inbox, API tokens and the security
//! page (TOTP). Tokens and security serve operators too.

use super::forms::{self, FieldErrors, Form};
use super::public::with_errors;
use super::records::{AccountView, MessageView, ProfileView, TokenView};
use super::view;
use super::visitor::SignedIn;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::model::AccountKind;
use maocloud_app::{accounts, auth, notify, Error};
use maocloud_types::{ApiTokenId, MessageId, PageRequest};
use minijinja::context;
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

const INBOX_PAGE: u32 = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(home))
        .route("/account/profile", get(profile).post(profile_save))
        .route("/account/verify-email/resend", post(resend_verification))
        .route("/account/messages", get(messages))
        .route("/account/messages/{id}", get(message))
        .route("/account/tokens", get(tokens).post(token_create))
        .route("/account/tokens/{id}/revoke", post(token_revoke))
        .route("/account/security", get(security))
        .route("/account/security/totp/begin", post(totp_begin))
        .route("/account/security/totp/confirm", post(totp_confirm))
        .route("/account/security/totp/disable", post(totp_disable))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CursorQuery {
    pub cursor: String,
}

/// A cursor from a query string: only the ids our lists hand out.
pub fn cursor(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s.trim()).ok().map(|u| u.to_string())
}

async fn home(State(st): State<AppState>, s: SignedIn) -> Page {
    if s.account.kind == AccountKind::Operator {
        return Ok(s.v.redirect("/admin"));
    }
    let me = accounts::me(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let latest = notify::inbox(&st.app, &s.ctx, &PageRequest::first(5))
        .await
        .map_err(|e| s.v.fail(e))?;
    let Some(profile) = me.profile.as_ref() else {
        return Err(s.v.fail(Error::NotFound));
    };
    let ctx = context! {
        section => "account",
        account => AccountView::from(&me.account),
        profile => ProfileView::from(profile),
        unread => me.unread_messages,
        messages => latest.items.iter().map(MessageView::from).collect::<Vec<_>>(),
        suspensions => super::contract::active_suspensions(&st, &s).await?,
    };
    Ok(s.v.page(StatusCode::OK, "account/home.html", ctx))
}

/// The profile form: every field as text, as sign-up has it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct ProfileForm {
    #[serde(skip_serializing)]
    csrf: String,
    full_name: String,
    customer_kind: String,
    company_name: String,
    company_id: String,
    vat_number: String,
    address_line1: String,
    address_line2: String,
    postal_code: String,
    city: String,
    country: String,
    phone: String,
}

fn profile_page(
    s: &SignedIn,
    status: StatusCode,
    form: &ProfileForm,
    errors: Option<FieldErrors>,
    saved: bool,
) -> Response {
    let kinds = [
        context! { value => "consumer", label => s.v.t("console.signup.kind_consumer") },
        context! { value => "professional", label => s.v.t("console.signup.kind_professional") },
    ];
    let ctx = context! { section => "account", form => form, kinds => kinds, saved => saved };
    s.v.page(status, "account/profile.html", with_errors(ctx, errors))
}

/// The subscriber's identity and billing details, to correct.
async fn profile(State(st): State<AppState>, s: SignedIn) -> Page {
    let me = accounts::me(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let Some(p) = me.profile else {
        return Err(s.v.fail(Error::NotFound));
    };
    let o = |v: Option<String>| v.unwrap_or_default();
    let form = ProfileForm {
        full_name: p.full_name,
        customer_kind: p.customer_kind,
        company_name: o(p.company_name),
        company_id: o(p.company_id),
        vat_number: o(p.vat_number),
        address_line1: p.address_line1,
        address_line2: o(p.address_line2),
        postal_code: p.postal_code,
        city: p.city,
        country: p.country,
        phone: o(p.phone),
        ..Default::default()
    };
    Ok(profile_page(&s, StatusCode::OK, &form, None, false))
}

async fn profile_save(
    State(st): State<AppState>,
    s: SignedIn,
    Form(form): Form<ProfileForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let input = accounts::ProfileInput {
        full_name: form.full_name.clone(),
        customer_kind: form.customer_kind.clone(),
        company_name: forms::opt(&form.company_name),
        company_id: forms::opt(&form.company_id),
        vat_number: forms::opt(&form.vat_number),
        address_line1: form.address_line1.clone(),
        address_line2: forms::opt(&form.address_line2),
        postal_code: form.postal_code.trim().to_owned(),
        city: form.city.clone(),
        country: form.country.trim().to_uppercase(),
        phone: forms::opt(&form.phone),
    };
    match accounts::profile_update(&st.app, &s.ctx, &input).await {
        Ok(_) => Ok(profile_page(&s, StatusCode::OK, &form, None, true)),
        Err(e) => match FieldErrors::of(s.v.lang, &e) {
            Some(errors) => Ok(profile_page(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
                false,
            )),
            None => Err(s.v.fail(e)),
        },
    }
}

async fn resend_verification(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<CsrfOnly>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match accounts::resend_verification(&st.app, &s.ctx).await {
        Ok(()) => s.v.flash("verification_sent"),
        Err(Error::Conflict { .. }) => s.v.flash("already_verified"),
        Err(e) => return Err(s.v.fail(e)),
    }
    Ok(s.v.redirect("/account"))
}

async fn messages(State(st): State<AppState>, s: SignedIn, RawQuery(q): RawQuery) -> Page {
    let q: CursorQuery = forms::query(q.as_deref());
    let page = PageRequest {
        limit: INBOX_PAGE,
        after: cursor(&q.cursor),
    };
    let list = notify::inbox(&st.app, &s.ctx, &page)
        .await
        .map_err(|e| s.v.fail(e))?;
    let next_url = list
        .next_cursor
        .as_ref()
        .map(|c| format!("/account/messages?cursor={c}"));
    let ctx = context! {
        section => "account",
        messages => list.items.iter().map(MessageView::from).collect::<Vec<_>>(),
        next_url => next_url,
    };
    Ok(s.v.page(StatusCode::OK, "account/messages.html", ctx))
}

async fn message(State(st): State<AppState>, s: SignedIn, Path(id): Path<String>) -> Page {
    let id: MessageId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    let m = notify::message_read(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    let ctx = context! {
        section => "account",
        message => MessageView::from(&m),
        body_html => view::linkify(&m.body),
    };
    Ok(s.v.page(StatusCode::OK, "account/message.html", ctx))
}

// --- API tokens ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct TokenForm {
    #[serde(skip_serializing)]
    csrf: String,
    name: String,
    expires_in_days: String,
}

async fn tokens(State(st): State<AppState>, s: SignedIn) -> Page {
    tokens_page(&st, &s, StatusCode::OK, &TokenForm::default(), None, None).await
}

async fn tokens_page(
    st: &AppState,
    s: &SignedIn,
    status: StatusCode,
    form: &TokenForm,
    errors: Option<FieldErrors>,
    created: Option<auth::IssuedToken>,
) -> Page {
    let list = auth::token_list(&st.app, &s.ctx)
        .await
        .map_err(|e| s.v.fail(e))?;
    let now = st.app.now();
    let ctx = context! {
        section => section_of(s),
        tokens => list.iter().map(|t| TokenView::new(t, now)).collect::<Vec<_>>(),
        form => form,
        default_days => st.app.settings().token_default_days,
        created => created.map(|c| context! { name => c.info.name, token => c.token }),
    };
    Ok(s.v.page(status, "account/tokens.html", with_errors(ctx, errors)))
}

async fn token_create(
    State(st): State<AppState>,
    s: SignedIn,
    Form(form): Form<TokenForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let days = match forms::opt(&form.expires_in_days).map(|d| d.parse::<i64>()) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let errors =
                FieldErrors::one(s.v.lang, "expires_in_days", "must be between 1 and 3650");
            return tokens_page(
                &st,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
                None,
            )
            .await;
        }
    };
    match auth::token_create(&st.app, &s.ctx, form.name.trim(), days).await {
        Ok(issued) => {
            tokens_page(
                &st,
                &s,
                StatusCode::CREATED,
                &TokenForm::default(),
                None,
                Some(issued),
            )
            .await
        }
        Err(e) => match FieldErrors::of(s.v.lang, &e) {
            Some(errors) => {
                tokens_page(
                    &st,
                    &s,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &form,
                    Some(errors),
                    None,
                )
                .await
            }
            None => Err(s.v.fail(e)),
        },
    }
}

async fn token_revoke(
    State(st): State<AppState>,
    mut s: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    let id: ApiTokenId = id.parse().map_err(|_| s.v.fail(Error::NotFound))?;
    auth::token_revoke(&st.app, &s.ctx, id)
        .await
        .map_err(|e| s.v.fail(e))?;
    s.v.flash("token_revoked");
    Ok(s.v.redirect("/account/tokens"))
}

/// Operators reach tokens and security from the back office's navigation.
fn section_of(s: &SignedIn) -> &'static str {
    match s.account.kind {
        AccountKind::Operator => "admin",
        AccountKind::Subscriber => "account",
    }
}

// --- Security: TOTP ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodeForm {
    csrf: String,
    code: String,
}

/// The enrolment being confirmed: its secret and the `otpauth://` URI, shown as text.
struct Pending {
    secret: String,
    uri: String,
}

async fn security(s: SignedIn) -> Response {
    security_page(&s, StatusCode::OK, None, None, None)
}

fn security_page(
    s: &SignedIn,
    status: StatusCode,
    pending: Option<Pending>,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Response {
    let enabled = s.account.totp_enabled;
    // An enrolment begun earlier and not confirmed yet can be finished from this page.
    let pending = pending.or_else(|| match (&s.account.totp_secret, s.account.totp_enabled) {
        (Some(secret), false) => Some(Pending {
            secret: secret.clone(),
            uri: totp_uri(&s.account.email, secret),
        }),
        _ => None,
    });
    let ctx = context! {
        section => section_of(s),
        totp_enabled => enabled,
        pending => pending.map(|p| context! { secret => p.secret, uri => p.uri }),
        alert => alert,
    };
    s.v.page(status, "account/security.html", with_errors(ctx, errors))
}

use maocloud_app::auth::totp_uri;

/// A refusal shown on the security page itself (already enabled, required for operators…).
fn security_refusal(s: &SignedIn, e: Error) -> Page {
    match e {
        Error::Conflict { reason, .. } => {
            let alert = s.v.reason_sentence(&reason);
            Ok(security_page(
                s,
                StatusCode::CONFLICT,
                None,
                None,
                Some(alert),
            ))
        }
        Error::Forbidden(why) => {
            let alert = s.v.reason_sentence(why);
            Ok(security_page(
                s,
                StatusCode::FORBIDDEN,
                None,
                None,
                Some(alert),
            ))
        }
        e => match FieldErrors::of(s.v.lang, &e) {
            Some(errors) => Ok(security_page(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(errors),
                None,
            )),
            None => Err(s.v.fail(e)),
        },
    }
}

async fn totp_begin(State(st): State<AppState>, s: SignedIn, Form(form): Form<CsrfOnly>) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match accounts::totp_begin(&st.app, &s.ctx).await {
        Ok((secret, uri)) => Ok(security_page(
            &s,
            StatusCode::OK,
            Some(Pending { secret, uri }),
            None,
            None,
        )),
        Err(e) => security_refusal(&s, e),
    }
}

async fn totp_confirm(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<CodeForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match accounts::totp_confirm(&st.app, &s.ctx, &form.code).await {
        Ok(()) => {
            s.v.flash("totp_enabled");
            Ok(s.v.redirect("/account/security"))
        }
        Err(e) => security_refusal(&s, e),
    }
}

async fn totp_disable(
    State(st): State<AppState>,
    mut s: SignedIn,
    Form(form): Form<CodeForm>,
) -> Page {
    s.v.check_csrf(&form.csrf)?;
    match accounts::totp_disable(&st.app, &s.ctx, &form.code).await {
        Ok(()) => {
            s.v.flash("totp_disabled");
            Ok(s.v.redirect("/account/security"))
        }
        Err(e) => security_refusal(&s, e),
    }
}
