//! Static files (the stylesheet, the icon, the serial console's script), embedded in the
//! binary and served with a long cache lifetime: pages link them with a `?v=` content hash, so
//! a new build is fetched at once.

use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        name: "serial.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/serial.js"),
    },
];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/static/{name}", get(serve)).route(
        "/favicon.ico",
        get(|| async { axum::response::Redirect::permanent(&url("favicon.svg")) }),
    )
}

/// The address of an asset, with its content hash.
pub fn url(name: &str) -> String {
    static URLS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    let urls = URLS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash: String = Sha256::digest(a.body)
                    .iter()
                    .take(6)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                (a.name, format!("/static/{}?v={hash}", a.name))
            })
            .collect()
    });
    urls.get(name)
        .cloned()
        .unwrap_or_else(|| format!("/static/{name}"))
}

async fn serve(Path(name): Path<String>, req: Request) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return super::not_found_page(req).await;
    };
    let mut r = (StatusCode::OK, asset.body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}
