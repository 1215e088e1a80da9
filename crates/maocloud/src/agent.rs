//! `maocloud agent`: a hypervisor host of its own. It runs the QEMU agent (or a simulated one),
//! serves its command API to the control plane, and joins the platform — then joins again every
//! few seconds as its heartbeat, so a restarted control plane finds its hosts again.

use crate::serve::{hostname, random_secret, write_private};
use anyhow::Context;
use clap::Args;
use maocloud_hypervisor::Agent;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The platform's URL (its API), e.g. https://cloud.example.net.
    #[arg(long, value_name = "URL")]
    pub join: String,
    /// The platform's agent token (its <data-dir>/agent.token, or `serve --agent-token`).
    #[arg(
        long,
        env = "MAOCLOUD_AGENT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: String,
    /// Where this agent serves its command API [default: 0.0.0.0:8790].
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8790")]
    pub listen: SocketAddr,
    /// The URL the control plane reaches this agent at [default: http://<listen>].
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// Where guests' disks, seeds and logs live [default: ./agent-data].
    #[arg(long, value_name = "DIR", default_value = "agent-data")]
    pub state_dir: PathBuf,
    /// The host's name on the platform [default: the machine's hostname].
    #[arg(long)]
    pub name: Option<String>,
    /// Simulate the host: nothing boots (for testing the control plane at scale).
    #[arg(long)]
    pub sim: bool,
    /// The interface guests' traffic may leave by (outbound NAT).
    #[arg(long, value_name = "IFACE")]
    pub uplink: Option<String>,
    /// Where this host's metadata proxy listens (guests' 169.254.169.254 is redirected to it)
    /// [default: 0.0.0.0:8775; port 0 picks a free one].
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8775")]
    pub metadata_listen: SocketAddr,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_secs: u64,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating {}", args.state_dir.display()))?;
    let name = args.name.clone().unwrap_or_else(hostname);
    let agent: Arc<dyn Agent> = if args.sim {
        Arc::new(maocloud_hypervisor::sim::SimAgent::new(
            maocloud_hypervisor::sim::SimConfig {
                hostname: name.clone(),
                ..Default::default()
            },
        ))
    } else {
        let mut cfg = maocloud_hypervisor::qemu::QemuConfig::new(args.state_dir.join("compute"));
        cfg.hostname = Some(name.clone());
        cfg.uplink = args.uplink.clone();
        Arc::new(
            maocloud_hypervisor::qemu::QemuAgent::open(cfg)
                .await
                .context("starting the QEMU agent")?,
        )
    };
    // The secret the control plane calls us with: kept, so a restarted agent is the same host.
    let secret_file = args.state_dir.join("agent.secret");
    let secret = match std::fs::read_to_string(&secret_file) {
        Ok(s) => s.trim().to_string(),
        Err(_) => {
            let s = random_secret();
            write_private(&secret_file, &s)?;
            s
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let advertise = args
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    // The metadata proxy: guests here reach the platform's metadata service through it.
    let host_id = Arc::new(std::sync::RwLock::new(None));
    let proxy_listener = tokio::net::TcpListener::bind(args.metadata_listen)
        .await
        .with_context(|| format!("metadata proxy: listening on {}", args.metadata_listen))?;
    let proxy_port = proxy_listener.local_addr()?.port();
    let platform = maocloud_api::agent_link::ProxyTarget {
        control: args.join.clone(),
        secret: secret.clone(),
        host: host_id.clone(),
    };
    let proxy = maocloud_api::agent_link::metadata_proxy(platform.clone());
    tokio::spawn(async move {
        let served = axum::serve(
            proxy_listener,
            proxy.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metadata proxy stopped");
        }
    });
    let remote = maocloud_api::agent_link::RemoteSide {
        metadata_port: proxy_port,
        platform,
        image_dir: args.state_dir.join("images"),
    };
    let router = maocloud_api::agent_link::router(agent, secret.clone(), Some(remote));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the agent's command API stopped");
        }
    });
    eprintln!(
        "Maocloud agent {name}: command API at {advertise}, joining {}",
        args.join
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let join = format!("{}/api/v1/hosts/join", args.join.trim_end_matches('/'));
    let mut joined = false;
    loop {
        let body = serde_json::json!({"token": args.token, "url": advertise, "secret": secret});
        match http.post(&join).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                if let Some(id) = r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned))
                {
                    *host_id.write().expect("host lock") = Some(id);
                }
                if !joined {
                    eprintln!("Joined {} as host {name}.", args.join);
                    joined = true;
                }
            }
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                anyhow::bail!("the platform refused the agent token");
            }
            Ok(r) => {
                let status = r.status();
                tracing::warn!(%status, body = %r.text().await.unwrap_or_default(), "join refused; retrying");
            }
            Err(e) => tracing::warn!(error = %e, "platform unreachable; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.heartbeat_secs)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
