//! Starting the platform: connect and migrate the database, choose the mail transport, build
//! the application and the HTTP app, run the background jobs, serve until Ctrl-C or SIGTERM.

use crate::config::{ComputeMode, ServeConfig};
use anyhow::Context;
use maocloud_api::{metrics::Metrics, AppState};
use maocloud_app::{jobs, App, Settings};
use maocloud_datastore::Datastore;
use maocloud_mail::{MaildirMailer, Mailer, SmtpMailer};
use maocloud_types::Clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A platform ready to serve: the application and its HTTP state.
pub struct Platform {
    pub app: App,
    pub state: AppState,
    pub config: ServeConfig,
    /// The metadata service's listener, when compute runs here.
    pub metadata: Option<TcpListener>,
    /// The S3 endpoint's listener, when object storage is on.
    pub s3: Option<TcpListener>,
}

impl Platform {
    /// Connects, migrates and wires everything, with `clock` as the source of "now".
    pub async fn build(config: ServeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Platform> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let db = Datastore::connect(&config.database_url)
            .await
            .with_context(|| format!("connecting to {}", redact(&config.database_url)))?;
        let mailer: Arc<dyn Mailer> = match &config.smtp_url {
            Some(url) => Arc::new(SmtpMailer::new(url, &config.mail_from)?),
            None => Arc::new(MaildirMailer::new(
                config.data_dir.join("maildir"),
                &config.mail_from,
            )?),
        };
        let mut settings = Settings::new(config.data_dir.clone());
        settings.public_url = config.public_url.clone();
        settings.smtp_url = config.smtp_url.clone();
        settings.s3_url = config.s3_listen.map(|a| s3_url(a, &config.public_url));
        settings.mail_from = config.mail_from.clone();
        settings.support_address = config
            .support_address
            .clone()
            .unwrap_or_else(|| support_address(&config.mail_from));
        settings.support_oncall = config.support_oncall.clone();
        settings.privacy_k = config.privacy_k;
        settings.retention_days = config.retention_days;
        settings.data_key_file = config.data_key_file.clone();
        if let Some(dir) = &config.support_intake {
            settings.support_intake = dir.clone();
        }
        settings.demo = config.demo;
        settings.operator_totp_required = !config.demo;
        settings.cookie_secure = config.cookie_secure;
        settings.session_ttl_hours = config.session_ttl_hours;
        settings.seller = config.seller.clone();
        settings.invoice_due_days = config.invoice_due_days;
        let c = &config.contract;
        settings.dunning_days = c.dunning_days.unwrap_or(settings.dunning_days);
        settings.dunning_auto_suspend = c.dunning_suspension.as_deref() != Some("operator");
        settings.incomplete_file_days = c
            .incomplete_file_days
            .unwrap_or(settings.incomplete_file_days);
        settings.termination_grace_days = c
            .termination_grace_days
            .unwrap_or(settings.termination_grace_days);
        settings.compute_pool = config.compute_pool.clone();
        settings.agent_token = Some(agent_token(&config)?);
        let app = App::new(db, clock, mailer, settings);
        app.bootstrap().await.context("preparing the database")?;
        let state = AppState {
            app: app.clone(),
            metrics: Arc::new(Metrics::default()),
            metrics_token: config.metrics_token.clone(),
        };
        let metadata = attach_compute(&app, &config).await?;
        let s3 = attach_storage(&app, &config).await?;
        Ok(Platform {
            app,
            state,
            config,
            metadata,
            s3,
        })
    }

    /// Serves HTTP on `listener` and runs background jobs until `shutdown` turns true.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        // 0: no runner in this process (tests run the jobs themselves).
        let jobs = (self.config.jobs_interval_ms > 0).then(|| {
            tokio::spawn(jobs::run_forever(
                self.app.clone(),
                jobs::Registry::standard(),
                Duration::from_millis(self.config.jobs_interval_ms),
                shutdown.clone(),
            ))
        });
        if self.config.sweep_interval_secs > 0 {
            tokio::spawn(sweep_forever(
                self.app.clone(),
                Duration::from_secs(self.config.sweep_interval_secs),
                shutdown.clone(),
            ));
        }
        if self.config.jobs_interval_ms > 0 {
            run_support(&self.app, shutdown.clone());
        }
        if let Some(l) = self.metadata {
            run_compute(&self.app, l, shutdown.clone());
        }
        if let Some(l) = self.s3 {
            // Upkeep runs beside the job runner; tests (no runner) call each step themselves.
            let upkeep = self.config.jobs_interval_ms > 0;
            run_storage(
                &self.app,
                l,
                self.config.s3_domain.as_deref(),
                upkeep,
                shutdown.clone(),
            )?;
        }
        let router = maocloud_api::app(self.state);
        let mut stop = shutdown.clone();
        axum::serve(
            nodelay(listener),
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        self.app.db().close().await;
        Ok(())
    }
}

/// Compute on this machine: binds the metadata listener guests reach (its port goes into
/// every network's redirect), attaches the in-process hypervisor agent (QEMU, or simulated)
/// and, in demo mode, offers the test guest as an image.
async fn attach_compute(app: &App, config: &ServeConfig) -> anyhow::Result<Option<TcpListener>> {
    if config.compute == ComputeMode::Off {
        return Ok(None);
    }
    let listener = TcpListener::bind(config.metadata_listen)
        .await
        .with_context(|| format!("metadata service: listening on {}", config.metadata_listen))?;
    app.agents()
        .set_metadata_port(listener.local_addr()?.port());
    let agent: Arc<dyn maocloud_hypervisor::Agent> = match config.compute {
        ComputeMode::Sim => Arc::new(maocloud_hypervisor::sim::SimAgent::new(
            maocloud_hypervisor::sim::SimConfig {
                hostname: format!("{}-sim", hostname()),
                ..Default::default()
            },
        )),
        _ => {
            let mut cfg =
                maocloud_hypervisor::qemu::QemuConfig::new(config.data_dir.join("compute"));
            cfg.uplink = config.uplink.clone();
            match maocloud_hypervisor::qemu::QemuAgent::open(cfg).await {
                Ok(a) => Arc::new(a),
                Err(e) => {
                    tracing::warn!(error = %e, "compute is off: the QEMU agent could not start (run as root with qemu-system-x86 and dnsmasq-base installed, or pass --compute sim)");
                    return Ok(Some(listener));
                }
            }
        }
    };
    let host = maocloud_app::compute::hosts::attach(app, agent, None).await?;
    tracing::info!(host = %host.name, accel = %host.accel, "hypervisor host attached");
    if config.demo {
        let dir = &config.demo_guest;
        if dir.join("vmlinuz").exists() && dir.join("initrd.img").exists() {
            maocloud_app::demo::register_test_guest(app, dir).await?;
        } else {
            tracing::info!(
                "no test guest in {} (scripts/build-test-guest builds it): no demo image",
                dir.display()
            );
        }
    }
    Ok(Some(listener))
}

/// Small answers go out at once: without TCP_NODELAY a response's headers and body leave in two
/// segments and the body waits for the client's delayed ACK (40 ms per small S3 GET).
fn nodelay(l: TcpListener) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut tokio::net::TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    l.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// The S3 endpoint as clients reach it: its listen address, or the public host on its port
/// when it listens on every interface.
fn s3_url(listen: std::net::SocketAddr, public_url: &str) -> String {
    if listen.ip().is_unspecified() {
        if let Some(host) = url::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            return format!("http://{host}:{}", listen.port());
        }
    }
    format!("http://{listen}")
}

/// Object storage on this machine: opens the erasure-coded engine over the configured disk
/// directories (the platform's data key wraps each object's key) and binds the S3 listener.
async fn attach_storage(app: &App, config: &ServeConfig) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = config.s3_listen else {
        return Ok(None);
    };
    let cfg = maocloud_objstore::EngineConfig {
        disks: config.storage_disks.clone(),
        parity: config.storage_parity,
        block_size: maocloud_objstore::DEFAULT_BLOCK_SIZE,
        master_key: maocloud_app::seal::key_bytes(app)?,
    };
    let engine = maocloud_objstore::Engine::open(cfg).context("opening object storage's disks")?;
    app.attach_blob_store(Arc::new(engine));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("S3 endpoint: listening on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, disks = config.storage_disks.len(), parity = config.storage_parity, "S3 endpoint ready");
    Ok(Some(listener))
}

/// Serves the S3 endpoint and keeps the store whole: meter flushes every 5 s, deleted bytes
/// removed every minute, the scrub walking objects continuously (20 every 10 s), storage
/// sampled for billing and orphans swept every hour.
fn run_storage(
    app: &App,
    listener: TcpListener,
    domain: Option<&str>,
    upkeep: bool,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use maocloud_app::storage;
    let router = maocloud_api::s3::router(app.clone(), domain)?;
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(
            nodelay(listener),
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the S3 endpoint stopped");
        }
    });
    if !upkeep {
        return Ok(());
    }
    let app = app.clone();
    let mut stop = shutdown;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                let _ = storage::flush_meter(&app).await;
                return;
            }
            n += 1;
            if let Err(e) = storage::flush_meter(&app).await {
                tracing::warn!(error = %e, "storage metering: flush failed (kept for the next one)");
            }
            if n % 2 == 0 {
                if let Err(e) = storage::scrub_step(&app, 20).await {
                    tracing::warn!(error = %e, "storage scrub step failed");
                }
            }
            if n % 12 == 0 {
                if let Err(e) = storage::collect_garbage(&app, storage::GARBAGE_GRACE).await {
                    tracing::warn!(error = %e, "storage: removing deleted bytes failed");
                }
            }
            if n % 720 == 0 {
                if let Err(e) = storage::sample_usage(&app, 1).await {
                    tracing::warn!(error = %e, "storage: the hourly usage sample failed");
                }
                if let Err(e) = storage::sweep_orphans(&app, storage::ORPHAN_AGE).await {
                    tracing::warn!(error = %e, "storage: the orphan sweep failed");
                }
            }
        }
    });
    Ok(())
}

/// Serves the metadata service and beats the hosts' heartbeat (capacity, crashed guests).
fn run_compute(app: &App, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let mut stop = shutdown.clone();
    let router = maocloud_api::metadata::router(app.clone());
    tokio::spawn(async move {
        let served = axum::serve(
            nodelay(listener),
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metadata service stopped");
        }
    });
    let app = app.clone();
    let mut stop = shutdown;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = maocloud_app::compute::hosts::heartbeat_all(&app).await {
                tracing::warn!(error = %e, "host heartbeat failed");
            }
        }
    });
}

/// The agent token: as configured, else the one kept in `<data-dir>/agent.token` (made at
/// first start, readable by root only).
fn agent_token(config: &ServeConfig) -> anyhow::Result<String> {
    if let Some(t) = &config.agent_token {
        anyhow::ensure!(
            t.len() >= 32,
            "--agent-token must be at least 32 characters"
        );
        return Ok(t.clone());
    }
    let path = config.data_dir.join("agent.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_string());
    }
    let t = random_secret();
    write_private(&path, &t)?;
    Ok(t)
}

/// 48 random URL-safe characters.
pub fn random_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..48)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Writes a file only its owner may read.
pub fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Sweeps today for the live subscribers every `every` (the date rules that fire by
/// themselves: see `maocloud_app::daily`), until `shutdown`.
/// The support desk's clockwork: escalations checked every 15 s (targets are in minutes), the
/// intake Maildir read every 5 s.
fn run_support(app: &App, mut stop: watch::Receiver<bool>) {
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = maocloud_app::support::intake(&app).await {
                tracing::warn!(error = %e, "support: reading the intake failed; retrying");
            }
            if n % 3 == 0 {
                match maocloud_app::support::sweep(&app).await {
                    Ok(r) if r != Default::default() => tracing::info!(?r, "support sweep"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "support sweep failed; retrying"),
                }
            }
            n += 1;
        }
    });
}

/// `support@<domain>` of the sender address (`Name <user@domain>` or `user@domain`).
fn support_address(mail_from: &str) -> String {
    let addr = mail_from
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>'))
        .unwrap_or(mail_from)
        .trim();
    match addr.rsplit_once('@') {
        Some((_, domain)) => format!("support@{domain}"),
        None => "support@maocloud.localhost".into(),
    }
}

async fn sweep_forever(
    app: maocloud_app::App,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match maocloud_app::daily::sweep_live(&app).await {
            Ok(r) if r != Default::default() => tracing::info!(?r, "daily sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "daily sweep failed; retrying later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `maocloud serve`.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let platform = Platform::build(config.clone(), Arc::new(maocloud_types::SystemClock)).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.demo {
        let password = std::env::var("MAOCLOUD_DEMO_PASSWORD").ok();
        let creds = maocloud_app::demo::seed(&platform.app, password.as_deref()).await?;
        print_demo(&config, &creds);
    }
    tracing::info!(%addr, database = platform.app.database_kind(), "Maocloud is serving");
    eprintln!(
        "Maocloud is ready: console and API at {} (database: {})",
        config.public_url,
        platform.app.database_kind()
    );
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    platform.run(listener, rx).await
}

fn print_demo(config: &ServeConfig, creds: &maocloud_app::demo::DemoCredentials) {
    println!(
        "\n  Demo accounts — sign in at {}/signin",
        config.public_url
    );
    match &creds.subscriber {
        Some((e, p)) => println!("    subscriber: {e}  password: {p}"),
        None => println!(
            "    subscriber: {} (already created; password shown at its first start)",
            maocloud_app::demo::DEMO_SUBSCRIBER
        ),
    }
    match &creds.operator {
        Some((e, p)) => println!(
            "    operator (admin): {e}  password: {p}  (back office: {}/admin)",
            config.public_url
        ),
        None => println!(
            "    operator (admin): {} (already created; password shown at its first start)",
            maocloud_app::demo::DEMO_OPERATOR
        ),
    }
    println!(
        "  These passwords are printed once. Mail is delivered to {}\n",
        config.data_dir.join("maildir").display()
    );
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
