//! The wire between the control plane and a remote hypervisor agent (`maocloud agent`): the
//! agent serves its typed command API ([`Agent`]) as JSON over HTTP, guarded by a secret it
//! chose and gave the control plane when it joined; [`RemoteAgent`] is the control plane's
//! client, itself an [`Agent`], so placement and the converge jobs do not care where a host is.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use maocloud_hypervisor::{
    Agent, AgentError, AgentResult, Counters, HostReport, NetworkSpec, Resources, VmSpec, VmStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// An agent error as it crosses the wire.
#[derive(Debug, Serialize, Deserialize)]
struct WireError {
    kind: String,
    message: String,
    id: Option<Uuid>,
}

fn to_wire(e: &AgentError) -> (StatusCode, WireError) {
    let (status, kind, id) = match e {
        AgentError::NoSuchVm(id) => (StatusCode::NOT_FOUND, "no_such_vm", Some(*id)),
        AgentError::Conflict(_) => (StatusCode::CONFLICT, "conflict", None),
        AgentError::Capacity(_) => (StatusCode::CONFLICT, "capacity", None),
        AgentError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", None),
        AgentError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "failed", None),
    };
    let message = match e {
        AgentError::Conflict(m)
        | AgentError::Capacity(m)
        | AgentError::Invalid(m)
        | AgentError::Failed(m) => m.clone(),
        AgentError::NoSuchVm(_) => e.to_string(),
    };
    (
        status,
        WireError {
            kind: kind.into(),
            message,
            id,
        },
    )
}

fn from_wire(w: WireError) -> AgentError {
    match w.kind.as_str() {
        "no_such_vm" => AgentError::NoSuchVm(w.id.unwrap_or_default()),
        "conflict" => AgentError::Conflict(w.message),
        "capacity" => AgentError::Capacity(w.message),
        "invalid" => AgentError::Invalid(w.message),
        _ => AgentError::Failed(w.message),
    }
}

#[derive(Clone)]
struct Served {
    agent: Arc<dyn Agent>,
    secret: Arc<String>,
    remote: Option<Arc<RemoteSide>>,
}

/// What a host that joined a platform over the network does on its own: its guests' metadata
/// requests go to its proxy on `metadata_port` ([`metadata_proxy`]), and it copies the images
/// its VMs boot from into `image_dir` (the control plane's paths are not on this machine).
pub struct RemoteSide {
    pub metadata_port: u16,
    pub platform: ProxyTarget,
    pub image_dir: std::path::PathBuf,
}

/// The agent's HTTP side: `POST /agent/v1/{command}` with a JSON body, `Authorization: Bearer
/// <secret>`.
pub fn router(agent: Arc<dyn Agent>, secret: String, remote: Option<RemoteSide>) -> Router {
    Router::new()
        .route("/agent/v1/{command}", post(command))
        .with_state(Served {
            agent,
            secret: Arc::new(secret),
            remote: remote.map(Arc::new),
        })
}

/// Points a network's metadata redirect at this host's proxy.
fn local_metadata(net: &mut NetworkSpec, remote: &Option<Arc<RemoteSide>>) {
    if let Some(r) = remote {
        net.metadata_to = format!("{}:{}", net.gateway, r.metadata_port);
    }
}

/// Replaces the control plane's image paths by copies on this host, fetched once.
async fn local_images(spec: &mut VmSpec, remote: &Option<Arc<RemoteSide>>) -> AgentResult<()> {
    use sha2::Digest;
    let Some(r) = remote else { return Ok(()) };
    // The first commands can come while this agent's first join is still being answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let host = loop {
        if let Some(h) = r.platform.host.read().expect("host lock").clone() {
            break h;
        }
        if std::time::Instant::now() > deadline {
            return Err(AgentError::Failed(
                "this host has not joined its platform yet".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let image = &mut spec.image;
    for path in [&mut image.disk, &mut image.kernel, &mut image.initrd]
        .into_iter()
        .flatten()
    {
        let name: String = sha2::Sha256::digest(path.display().to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let local = r.image_dir.join(name);
        if !local.exists() {
            fetch_image(r, &host, path, &local).await?;
        }
        *path = local;
    }
    Ok(())
}

async fn fetch_image(
    r: &RemoteSide,
    host: &str,
    path: &std::path::Path,
    local: &std::path::Path,
) -> AgentResult<()> {
    use tokio::io::AsyncWriteExt;
    let failed = |e: String| {
        AgentError::Failed(format!(
            "copying image {} from the platform: {e}",
            path.display()
        ))
    };
    tokio::fs::create_dir_all(&r.image_dir)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = reqwest::Client::new()
        .get(format!(
            "{}{}",
            r.platform.control.trim_end_matches('/'),
            crate::metadata::IMAGES_PATH
        ))
        .query(&[("path", path.display().to_string())])
        .bearer_auth(&r.platform.secret)
        .header(crate::metadata::HOST_HEADER, host)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| failed(e.to_string()))?;
    let part = local.with_extension("part");
    let mut out = tokio::fs::File::create(&part)
        .await
        .map_err(|e| failed(e.to_string()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        out.write_all(&chunk)
            .await
            .map_err(|e| failed(e.to_string()))?;
    }
    out.sync_all().await.map_err(|e| failed(e.to_string()))?;
    tokio::fs::rename(&part, local)
        .await
        .map_err(|e| failed(e.to_string()))
}

/// What the proxy needs to speak for this host: the control plane's URL, and the host id and
/// secret it joined with (the id is known once the first join answers).
#[derive(Clone)]
pub struct ProxyTarget {
    pub control: String,
    pub secret: String,
    pub host: Arc<std::sync::RwLock<Option<String>>>,
}

/// The agent's metadata proxy: guests' requests (redirected here from 169.254.169.254) go to
/// the control plane with the guest's address and this host's credentials.
pub fn metadata_proxy(target: ProxyTarget) -> Router {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    Router::new().fallback(
        move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
            std::net::SocketAddr,
        >,
              uri: axum::http::Uri| {
            let (http, target) = (http.clone(), target.clone());
            async move {
                let Some(host) = target.host.read().expect("host lock").clone() else {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "this host has not joined its platform yet\n",
                    )
                        .into_response();
                };
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let url = format!(
                    "{}{}{path}",
                    target.control.trim_end_matches('/'),
                    crate::metadata::PROXY_PREFIX
                );
                let resp = http
                    .get(url)
                    .bearer_auth(&target.secret)
                    .header(crate::metadata::HOST_HEADER, host)
                    .header(crate::metadata::GUEST_HEADER, peer.ip().to_string())
                    .send()
                    .await;
                match resp {
                    Ok(r) => {
                        let status = StatusCode::from_u16(r.status().as_u16())
                            .unwrap_or(StatusCode::BAD_GATEWAY);
                        let ct = r
                            .headers()
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("text/plain")
                            .to_string();
                        let body = r.bytes().await.unwrap_or_default();
                        (status, [(axum::http::header::CONTENT_TYPE, ct)], body).into_response()
                    }
                    Err(e) => (
                        StatusCode::BAD_GATEWAY,
                        format!("the platform is unreachable: {e}\n"),
                    )
                        .into_response(),
                }
            }
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Args {
    id: Option<Uuid>,
    spec: Option<VmSpec>,
    network: Option<NetworkSpec>,
    size: Option<Resources>,
    grace_secs: Option<u64>,
    offset: Option<u64>,
    max: Option<usize>,
    /// Base64? No: console input is text typed by a person.
    input: Option<String>,
}

fn authorised(headers: &HeaderMap, secret: &str) -> bool {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    maocloud_types::constant_time_eq(given.as_bytes(), secret.as_bytes())
}

async fn command(
    State(s): State<Served>,
    Path(command): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&headers, &s.secret) {
        return (StatusCode::UNAUTHORIZED, "bad agent secret").into_response();
    }
    let args: Args = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad arguments: {e}")).into_response(),
    };
    let need_id = || {
        args.id
            .ok_or_else(|| AgentError::Invalid("id is required".into()))
    };
    let a = &s.agent;
    let result: AgentResult<Value> = async {
        Ok(match command.as_str() {
            "report" => json!(a.report().await?),
            "ensure_network" => {
                let mut net = args
                    .network
                    .clone()
                    .ok_or_else(|| AgentError::Invalid("network is required".into()))?;
                local_metadata(&mut net, &s.remote);
                json!(a.ensure_network(&net).await?)
            }
            "remove_network" => json!(a.remove_network(need_id()?).await?),
            "create" => {
                let mut spec = args
                    .spec
                    .clone()
                    .ok_or_else(|| AgentError::Invalid("spec is required".into()))?;
                local_metadata(&mut spec.network, &s.remote);
                local_images(&mut spec, &s.remote).await?;
                json!(a.create(&spec).await?)
            }
            "start" => json!(a.start(need_id()?).await?),
            "stop" => json!(a.stop(need_id()?, args.grace_secs.unwrap_or(30)).await?),
            "reboot" => json!(a.reboot(need_id()?).await?),
            "resize" => json!(
                a.resize(
                    need_id()?,
                    args.size
                        .ok_or_else(|| AgentError::Invalid("size is required".into()))?
                )
                .await?
            ),
            "delete" => json!(a.delete(need_id()?).await?),
            "status" => json!(a.status(need_id()?).await?),
            "console_read" => {
                let (bytes, next) = a
                    .console_read(
                        need_id()?,
                        args.offset.unwrap_or(0),
                        args.max.unwrap_or(65536),
                    )
                    .await?;
                json!({"data": String::from_utf8_lossy(&bytes), "next": next})
            }
            "console_write" => json!(
                a.console_write(need_id()?, args.input.unwrap_or_default().as_bytes())
                    .await?
            ),
            "counters" => json!(a.counters(need_id()?).await?),
            other => return Err(AgentError::Invalid(format!("no command {other}"))),
        })
    }
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => {
            let (status, w) = to_wire(&e);
            (status, axum::Json(w)).into_response()
        }
    }
}

/// The control plane's handle on a remote agent.
pub struct RemoteAgent {
    url: String,
    secret: String,
    http: reqwest::Client,
}

impl RemoteAgent {
    pub fn new(url: &str, secret: &str) -> RemoteAgent {
        RemoteAgent {
            url: url.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            // Stops wait up to their grace period on the host: allow for it.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP client"),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        command: &str,
        args: Value,
    ) -> AgentResult<T> {
        let resp = self
            .http
            .post(format!("{}/agent/v1/{command}", self.url))
            .bearer_auth(&self.secret)
            .json(&args)
            .send()
            .await
            .map_err(|e| AgentError::Failed(format!("host unreachable: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| AgentError::Failed(format!("host unreachable: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| AgentError::Failed(format!("bad answer from host: {e}")));
        }
        match serde_json::from_slice::<WireError>(&body) {
            Ok(w) => Err(from_wire(w)),
            Err(_) => Err(AgentError::Failed(format!(
                "host answered {status}: {}",
                String::from_utf8_lossy(&body)
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Agent for RemoteAgent {
    async fn report(&self) -> AgentResult<HostReport> {
        self.call("report", json!({})).await
    }
    async fn ensure_network(&self, net: &NetworkSpec) -> AgentResult<()> {
        self.call("ensure_network", json!({"network": net})).await
    }
    async fn remove_network(&self, id: Uuid) -> AgentResult<()> {
        self.call("remove_network", json!({"id": id})).await
    }
    async fn create(&self, spec: &VmSpec) -> AgentResult<()> {
        self.call("create", json!({"spec": spec})).await
    }
    async fn start(&self, id: Uuid) -> AgentResult<()> {
        self.call("start", json!({"id": id})).await
    }
    async fn stop(&self, id: Uuid, grace_secs: u64) -> AgentResult<()> {
        self.call("stop", json!({"id": id, "grace_secs": grace_secs}))
            .await
    }
    async fn reboot(&self, id: Uuid) -> AgentResult<()> {
        self.call("reboot", json!({"id": id})).await
    }
    async fn resize(&self, id: Uuid, size: Resources) -> AgentResult<()> {
        self.call("resize", json!({"id": id, "size": size})).await
    }
    async fn delete(&self, id: Uuid) -> AgentResult<()> {
        self.call("delete", json!({"id": id})).await
    }
    async fn status(&self, id: Uuid) -> AgentResult<VmStatus> {
        self.call("status", json!({"id": id})).await
    }
    async fn console_read(&self, id: Uuid, offset: u64, max: usize) -> AgentResult<(Vec<u8>, u64)> {
        let v: Value = self
            .call(
                "console_read",
                json!({"id": id, "offset": offset, "max": max}),
            )
            .await?;
        Ok((
            v["data"].as_str().unwrap_or("").as_bytes().to_vec(),
            v["next"].as_u64().unwrap_or(offset),
        ))
    }
    async fn console_write(&self, id: Uuid, input: &[u8]) -> AgentResult<()> {
        self.call(
            "console_write",
            json!({"id": id, "input": String::from_utf8_lossy(input)}),
        )
        .await
    }
    async fn counters(&self, id: Uuid) -> AgentResult<Counters> {
        self.call("counters", json!({"id": id})).await
    }
}
