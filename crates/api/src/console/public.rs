//! The pages anyone can reach: the landing page, the terms, sign-up, sign-in with its
//! TOTP step, sign-out, email verification, password reset, and the language switch.
//! Pre-session forms carry the double-submit CSRF token; the others the session's.

use super::forms::{opt, FieldErrors, Form};
use super::view;
use super::visitor::{local_path, Visitor};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maocloud_app::accounts::{self, SignupInput};
use maocloud_app::auth::{self, PasswordCheck};
use maocloud_app::i18n::Lang;
use maocloud_app::model::Account;
use maocloud_app::{terms, Ctx, Error};
use maocloud_types::Principal;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

type Page = Result<Response, Response>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/terms", get(terms_page))
        .route("/signup", get(signup_form).post(signup))
        .route("/signin", get(signin_form).post(signin))
        .route("/signin/totp", get(totp_form).post(totp))
        .route("/signout", post(signout))
        .route("/verify-email", get(verify_email))
        .route("/forgot-password", get(forgot_form).post(forgot))
        .route("/reset-password", get(reset_form).post(reset))
        .route("/lang", post(set_lang))
}

async fn landing(v: Visitor) -> Response {
    if let Some((_, a)) = v.signed_in() {
        return v.redirect(Visitor::home_of(a));
    }
    v.page(StatusCode::OK, "landing.html", context! {})
}

async fn terms_page(State(st): State<AppState>, v: Visitor) -> Page {
    let terms = terms::current(&st.app).await.map_err(|e| v.fail(e))?;
    let ctx = context! {
        terms => context! {
            title => terms.title,
            version => terms.version,
        },
        body_html => view::terms_html(&terms.body),
    };
    Ok(v.page(StatusCode::OK, "terms.html", ctx))
}

// --- Sign-up (R-3.1) ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct SignupForm {
    #[serde(skip_serializing)]
    csrf: String,
    email: String,
    /// Never sent back to the page.
    #[serde(skip_serializing)]
    password: String,
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
    accept_terms_version: String,
}

async fn signup_form(State(st): State<AppState>, v: Visitor) -> Page {
    if let Some((_, a)) = v.signed_in() {
        return Ok(v.redirect(Visitor::home_of(a)));
    }
    let form = SignupForm {
        country: "FR".into(),
        ..Default::default()
    };
    signup_page(&st, &v, StatusCode::OK, &form, None).await
}

async fn signup_page(
    st: &AppState,
    v: &Visitor,
    status: StatusCode,
    form: &SignupForm,
    errors: Option<FieldErrors>,
) -> Page {
    let terms = terms::current(&st.app).await.map_err(|e| v.fail(e))?;
    let kinds = [
        context! { value => "consumer", label => v.t("console.signup.kind_consumer") },
        context! { value => "professional", label => v.t("console.signup.kind_professional") },
    ];
    let ctx = context! {
        form => form,
        terms_version => terms.version,
        kinds => kinds,
        section => "signup",
    };
    Ok(v.page(status, "signup.html", with_errors(ctx, errors)))
}

async fn signup(State(st): State<AppState>, mut v: Visitor, Form(form): Form<SignupForm>) -> Page {
    v.check_anon_csrf(&form.csrf)?;
    if let Some((_, a)) = v.signed_in() {
        return Ok(v.redirect(Visitor::home_of(a)));
    }
    let input = SignupInput {
        email: form.email.trim().to_owned(),
        password: form.password.clone(),
        full_name: form.full_name.clone(),
        customer_kind: form.customer_kind.clone(),
        company_name: opt(&form.company_name),
        company_id: opt(&form.company_id),
        vat_number: opt(&form.vat_number),
        address_line1: form.address_line1.clone(),
        address_line2: opt(&form.address_line2),
        postal_code: form.postal_code.trim().to_owned(),
        city: form.city.clone(),
        country: form.country.trim().to_uppercase(),
        phone: opt(&form.phone),
        accept_terms_version: form.accept_terms_version.clone(),
        locale: Some(v.lang.code().into()),
    };
    let id = match accounts::signup(&st.app, &v.ip, &input).await {
        Ok(id) => id,
        Err(e) => {
            return match FieldErrors::of(v.lang, &e) {
                Some(errors) => {
                    signup_page(
                        &st,
                        &v,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &form,
                        Some(errors),
                    )
                    .await
                }
                None => Err(v.fail(e)),
            }
        }
    };
    let ctx = Ctx {
        principal: Principal::Subscriber(id),
        ip: v.ip.clone(),
    };
    let me = accounts::me(&st.app, &ctx).await.map_err(|e| v.fail(e))?;
    open_session(&st, &mut v, &me.account, false).await?;
    v.flash("signed_up");
    Ok(v.redirect("/account"))
}

/// Ends the visitor's previous session if any, opens one for `account` and sets its cookie.
async fn open_session(
    st: &AppState,
    v: &mut Visitor,
    account: &Account,
    mfa_pending: bool,
) -> Result<(), Response> {
    if let Some((old, _)) = v.session.take() {
        if let Err(e) = auth::session_close(&st.app, old.id).await {
            tracing::warn!(error = %e, "could not close the previous session");
        }
    }
    let new = auth::session_open(&st.app, account, mfa_pending)
        .await
        .map_err(|e| v.fail(e))?;
    v.set_session_cookie(new.cookie, &new.session, st.app.now());
    Ok(())
}

// --- Sign-in ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct SigninForm {
    #[serde(skip_serializing)]
    csrf: String,
    email: String,
    #[serde(skip_serializing)]
    password: String,
    next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: String,
}

fn after_signin(next: &str, account: &Account) -> String {
    local_path(next)
        .unwrap_or(Visitor::home_of(account))
        .to_owned()
}

async fn signin_form(v: Visitor, RawQuery(q): RawQuery) -> Response {
    let q: NextQuery = super::forms::query(q.as_deref());
    if let Some((_, a)) = v.signed_in() {
        return v.redirect(&after_signin(&q.next, a));
    }
    let form = SigninForm {
        next: local_path(&q.next).unwrap_or("").to_owned(),
        ..Default::default()
    };
    signin_page(&v, StatusCode::OK, &form, None, None)
}

fn signin_page(
    v: &Visitor,
    status: StatusCode,
    form: &SigninForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Response {
    let ctx = context! { form => form, alert => alert, section => "signin" };
    v.page(status, "signin.html", with_errors(ctx, errors))
}

async fn signin(State(st): State<AppState>, mut v: Visitor, Form(form): Form<SigninForm>) -> Page {
    v.check_anon_csrf(&form.csrf)?;
    match auth::check_password(&st.app, &v.ip, &form.email, &form.password, None).await {
        Ok(PasswordCheck::Complete(account)) => {
            open_session(&st, &mut v, &account, false).await?;
            Ok(v.redirect(&after_signin(&form.next, &account)))
        }
        Ok(PasswordCheck::NeedsTotp(account)) => {
            open_session(&st, &mut v, &account, true).await?;
            let mut to = "/signin/totp".to_owned();
            if let Some(next) = local_path(&form.next) {
                to.push('?');
                to.push_str(
                    &form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", next)
                        .finish(),
                );
            }
            Ok(v.redirect(&to))
        }
        Err(Error::Unauthenticated(why)) => Ok(signin_page(
            &v,
            StatusCode::UNAUTHORIZED,
            &form,
            None,
            Some(v.reason_sentence(why)),
        )),
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let mut r = signin_page(
                &v,
                StatusCode::TOO_MANY_REQUESTS,
                &form,
                None,
                Some(v.too_many(retry_after_secs)),
            );
            retry_after(&mut r, retry_after_secs);
            Ok(r)
        }
        Err(e) => match FieldErrors::of(v.lang, &e) {
            Some(errors) => Ok(signin_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
                None,
            )),
            None => Err(v.fail(e)),
        },
    }
}

fn retry_after(r: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

// --- The TOTP step of sign-in ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct TotpForm {
    #[serde(skip_serializing)]
    csrf: String,
    #[serde(skip_serializing)]
    totp: String,
    next: String,
}

async fn totp_form(v: Visitor, RawQuery(q): RawQuery) -> Response {
    let q: NextQuery = super::forms::query(q.as_deref());
    match &v.session {
        Some((s, _)) if s.mfa_pending => {
            let form = TotpForm {
                next: local_path(&q.next).unwrap_or("").to_owned(),
                ..Default::default()
            };
            totp_page(&v, StatusCode::OK, &form, None, None)
        }
        Some((_, a)) => v.redirect(&after_signin(&q.next, a)),
        None => v.redirect("/signin"),
    }
}

fn totp_page(
    v: &Visitor,
    status: StatusCode,
    form: &TotpForm,
    errors: Option<FieldErrors>,
    alert: Option<String>,
) -> Response {
    let ctx = context! { form => form, alert => alert, section => "signin" };
    v.page(status, "signin_totp.html", with_errors(ctx, errors))
}

async fn totp(State(st): State<AppState>, v: Visitor, Form(form): Form<TotpForm>) -> Page {
    let Some((session, account)) = v.session.clone().filter(|(s, _)| s.mfa_pending) else {
        return Ok(v.redirect("/signin"));
    };
    v.check_csrf(&form.csrf)?;
    match auth::session_complete_totp(&st.app, &v.ip, &session, &account, &form.totp).await {
        Ok(()) => Ok(v.redirect(&after_signin(&form.next, &account))),
        Err(Error::TooManyRequests { retry_after_secs }) => {
            let mut r = totp_page(
                &v,
                StatusCode::TOO_MANY_REQUESTS,
                &form,
                None,
                Some(v.too_many(retry_after_secs)),
            );
            retry_after(&mut r, retry_after_secs);
            Ok(r)
        }
        Err(e) => match FieldErrors::of(v.lang, &e) {
            Some(errors) => Ok(totp_page(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                Some(errors),
                None,
            )),
            None => Err(v.fail(e)),
        },
    }
}

// --- Sign-out ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CsrfOnly {
    csrf: String,
}

async fn signout(State(st): State<AppState>, mut v: Visitor, Form(form): Form<CsrfOnly>) -> Page {
    let Some((session, _)) = v.session.clone() else {
        return Ok(v.redirect("/"));
    };
    v.check_csrf(&form.csrf)?;
    auth::session_close(&st.app, session.id)
        .await
        .map_err(|e| v.fail(e))?;
    v.session = None;
    v.clear_session_cookie();
    v.flash("signed_out");
    Ok(v.redirect("/"))
}

// --- Email verification and password reset ---

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

async fn verify_email(State(st): State<AppState>, v: Visitor, RawQuery(q): RawQuery) -> Page {
    let q: TokenQuery = super::forms::query(q.as_deref());
    let ok = match accounts::verify_email(&st.app, q.token.trim()).await {
        Ok(()) => true,
        Err(Error::Invalid(_)) => false,
        Err(e) => return Err(v.fail(e)),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(v.page(status, "verify_email.html", context! { ok => ok }))
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct EmailForm {
    #[serde(skip_serializing)]
    csrf: String,
    email: String,
}

async fn forgot_form(v: Visitor) -> Response {
    v.page(
        StatusCode::OK,
        "forgot_password.html",
        context! { form => EmailForm::default() },
    )
}

async fn forgot(State(st): State<AppState>, v: Visitor, Form(form): Form<EmailForm>) -> Page {
    v.check_anon_csrf(&form.csrf)?;
    match accounts::password_reset_request(&st.app, form.email.trim()).await {
        Ok(()) => Ok(v.page(
            StatusCode::OK,
            "forgot_password.html",
            context! { sent => true, form => &form },
        )),
        Err(e) => match FieldErrors::of(v.lang, &e) {
            Some(errors) => {
                let ctx = context! { form => &form };
                Ok(v.page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "forgot_password.html",
                    with_errors(ctx, Some(errors)),
                ))
            }
            None => Err(v.fail(e)),
        },
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct ResetForm {
    #[serde(skip_serializing)]
    csrf: String,
    token: String,
    #[serde(skip_serializing)]
    password: String,
}

async fn reset_form(v: Visitor, RawQuery(q): RawQuery) -> Response {
    let q: TokenQuery = super::forms::query(q.as_deref());
    let form = ResetForm {
        token: q.token.trim().to_owned(),
        ..Default::default()
    };
    v.page(
        StatusCode::OK,
        "reset_password.html",
        context! { form => form },
    )
}

async fn reset(State(st): State<AppState>, mut v: Visitor, Form(form): Form<ResetForm>) -> Page {
    v.check_anon_csrf(&form.csrf)?;
    match accounts::password_reset_complete(&st.app, form.token.trim(), &form.password).await {
        Ok(()) => {
            // Every session of the account has just ended, this browser's included.
            v.clear_session_cookie();
            v.flash("password_changed");
            Ok(v.redirect("/signin"))
        }
        Err(Error::Invalid(fields)) if fields.iter().any(|f| f.field == "token") => Ok(v.page(
            StatusCode::BAD_REQUEST,
            "reset_password.html",
            context! { form => &form, bad_link => true },
        )),
        Err(e) => match FieldErrors::of(v.lang, &e) {
            Some(errors) => {
                let ctx = context! { form => &form };
                Ok(v.page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "reset_password.html",
                    with_errors(ctx, Some(errors)),
                ))
            }
            None => Err(v.fail(e)),
        },
    }
}

// --- Language ---

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LangForm {
    csrf: String,
    lang: String,
    next: String,
}

async fn set_lang(State(st): State<AppState>, mut v: Visitor, Form(form): Form<LangForm>) -> Page {
    v.check_csrf(&form.csrf)?;
    let lang = if form.lang == "en" {
        Lang::En
    } else {
        Lang::Fr
    };
    v.set_lang(lang);
    if let Some(ctx) = v.ctx() {
        accounts::set_locale(&st.app, &ctx, lang.code())
            .await
            .map_err(|e| v.fail(e))?;
    }
    Ok(v.redirect(local_path(&form.next).unwrap_or("/")))
}

/// A page context with the form's errors added, when there are some.
pub fn with_errors(ctx: Value, errors: Option<FieldErrors>) -> Value {
    match errors {
        Some(e) => context! { ..e.context(), ..ctx },
        None => ctx,
    }
}
