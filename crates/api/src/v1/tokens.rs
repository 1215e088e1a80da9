//! API tokens: sign in (email + password [+ TOTP] → bearer token), create more, list, revoke.

use super::{path_id, ts};
use crate::error::{ApiResult, Problem};
use crate::extract::{Auth, ClientIp, Json, MaybeAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use maocloud_app::{auth, model::ApiToken, Error};
use maocloud_types::ApiTokenId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token_create, token_list))
        .routes(routes!(token_revoke))
}

/// Either credentials (sign-in), or nothing but a name when already authenticated.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Sign-in: the account's email.
    pub email: Option<String>,
    /// Sign-in: the password.
    pub password: Option<String>,
    /// Sign-in: the current TOTP code, when the account has TOTP (always for operators).
    pub totp: Option<String>,
    /// A label to recognise the token by.
    pub name: Option<String>,
    /// Lifetime in days (1 to 3650; default 90).
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id.to_string(),
            name: t.name,
            prefix: t.prefix,
            created_at: ts(t.created_at),
            expires_at: t.expires_at.map(ts),
            last_used_at: t.last_used_at.map(ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenView {
    /// The bearer token: shown this once.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

/// Create a token. With `email` and `password` (and `totp` when needed) this is sign-in;
/// otherwise the caller must already send a bearer token, and gets another one.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry is refused rather than showing the secret twice")),
    responses((status = 201, body = IssuedTokenView), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn token_create(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    MaybeAuth(caller): MaybeAuth,
    Json(req): Json<TokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<IssuedTokenView>)> {
    let issued = match (&req.email, &req.password, caller) {
        (Some(email), Some(password), _) => {
            auth::token_sign_in(
                &st.app,
                &ip,
                email,
                password,
                req.totp.as_deref(),
                req.name.as_deref(),
                req.expires_in_days,
            )
            .await?
        }
        (Some(_), None, _) => return Err(Error::invalid("password", "is required").into()),
        (None, Some(_), _) => return Err(Error::invalid("email", "is required").into()),
        (None, None, Some(ctx)) => {
            auth::token_create(
                &st.app,
                &ctx,
                req.name.as_deref().unwrap_or("api"),
                req.expires_in_days,
            )
            .await?
        }
        (None, None, None) => {
            return Err(
                Error::Unauthenticated("give email and password, or send a bearer token").into(),
            )
        }
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(IssuedTokenView {
            token: issued.token,
            info: issued.info.into(),
        }),
    ))
}

/// The caller's live tokens, newest first.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = Problem)))]
async fn token_list(
    State(st): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    Ok(axum::Json(
        auth::token_list(&st.app, &ctx)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Revoke one of the caller's tokens (another's is 404).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn token_revoke(
    State(st): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ApiTokenId = path_id(&id)?;
    auth::token_revoke(&st.app, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
