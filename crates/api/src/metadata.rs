//! The guests' metadata service (EC2- and OpenStack-style paths), served on its own listener
//! that hosts redirect 169.254.169.254:80 to. The guest is known by its source address: each
//! reads only its own VM's data, and any other address gets 404.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maocloud_app::compute::metadata::{self, Metadata};
use maocloud_app::App;
use serde_json::json;
use std::net::SocketAddr;

pub fn router(app: App) -> Router {
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
        .with_state(app)
}

async fn me(app: &App, peer: SocketAddr) -> Result<Metadata, Response> {
    match metadata::for_ip(app, &peer.ip().to_string()).await {
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

async fn ec2_index(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    match me(&app, peer).await {
        Ok(_) => text(
            "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\ninstance-type\npublic-keys/\n"
                .into(),
        ),
        Err(r) => r,
    }
}

async fn ec2(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(key): Path<String>,
) -> Response {
    let m = match me(&app, peer).await {
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

async fn user_data(State(app): State<App>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    match me(&app, peer).await {
        Ok(Metadata {
            user_data: Some(u), ..
        }) => text(u),
        Ok(_) => (StatusCode::NOT_FOUND, "no user-data\n").into_response(),
        Err(r) => r,
    }
}

async fn openstack_meta(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match me(&app, peer).await {
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
