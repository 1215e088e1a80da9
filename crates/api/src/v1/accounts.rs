//! Accounts: sign-up, the caller's own profile, email verification, password reset, TOTP.

use super::ts;
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, ClientIp, Json};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use maocloud_app::{accounts, model::SubscriberProfile};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(me, me_update))
        .routes(routes!(profile_update))
        .routes(routes!(terms_current))
        .routes(routes!(email_verify))
        .routes(routes!(email_verification_resend))
        .routes(routes!(password_reset_request))
        .routes(routes!(password_reset_complete))
        .routes(routes!(totp_begin))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
}

/// A subscriber's sign-up form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    /// 10 characters at least.
    pub password: String,
    pub full_name: String,
    /// `consumer` or `professional`.
    pub customer_kind: String,
    /// Professionals only.
    pub company_name: Option<String>,
    /// SIREN (9 digits) or SIRET (14 digits); professionals only.
    pub company_id: Option<String>,
    /// EU VAT number; professionals only.
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub phone: Option<String>,
    /// The version of the terms being accepted: must be the current one (`GET /api/v1/terms/current`).
    pub accept_terms_version: String,
    /// `fr` (default) or `en`.
    pub locale: Option<String>,
}

impl From<SignupRequest> for accounts::SignupInput {
    fn from(r: SignupRequest) -> Self {
        accounts::SignupInput {
            email: r.email,
            password: r.password,
            full_name: r.full_name,
            customer_kind: r.customer_kind,
            company_name: r.company_name,
            company_id: r.company_id,
            vat_number: r.vat_number,
            address_line1: r.address_line1,
            address_line2: r.address_line2,
            postal_code: r.postal_code,
            city: r.city,
            country: r.country,
            phone: r.phone,
            accept_terms_version: r.accept_terms_version,
            locale: r.locale,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    pub subscriber_id: String,
    /// A verification link was emailed.
    pub email_verification_sent: bool,
}

/// Subscribe: creates a subscriber account and records the acceptance of the current terms.
#[utoipa::path(post, path = "/api/v1/signup", tag = "accounts", request_body = SignupRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = SignupResponse), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn signup(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SignupRequest>,
) -> ApiResult<(StatusCode, axum::Json<SignupResponse>)> {
    let id = accounts::signup(&st.app, &ip, &req.into()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SignupResponse {
            subscriber_id: id.to_string(),
            email_verification_sent: true,
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub customer_kind: String,
    pub full_name: String,
    pub company_name: Option<String>,
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
    pub phone: Option<String>,
    pub status: String,
}

impl From<SubscriberProfile> for ProfileView {
    fn from(p: SubscriberProfile) -> Self {
        ProfileView {
            customer_kind: p.customer_kind,
            full_name: p.full_name,
            company_name: p.company_name,
            company_id: p.company_id,
            vat_number: p.vat_number,
            address_line1: p.address_line1,
            address_line2: p.address_line2,
            postal_code: p.postal_code,
            city: p.city,
            country: p.country,
            phone: p.phone,
            status: p.status,
        }
    }
}

/// The signed-in caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub id: String,
    /// `subscriber` or `operator`.
    pub kind: String,
    pub email: String,
    pub display_name: String,
    /// Operators only: admin, billing, support or abuse.
    pub role: Option<String>,
    pub locale: String,
    pub email_verified: bool,
    pub totp_enabled: bool,
    pub created_at: String,
    /// Subscribers only.
    pub profile: Option<ProfileView>,
    pub unread_messages: i64,
    /// Subscribers: `electronic` or `paper` (R-6.1c).
    pub invoice_delivery: Option<String>,
}

/// Who am I: the account behind the token.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = Problem)))]
async fn me(State(st): State<AppState>, Auth(ctx): Auth) -> ApiResult<axum::Json<MeView>> {
    let me = accounts::me(&st.app, &ctx).await?;
    Ok(axum::Json(me_view(me)))
}

fn me_view(me: accounts::Me) -> MeView {
    let a = me.account;
    MeView {
        id: a.id.to_string(),
        kind: a.kind.as_str().into(),
        email: a.email,
        display_name: a.display_name,
        role: a.role.map(|r| r.as_str().into()),
        locale: a.locale,
        email_verified: a.email_verified_at.is_some(),
        totp_enabled: a.totp_enabled,
        created_at: ts(a.created_at),
        profile: me.profile.map(Into::into),
        unread_messages: me.unread_messages,
        invoice_delivery: me.invoice_delivery,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeUpdate {
    /// `fr` or `en`.
    pub locale: Option<String>,
    /// Subscribers: `electronic` (default) or `paper` invoices (R-6.1c).
    pub invoice_delivery: Option<String>,
}

/// Change the caller's settings (language).
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), request_body = MeUpdate,
    responses((status = 200, body = MeView), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn me_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(req): Json<MeUpdate>,
) -> ApiResult<axum::Json<MeView>> {
    if let Some(l) = &req.locale {
        accounts::set_locale(&st.app, &ctx, l).await?;
    }
    if let Some(d) = &req.invoice_delivery {
        maocloud_app::billing::set_invoice_delivery(&st.app, &ctx, d).await?;
    }
    Ok(axum::Json(me_view(accounts::me(&st.app, &ctx).await?)))
}

/// A subscriber's identity and billing details, as at sign-up (every field is replaced).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub full_name: String,
    /// `consumer` or `professional`.
    pub customer_kind: String,
    pub company_name: Option<String>,
    /// SIREN or SIRET (professionals).
    pub company_id: Option<String>,
    pub vat_number: Option<String>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    /// Two-letter country code.
    pub country: String,
    pub phone: Option<String>,
}

/// Correct your identity or billing details (subscribers, R-9.5 rectification). Invoices
/// already issued keep the details of their day; the next ones use these.
#[utoipa::path(put, path = "/api/v1/me/profile", tag = "accounts", security(("bearer" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = MeView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn profile_update(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(r): Json<ProfileUpdate>,
) -> ApiResult<axum::Json<MeView>> {
    let input = accounts::ProfileInput {
        full_name: r.full_name,
        customer_kind: r.customer_kind,
        company_name: r.company_name,
        company_id: r.company_id,
        vat_number: r.vat_number,
        address_line1: r.address_line1,
        address_line2: r.address_line2,
        postal_code: r.postal_code,
        city: r.city,
        country: r.country,
        phone: r.phone,
    };
    accounts::profile_update(&st.app, &ctx, &input).await?;
    Ok(axum::Json(me_view(accounts::me(&st.app, &ctx).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsView {
    pub version: String,
    pub title: String,
    /// The full text (Markdown, French).
    pub body: String,
    pub effective_at: String,
}

/// The terms of service in force, which sign-up must accept.
#[utoipa::path(get, path = "/api/v1/terms/current", tag = "accounts", responses((status = 200, body = TermsView)))]
async fn terms_current(State(st): State<AppState>) -> ApiResult<axum::Json<TermsView>> {
    let t = maocloud_app::terms::current(&st.app).await?;
    Ok(axum::Json(TermsView {
        version: t.version,
        title: t.title,
        body: t.body,
        effective_at: ts(t.effective_at),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token from the emailed link.
    pub token: String,
}

/// Confirm an email address with the emailed token.
#[utoipa::path(post, path = "/api/v1/email-verification/confirm", tag = "accounts", request_body = TokenBody,
    responses((status = 204), (status = 422, body = Problem)))]
async fn email_verify(
    State(st): State<AppState>,
    Json(req): Json<TokenBody>,
) -> ApiResult<StatusCode> {
    accounts::verify_email(&st.app, &req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Email a new verification link to the caller.
#[utoipa::path(post, path = "/api/v1/me/email-verification", tag = "accounts", security(("bearer" = [])),
    responses((status = 202), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn email_verification_resend(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<StatusCode> {
    accounts::resend_verification(&st.app, &ctx).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: String,
}

/// Ask for a password-reset link by email. Answers 202 whether or not the address has an account.
#[utoipa::path(post, path = "/api/v1/password-reset", tag = "accounts", request_body = PasswordResetRequest,
    responses((status = 202), (status = 422, body = Problem)))]
async fn password_reset_request(
    State(st): State<AppState>,
    Json(req): Json<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    accounts::password_reset_request(&st.app, &req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetComplete {
    pub token: String,
    pub password: String,
}

/// Set a new password with the emailed token; every session and token of the account is revoked.
#[utoipa::path(post, path = "/api/v1/password-reset/complete", tag = "accounts", request_body = PasswordResetComplete,
    responses((status = 204), (status = 422, body = Problem)))]
async fn password_reset_complete(
    State(st): State<AppState>,
    Json(req): Json<PasswordResetComplete>,
) -> ApiResult<StatusCode> {
    accounts::password_reset_complete(&st.app, &req.token, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret, shown once.
    pub secret: String,
    /// For authenticator apps (QR code).
    pub otpauth_uri: String,
}

/// Start TOTP enrolment; confirm with a code to turn it on.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "accounts", security(("bearer" = [])),
    responses((status = 201, body = TotpEnrolment), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn totp_begin(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<(StatusCode, axum::Json<TotpEnrolment>)> {
    let (secret, otpauth_uri) = accounts::totp_begin(&st.app, &ctx).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TotpEnrolment {
            secret,
            otpauth_uri,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The 6-digit code the authenticator shows now.
    pub code: String,
}

/// Turn TOTP on with a current code.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "accounts", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn totp_confirm(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(req): Json<TotpCode>,
) -> ApiResult<StatusCode> {
    accounts::totp_confirm(&st.app, &ctx, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turn TOTP off with a current code (not for operators).
#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "accounts", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn totp_disable(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Json(req): Json<TotpCode>,
) -> ApiResult<StatusCode> {
    accounts::totp_disable(&st.app, &ctx, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}
