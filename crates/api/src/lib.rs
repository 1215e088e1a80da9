//! The HTTP layer: the JSON API under `/api/v1`, the server-rendered web console, `/healthz`,
//! `/metrics` and the generated OpenAPI document. Only this crate speaks HTTP.
//!
//! Handlers are thin: parse the request into a use case's input, call `maocloud_app`, turn the
//! result into a view. Errors become problem+json in one place (`error.rs`). The route table and
//! the OpenAPI document are built from the same annotated handlers, so they cannot drift apart.

pub mod agent_link;
pub mod console;
pub mod error;
pub mod extract;
pub mod metadata;
pub mod metrics;
mod middleware;
pub mod s3;
mod system;
pub mod v1;

use axum::Router;
use maocloud_app::App;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Largest request body accepted anywhere (the console's forms and the JSON API).
pub const BODY_LIMIT: usize = 64 * 1024;

/// `Content-Disposition` of a download named `name`: an ASCII fallback and the UTF-8 name
/// (RFC 6266, RFC 8187). One builder for every download the console and the API serve.
pub(crate) fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ' ' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut utf8 = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            utf8.push(b as char);
        } else {
            utf8.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<metrics::Metrics>,
    /// A bearer token Prometheus may use for `GET /metrics` besides operator tokens.
    pub metrics_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Maocloud API",
        description = "The public API of a Maocloud platform. Errors are `application/problem+json` \
                       naming the offending field; lists are cursor-paginated (`limit`, `cursor` → \
                       `next_cursor`); POSTs that create things honour `Idempotency-Key`.",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&SecurityAddon),
    components(schemas(error::Problem, error::ProblemField))
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API routes and their OpenAPI document, from one table.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(v1::routes())
        .split_for_parts()
}

/// The OpenAPI document as checked into the repository (`openapi.json`).
pub fn openapi_json() -> String {
    let (_, doc) = api();
    let mut s = doc.to_pretty_json().expect("OpenAPI serialises");
    s.push('\n');
    s
}

/// The whole HTTP application: API, console, health and metrics.
pub fn app(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(openapi_json_from(&doc));
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        (*doc).clone(),
                    )
                }
            }),
        )
        .merge(console::routes())
        .route_service(
            metadata::IMAGES_PATH,
            metadata::images_router(state.app.clone()),
        )
        .nest_service(
            metadata::PROXY_PREFIX,
            metadata::proxied_router(state.app.clone()),
        )
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .with_state(state)
}

fn openapi_json_from(doc: &utoipa::openapi::OpenApi) -> String {
    let mut s = doc.to_pretty_json().expect("OpenAPI serialises");
    s.push('\n');
    s
}
