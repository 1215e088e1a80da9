//! Who is at the other end of a console request: their language, their cookies (session,
//! double-submit CSRF token, language, one-shot notice), their session when they have one, and
//! the responses every handler builds from that (pages, redirects, error pages).
//!
//! Cookies: `maocloud_session` (HttpOnly, SameSite=Lax, Secure per settings, Max-Age of the
//! session), `maocloud_csrf` (HttpOnly, SameSite=Strict; the pre-session forms' double-submit
//! token), `lang`, and `maocloud_flash` (the catalog key of a notice for the next page).

use super::view;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use maocloud_app::i18n::{self, Lang};
use maocloud_app::model::{Account, AccountKind, Session};
use maocloud_app::{auth, Ctx, Error};
use maocloud_types::{OperatorRole, Principal};
use minijinja::{context, Value};
use serde::Serialize;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "maocloud_session";
pub const CSRF_COOKIE: &str = "maocloud_csrf";
pub const LANG_COOKIE: &str = "lang";
pub const FLASH_COOKIE: &str = "maocloud_flash";

/// The notices a redirect may leave for the next page (the flash cookie holds one of these).
const NOTICES: &[&str] = &[
    "signed_up",
    "signed_out",
    "password_changed",
    "verification_sent",
    "already_verified",
    "token_revoked",
    "totp_enabled",
    "totp_disabled",
    "subscribed",
    "offer_changed",
    "delivery_saved",
    "offer_created",
    "offer_retired",
    "payment_recorded",
    "credit_note_created",
    "marked_mailed",
    "termination_scheduled",
    "termination_withdrawn",
    "document_uploaded",
    "suspended",
    "suspension_confirmed",
    "suspension_lifted",
    "proof_requested",
    "proof_approved",
    "proof_rejected",
    "termination_recorded",
    "incident_created",
    "compensation_granted",
    "vm_launched",
    "vm_starting",
    "vm_stopping",
    "vm_rebooting",
    "vm_resizing",
    "vm_deleting",
    "ssh_key_added",
    "ssh_key_deleted",
    "bucket_created",
    "bucket_deleted",
    "object_uploaded",
    "object_deleted",
    "storage_key_revoked",
    "privacy.erased",
];

/// Content-Security-Policy of every console page: no script at all, styles and images from here.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The policy of a VM's page: the same, plus its own script (the serial console) and the
/// websocket that script opens to this host.
pub const CSP_SERIAL: &str =
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The visitor of a console page, signed in or not.
#[derive(Clone)]
pub struct Visitor {
    pub lang: Lang,
    /// Cookies as received; cookies added or removed here are sent back with the response.
    pub jar: CookieJar,
    /// The session behind the session cookie, with its account (possibly still `mfa_pending`).
    pub session: Option<(Session, Account)>,
    /// The double-submit token the browser sent, if any.
    csrf_sent: Option<String>,
    /// The double-submit token this page's pre-session forms carry.
    csrf_anon: String,
    pub ip: String,
    pub method: Method,
    /// Path and query of this request (for `next=` and the language switch).
    pub here: String,
    notice: Option<&'static str>,
    secure: bool,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let mut v = Visitor::from_parts(parts, st.app.settings().cookie_secure, true);
        if let Some(cookie) = v.jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) {
            match auth::session_resolve(&st.app, &cookie).await {
                Ok(pair) => v.session = Some(pair),
                Err(Error::Unauthenticated(_) | Error::NotFound) => {
                    v.jar = v.jar.clone().remove(removal(SESSION_COOKIE))
                }
                Err(e) => return Err(v.fail(e)),
            }
        }
        v.lang = choose_lang(&parts.headers, &v.jar, v.session.as_ref().map(|(_, a)| a));
        Ok(v)
    }
}

/// A visitor whose session is complete. Without one, GET pages redirect to sign-in (coming
/// back afterwards) and a session still waiting for its TOTP code goes to that step.
pub struct SignedIn {
    pub v: Visitor,
    pub ctx: Ctx,
    pub account: Account,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let v = Visitor::from_request_parts(parts, st).await?;
        match v.session.clone() {
            Some((s, mut account)) if !s.mfa_pending => {
                // The security page shows a pending enrolment's secret: in clear here only.
                account.totp_secret = maocloud_app::accounts::totp_secret_open(
                    &st.app,
                    account.totp_secret.as_deref(),
                )
                .map_err(|e| v.fail(e))?;
                let ctx = Ctx {
                    principal: auth::principal_of(&account),
                    ip: v.ip.clone(),
                };
                Ok(SignedIn { v, ctx, account })
            }
            Some(_) => Err(v.redirect("/signin/totp")),
            None => Err(v.to_signin()),
        }
    }
}

/// A signed-in operator (any role); a subscriber gets a 403 page.
pub struct OperatorIn(pub SignedIn);

impl FromRequestParts<AppState> for OperatorIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let s = SignedIn::from_request_parts(parts, st).await?;
        match s.ctx.principal {
            Principal::Operator { .. } => Ok(OperatorIn(s)),
            _ => Err(s.v.status_page(
                StatusCode::FORBIDDEN,
                "console.error.forbidden_title",
                s.v.t("console.error.operators_only"),
            )),
        }
    }
}

impl Visitor {
    /// A visitor from the request alone (no session lookup). `set_csrf`: give a fresh
    /// double-submit token to a browser that has none (needs to know whether cookies are Secure).
    pub fn from_parts(parts: &Parts, secure: bool, set_csrf: bool) -> Visitor {
        let mut jar = CookieJar::from_headers(&parts.headers);
        let csrf_sent = jar
            .get(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|t| t.len() >= 32);
        let csrf_anon = match &csrf_sent {
            Some(t) => t.clone(),
            None if set_csrf => {
                let token = auth::new_secret("");
                jar = jar.add(
                    Cookie::build((CSRF_COOKIE, token.clone()))
                        .http_only(true)
                        .same_site(SameSite::Strict)
                        .secure(secure)
                        .path("/"),
                );
                token
            }
            None => String::new(),
        };
        let notice = jar
            .get(FLASH_COOKIE)
            .and_then(|c| NOTICES.iter().copied().find(|n| *n == c.value()));
        if jar.get(FLASH_COOKIE).is_some() {
            jar = jar.remove(removal(FLASH_COOKIE));
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Visitor {
            lang: choose_lang(&parts.headers, &jar, None),
            jar,
            session: None,
            csrf_sent,
            csrf_anon,
            ip,
            method: parts.method.clone(),
            here,
            notice,
            secure,
        }
    }

    /// The signed-in account, when the session is complete (TOTP done, if needed).
    pub fn signed_in(&self) -> Option<(&Session, &Account)> {
        self.session
            .as_ref()
            .filter(|(s, _)| !s.mfa_pending)
            .map(|(s, a)| (s, a))
    }

    pub fn ctx(&self) -> Option<Ctx> {
        self.signed_in().map(|(_, a)| Ctx {
            principal: auth::principal_of(a),
            ip: self.ip.clone(),
        })
    }

    /// The CSRF token forms on this page carry: the session's, or the double-submit one.
    fn csrf(&self) -> &str {
        match &self.session {
            Some((s, _)) => &s.csrf_token,
            None => &self.csrf_anon,
        }
    }

    /// Checks a form's token against the session's (or, with no session, the double-submit
    /// cookie's). A mismatch is a 403 page; nothing has been done.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        let ok = match &self.session {
            Some((s, _)) => same(sent, &s.csrf_token),
            None => self.csrf_sent.as_deref().is_some_and(|c| same(sent, c)),
        };
        if ok {
            Ok(())
        } else {
            Err(self.csrf_refused())
        }
    }

    /// Checks a pre-session form (sign-up, sign-in, password reset) against the double-submit
    /// cookie the browser sent.
    pub fn check_anon_csrf(&self, sent: &str) -> Result<(), Response> {
        if self.csrf_sent.as_deref().is_some_and(|c| same(sent, c)) {
            Ok(())
        } else {
            Err(self.csrf_refused())
        }
    }

    fn csrf_refused(&self) -> Response {
        self.status_page(
            StatusCode::FORBIDDEN,
            "console.error.csrf_title",
            i18n::t(self.lang, "console.error.csrf"),
        )
    }

    pub fn t(&self, key: &str) -> String {
        i18n::t(self.lang, key)
    }

    /// A use case's reason (an English fragment such as "wrong email or password") as a
    /// sentence in the visitor's language, for a message standing on its own.
    pub fn reason_sentence(&self, english: &str) -> String {
        let r = i18n::reason(self.lang, english);
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

    /// Leaves a notice (a key of [`NOTICES`]) for the next page.
    pub fn flash(&mut self, notice: &'static str) {
        debug_assert!(NOTICES.contains(&notice));
        self.jar = self.jar.clone().add(
            Cookie::build((FLASH_COOKIE, notice))
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .path("/")
                .max_age(time::Duration::minutes(5)),
        );
    }

    /// Sets the session cookie for a session just opened.
    pub fn set_session_cookie(
        &mut self,
        cookie: String,
        session: &Session,
        now: maocloud_types::Timestamp,
    ) {
        let secs = session.expires_at.duration_since(now).as_secs().max(0);
        self.jar = self.jar.clone().add(
            Cookie::build((SESSION_COOKIE, cookie))
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .path("/")
                .max_age(time::Duration::seconds(secs)),
        );
    }

    pub fn clear_session_cookie(&mut self) {
        self.jar = self.jar.clone().remove(removal(SESSION_COOKIE));
    }

    pub fn set_lang(&mut self, lang: Lang) {
        self.lang = lang;
        self.jar = self.jar.clone().add(
            Cookie::build((LANG_COOKIE, lang.code()))
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure)
                .path("/")
                .max_age(time::Duration::days(365)),
        );
    }

    /// The context every page has: language, CSRF tokens, who is signed in, the notice.
    fn base_context(&self) -> Value {
        #[derive(Serialize)]
        struct User {
            name: String,
            email: String,
            is_operator: bool,
            is_admin: bool,
            /// Admins and billing operators: offers, invoicing, payments.
            can_bill: bool,
            role: &'static str,
        }
        let user = self.signed_in().map(|(_, a)| {
            let role = match auth::principal_of(a) {
                Principal::Operator { role, .. } => Some(role),
                _ => None,
            };
            User {
                name: a.display_name.clone(),
                email: a.email.clone(),
                is_operator: a.kind == AccountKind::Operator,
                is_admin: role == Some(OperatorRole::Admin),
                can_bill: matches!(role, Some(OperatorRole::Admin | OperatorRole::Billing)),
                role: role.map_or("", |r| r.as_str()),
            }
        });
        context! {
            lang => self.lang.code(),
            csrf => self.csrf(),
            csrf_anon => &self.csrf_anon,
            user => user,
            notice => self.notice.map(|n| self.t(&format!("console.notice.{n}"))),
            here => &self.here,
            css_url => super::assets::url("app.css"),
            icon_url => super::assets::url("favicon.svg"),
            errors => Value::from(std::collections::BTreeMap::<String, String>::new()),
            error_list => Value::from(Vec::<Value>::new()),
        }
    }

    /// A page: the template rendered with the base context and `ctx` (whose keys win).
    pub fn page(&self, status: StatusCode, template: &str, ctx: Value) -> Response {
        let full = context! { ..ctx, ..self.base_context() };
        match view::render(template, full) {
            Ok(html) => self.html(status, html),
            Err(e) => {
                tracing::error!(
                    template,
                    error = format!("{e:#}"),
                    "console template failed"
                );
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    fn html(&self, status: StatusCode, body: String) -> Response {
        let mut r = (status, self.jar.clone(), body).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, Accept-Language"),
        );
        r
    }

    /// A 303 to a local path, with the cookies set so far.
    pub fn redirect(&self, to: &str) -> Response {
        (self.jar.clone(), Redirect::to(to)).into_response()
    }

    /// Where a signed-in account lands: subscribers in their area, operators in the back office.
    pub fn home_of(account: &Account) -> &'static str {
        match account.kind {
            AccountKind::Operator => "/admin",
            AccountKind::Subscriber => "/account",
        }
    }

    /// The sign-in page, coming back here afterwards (for GET pages).
    pub fn to_signin(&self) -> Response {
        if self.method == Method::GET {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", &self.here)
                .finish();
            self.redirect(&format!("/signin?{q}"))
        } else {
            self.redirect("/signin")
        }
    }

    /// An error page with a title key and a message.
    pub fn status_page(&self, status: StatusCode, title_key: &str, message: String) -> Response {
        let ctx = context! {
            code => status.as_u16(),
            title => self.t(title_key),
            message => message,
            show_signin => status == StatusCode::UNAUTHORIZED,
        };
        self.page(status, "status.html", ctx)
    }

    /// The page for an error a handler cannot show next to a form field.
    pub fn fail(&self, e: Error) -> Response {
        let reason = |s: &str| self.reason_sentence(s);
        match e {
            Error::Unauthenticated(_) => {
                let mut v = self.clone();
                v.clear_session_cookie();
                v.to_signin()
            }
            Error::Forbidden(why) => self.status_page(
                StatusCode::FORBIDDEN,
                "console.error.forbidden_title",
                reason(why),
            ),
            Error::NotFound => self.status_page(
                StatusCode::NOT_FOUND,
                "console.error.not_found_title",
                self.t("console.error.not_found"),
            ),
            Error::Conflict { reason: r, .. } => self.status_page(
                StatusCode::CONFLICT,
                "console.error.conflict_title",
                reason(&r),
            ),
            Error::Invalid(fields) => {
                let text = fields
                    .iter()
                    .map(|f| {
                        let field = self.t(&format!("console.field.{}", f.field));
                        i18n::tf(
                            self.lang,
                            "console.form.summary_item",
                            &[
                                ("field", &field),
                                ("reason", &i18n::reason(self.lang, &f.reason)),
                            ],
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" · ");
                self.status_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "console.error.invalid_title",
                    text,
                )
            }
            Error::TooManyRequests { retry_after_secs } => {
                let mut r = self.status_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "console.error.too_many_title",
                    self.too_many(retry_after_secs),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Error::Storage { code, .. } => {
                let (status, _, _) = crate::error::classify(&Error::Storage {
                    code,
                    field: None,
                    reason: String::new(),
                });
                self.status_page(
                    status,
                    "console.error.conflict_title",
                    self.t(&format!("console.storage.refused.{code:?}")),
                )
            }
            Error::Unavailable(src) => {
                tracing::error!(error = %src, "database unavailable");
                self.status_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "console.error.unavailable_title",
                    self.t("console.error.unavailable"),
                )
            }
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error in the console");
                self.status_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "console.error.internal_title",
                    self.t("console.error.internal"),
                )
            }
        }
    }

    /// "Too many attempts; try again in N minutes", in the visitor's language.
    pub fn too_many(&self, retry_after_secs: u64) -> String {
        let minutes = retry_after_secs.div_ceil(60).max(1).to_string();
        i18n::tf(
            self.lang,
            "console.error.too_many",
            &[("minutes", &minutes)],
        )
    }
}

/// A cookie removal that matches how the cookie was set (same name and path).
fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build(name).path("/").into()
}

/// Constant-time comparison of two tokens.
fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && maocloud_types::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The page language: the `lang` cookie, else the account's locale, else `Accept-Language`,
/// else French.
fn choose_lang(headers: &HeaderMap, jar: &CookieJar, account: Option<&Account>) -> Lang {
    if let Some(c) = jar.get(LANG_COOKIE) {
        match c.value() {
            "fr" => return Lang::Fr,
            "en" => return Lang::En,
            _ => {}
        }
    }
    if let Some(a) = account {
        return Lang::parse(&a.locale);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(negotiate)
        .unwrap_or(Lang::Fr)
}

/// The best of French and English for an `Accept-Language` header (by q-value, then order).
pub fn negotiate(header: &str) -> Lang {
    let mut best: Option<(f32, Lang)> = None;
    for range in header.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let lang = match primary {
            "fr" => Lang::Fr,
            "en" => Lang::En,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::Fr, |(_, l)| l)
}

/// A `next=` target we may redirect to: a local path (one leading `/`, no scheme, no host).
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 1024
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(
            local_path("/account/tokens?x=1"),
            Some("/account/tokens?x=1")
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "",
            "/a\r\nb",
            "/a\\b",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_language_picks_the_best_of_ours() {
        assert_eq!(negotiate("en-US,en;q=0.9"), Lang::En);
        assert_eq!(negotiate("de-DE,en;q=0.8,fr;q=0.9"), Lang::Fr);
        assert_eq!(negotiate("de-DE,en;q=0.5"), Lang::En);
        assert_eq!(negotiate("de"), Lang::Fr);
        assert_eq!(negotiate("fr-CA,fr;q=0.9,en;q=0.8"), Lang::Fr);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", ""));
    }
}
