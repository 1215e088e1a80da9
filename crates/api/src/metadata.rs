//! The guests' metadata service (EC2- and OpenStack-style paths), served on its own listener
//! that hosts redirect 169.254.169.254:80 to. The guest is known by its source address: each
//! reads only its own VM's data, and any other address gets 404. Guests of remote hosts reach
//! the same service through their agent's proxy, which names the guest's address and proves
//! which host it speaks for with that host's secret.

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maocloud_app::compute::metadata::{self, Metadata};
use maocloud_app::App;
use maocloud_types::HostId;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Clone)]
struct Meta {
    app: App,
    /// Requests come from agents' proxies, not from guests directly.
    proxied: bool,
}

fn routes() -> Router<Meta> {
    Router::new()
        .route("/", get(|| async { "latest\nopenstack\n" }))
        .route("/latest", get(|| async { "meta-data/\nuser-data\n" }))
        .route("/latest/", get(|| async { "meta-data/\nuser-data\n" }))
        .route("/latest/meta-data", get(ec2_index))
        .route("/latest/meta-data/", get(ec2_index))
        .route("/latest/meta-data/{*key}", get(ec2))
        .route("/latest/user-data", get(user_data))
        .route("/openstack", get(|| async { "latest\n" }))
        .route("/openstack/latest/meta_data.json", get(openstack_meta))
        .route("/openstack/latest/user_data", get(user_data))
}

/// The service guests of this machine's host reach directly.
pub fn router(app: App) -> Router {
    routes().with_state(Meta {
        app,
        proxied: false,
    })
}

/// Where agents' proxies forward their guests' requests (mounted on the main listener).
pub const PROXY_PREFIX: &str = "/agent-metadata";
/// Headers of a proxied request: the host the agent speaks for, and the guest's address.
pub const HOST_HEADER: &str = "x-maocloud-host";
pub const GUEST_HEADER: &str = "x-maocloud-guest";

/// The same service for guests of remote hosts, to mount under [`PROXY_PREFIX`].
pub fn proxied_router(app: App) -> Router {
    routes().with_state(Meta { app, proxied: true })
}

/// Which guest asks: its address, and for a proxied request the host it must be on.
struct Guest {
    ip: String,
    host: Option<HostId>,
}

impl FromRequestParts<Meta> for Guest {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &Meta) -> Result<Self, Self::Rejection> {
        if !st.proxied {
            let ConnectInfo(peer) = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .cloned()
                .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
            return Ok(Guest {
                ip: peer.ip().to_string(),
                host: None,
            });
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let refused =
            || (StatusCode::UNAUTHORIZED, "not an agent of this platform\n").into_response();
        let secret = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
            .ok_or_else(refused)?;
        let host: HostId = header(HOST_HEADER)
            .and_then(|h| h.parse().ok())
            .ok_or_else(refused)?;
        let ip = header(GUEST_HEADER)
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .ok_or_else(refused)?;
        match maocloud_app::compute::hosts::verify_agent(&st.app, host, &secret).await {
            Ok(true) => Ok(Guest {
                ip,
                host: Some(host),
            }),
            Ok(false) => Err(refused()),
            Err(e) => {
                tracing::warn!(error = %e, "agent check failed");
                Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
            }
        }
    }
}

async fn me(app: &App, guest: &Guest) -> Result<Metadata, Response> {
    match metadata::for_ip(app, &guest.ip, guest.host).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no VM has this address\n").into_response()),
        Err(e) => {
            tracing::warn!(error = %e, "metadata lookup failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

fn text(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

async fn ec2_index(State(st): State<Meta>, guest: Guest) -> Response {
    match me(&st.app, &guest).await {
        Ok(_) => text(
            "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\ninstance-type\npublic-keys/\n"
                .into(),
        ),
        Err(r) => r,
    }
}

async fn ec2(State(st): State<Meta>, guest: Guest, Path(key): Path<String>) -> Response {
    let m = match me(&st.app, &guest).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let key = key.trim_end_matches('/');
    let value = match key {
        "instance-id" => Some(m.instance_id.clone()),
        "hostname" | "local-hostname" => Some(m.hostname.clone()),
        "local-ipv4" => Some(m.local_ipv4.clone()),
        "instance-type" => Some(m.size.clone()),
        "public-keys" => Some(
            m.public_keys
                .iter()
                .enumerate()
                .map(|(i, (n, _))| format!("{i}={n}\n"))
                .collect(),
        ),
        _ => key.strip_prefix("public-keys/").and_then(|rest| {
            let (i, what) = rest.split_once('/').unwrap_or((rest, ""));
            let (_, k) = m.public_keys.get(i.parse::<usize>().ok()?)?;
            match what {
                "" => Some("openssh-key\n".into()),
                "openssh-key" => Some(format!("{k}\n")),
                _ => None,
            }
        }),
    };
    match value {
        Some(v) => text(v),
        None => (StatusCode::NOT_FOUND, "no such metadata\n").into_response(),
    }
}

async fn user_data(State(st): State<Meta>, guest: Guest) -> Response {
    match me(&st.app, &guest).await {
        Ok(Metadata {
            user_data: Some(u), ..
        }) => text(u),
        Ok(_) => (StatusCode::NOT_FOUND, "no user-data\n").into_response(),
        Err(r) => r,
    }
}

async fn openstack_meta(State(st): State<Meta>, guest: Guest) -> Response {
    match me(&st.app, &guest).await {
        Ok(m) => axum::Json(json!({
            "uuid": m.instance_id,
            "name": m.name,
            "hostname": m.hostname,
            "public_keys": m.public_keys.iter().map(|(n, k)| (n.clone(), json!(k))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "keys": m.public_keys.iter().map(|(n, k)| json!({"name": n, "type": "ssh", "data": k})).collect::<Vec<_>>(),
            "launch_index": 0,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// Where agents copy image files from: `GET /agent-images?path=…` with the host's credentials
/// (as for the metadata proxy). Only a registered image's file is served.
pub const IMAGES_PATH: &str = "/agent-images";

pub fn images_router(app: App) -> Router {
    Router::new()
        .route(IMAGES_PATH, get(image_file))
        .with_state(app)
}

#[derive(serde::Deserialize)]
struct ImageQuery {
    path: String,
}

async fn image_file(
    State(app): State<App>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ImageQuery>,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let refused = || (StatusCode::UNAUTHORIZED, "not an agent of this platform\n").into_response();
    let Some(secret) =
        header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
    else {
        return refused();
    };
    let Some(host) = header(HOST_HEADER).and_then(|h| h.parse().ok()) else {
        return refused();
    };
    let path =
        match maocloud_app::compute::images::file_for_host(&app, host, &secret, &q.path).await {
            Ok(p) => p,
            Err(maocloud_app::Error::Unauthenticated(_)) => return refused(),
            Err(maocloud_app::Error::NotFound) => {
                return (StatusCode::NOT_FOUND, "no such image file\n").into_response()
            }
            Err(e) => {
                tracing::warn!(error = %e, "image file lookup failed");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
    match tokio::fs::File::open(&path).await {
        Ok(f) => {
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            // Streamed in 1 MiB chunks: an image may be far larger than memory.
            let chunks = futures::stream::unfold(f, |mut f| async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok::<_, std::io::Error>(buf), f))
                    }
                    Err(e) => Some((Err(e), f)),
                }
            });
            let body = axum::body::Body::from_stream(chunks);
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_LENGTH, len.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            "the image file is missing on the control plane\n",
        )
            .into_response(),
    }
}
