//! Request extractors: a JSON body parsed strictly (size, content type, unknown fields, the path
//! of the offending field), the caller's identity from a bearer token, and the client's address.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use maocloud_app::{auth, Ctx, Error};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// A JSON body. Rejections are problem+json naming the field at fault.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::bad_request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                let status = e.status();
                let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "the body is too large".to_string()
                } else {
                    format!("the body could not be read: {e}")
                };
                ApiError::bad_request(status, None, detail)
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, reporting the path of the first offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let msg = inner.to_string();
        // Unknown and missing fields name themselves in backticks; other errors carry a path.
        let named = |marker: &str| {
            msg.split(marker)
                .nth(1)
                .and_then(|r| r.split('`').next())
                .map(str::to_owned)
        };
        let path = e.path().to_string();
        let field = if path != "." && !msg.starts_with("missing field") {
            // The path already ends with the offending (or unknown) field.
            Some(path.clone())
        } else if msg.starts_with("unknown field") {
            named("unknown field `")
        } else if msg.starts_with("missing field") {
            named("missing field `").map(|f| {
                if path == "." {
                    f
                } else {
                    format!("{path}.{f}")
                }
            })
        } else {
            None
        };
        let status = if inner.is_syntax() || inner.is_eof() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ApiError::bad_request(status, field, msg)
    })
}

/// The client's address (the socket peer).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientIp(ip))
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated caller of an API route (bearer token). Absent or bad: 401.
pub struct Auth(pub Ctx);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let st = AppState::from_ref(state);
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientIp("unknown".into()));
        let Some(token) = bearer(parts) else {
            return Err(
                Error::Unauthenticated("sign in: send Authorization: Bearer <token>").into(),
            );
        };
        let principal = auth::principal_from_token(&st.app, token).await?;
        Ok(Auth(Ctx { principal, ip }))
    }
}

/// Like [`Auth`], but a request without an Authorization header is allowed through as `None`.
pub struct MaybeAuth(pub Option<Ctx>);

impl<S> FromRequestParts<S> for MaybeAuth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(MaybeAuth(None));
        }
        Auth::from_request_parts(parts, state)
            .await
            .map(|Auth(c)| MaybeAuth(Some(c)))
    }
}

/// Extractors for operators holding a role, checked before the body is read (so a subscriber
/// is told 403, not what is wrong with the body). Admins hold every role.
macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $($role:ident),+) => {
        $(#[$doc])*
        pub struct $name(pub Ctx);

        impl<S> FromRequestParts<S> for $name
        where
            AppState: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let Auth(ctx) = Auth::from_request_parts(parts, state).await?;
                ctx.require_operator(&[$(maocloud_types::OperatorRole::$role),+])?;
                Ok($name(ctx))
            }
        }
    };
}

role_extractor!(
    /// An admin operator.
    AdminAuth, Admin
);
role_extractor!(
    /// An operator with the billing role (or an admin).
    BillingAuth, Billing
);
role_extractor!(
    /// An operator of the support or billing desk (or an admin): proof requests and incidents.
    DeskAuth, Support, Billing
);
role_extractor!(
    /// An operator who may confirm or lift a suspension: abuse or billing (or an admin).
    SuspensionAuth, Abuse, Billing
);
role_extractor!(
    /// An operator of the abuse desk (or an admin).
    AbuseAuth, Abuse
);
role_extractor!(
    /// An operator of the support desk (or an admin).
    SupportAuth, Support
);
role_extractor!(
    /// An operator of any desk, support, billing or abuse (or an admin): the support queue.
    OperatorAuth, Support, Billing, Abuse
);
