//! Hypervisor hosts: registering an agent (the in-process one at start, remote ones as they
//! join), heartbeats that refresh capacity and notice crashed guests, reconciliation that
//! removes what an agent runs without the control plane knowing it (orphans), and the
//! operators' view of hosts and their load.

use crate::{App, Ctx, Error, Result};
use maocloud_datastore::compute::{Host, Load};
use maocloud_hypervisor::{Agent, HostReport, PowerState};
use maocloud_types::{HostId, OperatorRole};
use std::sync::Arc;

/// A host with what its VMs take of it, for operators.
#[derive(Debug, Clone)]
pub struct HostView {
    pub host: Host,
    pub load: Load,
    pub attached: bool,
}

/// A remote agent joining (and, every few seconds after, confirming it is alive): checked
/// against the platform's agent token. The first join of a host in this process attaches it
/// and resumes the changes in flight on it; later ones are heartbeats.
pub async fn join(
    app: &App,
    token: &str,
    url: &str,
    secret: &str,
    connect: impl FnOnce(&str, &str) -> Arc<dyn Agent>,
) -> Result<Host> {
    let expected = app.settings().agent_token.as_deref().unwrap_or("");
    let same = !expected.is_empty()
        && maocloud_types::constant_time_eq(token.as_bytes(), expected.as_bytes());
    if !same {
        return Err(Error::Unauthenticated(
            "this agent token is not the platform's",
        ));
    }
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid("url", "is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid("url", "must be an http(s) URL"));
    }
    if secret.len() < 32 {
        return Err(Error::invalid("secret", "must be at least 32 characters"));
    }
    let known = {
        let mut tx = app.db().read().await?;
        tx.host_list()
            .await?
            .into_iter()
            .find(|h| h.url.as_deref() == Some(url))
    };
    if let Some(h) = known.filter(|h| app.agents().get(h.id).is_some()) {
        heartbeat(app, h.id).await?;
        return Ok(h);
    }
    let agent = connect(url, secret);
    let host = attach(app, agent, Some(url.to_string())).await?;
    let sealed = crate::seal::seal(app, secret.as_bytes())?;
    let mut tx = app.db().write().await?;
    tx.host_set_secret(host.id, &sealed).await?;
    tx.commit().await?;
    Ok(host)
}

/// Whether `secret` is the one the remote host `host` gave at join (its metadata proxy proves
/// with it which host it speaks for).
pub async fn verify_agent(app: &App, host: HostId, secret: &str) -> Result<bool> {
    let h = match app.db().read().await?.host_fetch(host).await {
        Ok(h) => h,
        Err(maocloud_datastore::Error::NotFound) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let Some(sealed) = h.agent_secret else {
        return Ok(false);
    };
    let known = crate::seal::open(app, &sealed)?;
    Ok(maocloud_types::constant_time_eq(&known, secret.as_bytes()))
}

/// Registers (or refreshes) the host an agent runs on and attaches the agent, then reconciles.
pub async fn attach(app: &App, agent: Arc<dyn Agent>, url: Option<String>) -> Result<Host> {
    let report = agent
        .report()
        .await
        .map_err(|e| Error::internal(format!("the agent did not report: {e}")))?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let host = tx
        .host_upsert(&Host {
            id: HostId::new(),
            name: report.hostname.clone(),
            url,
            agent_secret: None,
            accel: serde_json::to_value(report.accel)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            vcpus: report.capacity.vcpus as i64,
            memory_mib: report.capacity.memory_mib as i64,
            disk_gib: report.capacity.disk_gib as i64,
            warnings: serde_json::to_string(&report.warnings).map_err(Error::internal)?,
            status: "up".into(),
            last_seen_at: now,
            created_at: now,
        })
        .await?;
    tx.commit().await?;
    for w in &report.warnings {
        tracing::warn!(host = %host.name, "{w}");
    }
    app.agents().attach(host.id, agent);
    reconcile_with(app, host.id, Some(report), true).await?;
    Ok(host)
}

/// Brings the records and a host into line: a VM the host runs that the control plane does not
/// have (or has deleted) is removed; a VM that should run but whose QEMU died is marked crashed.
pub async fn reconcile(app: &App, host: HostId) -> Result<()> {
    reconcile_with(app, host, None, false).await
}

/// `resume`: also re-enqueue the changes in flight on this host (when its agent (re)attaches,
/// i.e. when the control plane starts).
async fn reconcile_with(
    app: &App,
    host: HostId,
    report: Option<HostReport>,
    resume: bool,
) -> Result<()> {
    let Some(agent) = app.agents().get(host) else {
        return Ok(());
    };
    let report = match report {
        Some(r) => r,
        None => match agent.report().await {
            Ok(r) => r,
            Err(e) => return mark_down(app, host, e).await,
        },
    };
    let known = app.db().read().await?.vms_on_host(host).await?;
    // A change in flight when the control plane stopped resumes now rather than when its
    // job's lease runs out (converging twice is harmless: every step is idempotent).
    let busy: Vec<_> = known
        .iter()
        .filter(|v| super::vms::BUSY.contains(&v.state.as_str()))
        .map(|v| v.id)
        .collect();
    if resume && !busy.is_empty() {
        let now = app.now();
        let mut tx = app.db().write().await?;
        for id in busy {
            super::vms::converge_later(&mut tx, id, now).await?;
        }
        tx.commit().await?;
    }
    for vm in &report.vms {
        let record = known.iter().find(|v| v.id.as_uuid() == vm.id);
        match record {
            None => {
                // Not ours (any more): e.g. a create undone, or a delete the control plane
                // recorded before it crashed. Remove it, or it would leak a disk and a process.
                tracing::warn!(vm = %vm.id, "removing a VM the control plane does not know");
                if let Err(e) = agent.delete(vm.id).await {
                    tracing::warn!(vm = %vm.id, error = %e, "could not remove an orphan VM");
                }
            }
            Some(v) if vm.power == PowerState::Crashed && v.state == "running" => {
                super::vms::mark_crashed(app, v.id).await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Refreshes one attached host: capacity, warnings, status, crashed guests.
async fn heartbeat(app: &App, host: HostId) -> Result<()> {
    let Some(agent) = app.agents().get(host) else {
        return Ok(());
    };
    let report = match agent.report().await {
        Ok(r) => r,
        Err(e) => return mark_down(app, host, e).await,
    };
    let mut tx = app.db().write().await?;
    let h = tx.host_fetch(host).await?;
    tx.host_upsert(&Host {
        vcpus: report.capacity.vcpus as i64,
        memory_mib: report.capacity.memory_mib as i64,
        disk_gib: report.capacity.disk_gib as i64,
        warnings: serde_json::to_string(&report.warnings).map_err(Error::internal)?,
        last_seen_at: app.now(),
        ..h
    })
    .await?;
    tx.commit().await?;
    sample(app, host, &*agent).await?;
    reconcile_with(app, host, Some(report), false).await
}

async fn mark_down(app: &App, host: HostId, e: maocloud_hypervisor::AgentError) -> Result<()> {
    tracing::warn!(%host, error = %e, "host did not answer");
    let mut tx = app.db().write().await?;
    tx.host_set_status(host, "down").await?;
    Ok(tx.commit().await?)
}

/// Samples the counters of the host's running VMs (for monitoring), keeping seven days.
async fn sample(app: &App, host: HostId, agent: &dyn Agent) -> Result<()> {
    let running: Vec<_> = app
        .db()
        .read()
        .await?
        .vms_on_host(host)
        .await?
        .into_iter()
        .filter(|v| v.state == "running")
        .map(|v| v.id)
        .collect();
    let now = app.now();
    let mut samples = Vec::new();
    for id in running {
        if let Ok(c) = agent.counters(id.as_uuid()).await {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            samples.push((
                id,
                [
                    n(c.cpu_time_ns),
                    n(c.memory_used_bytes),
                    n(c.disk_read_bytes),
                    n(c.disk_write_bytes),
                    n(c.net_rx_bytes),
                    n(c.net_tx_bytes),
                ],
            ));
        }
    }
    let mut tx = app.db().write().await?;
    for (id, c) in samples {
        tx.sample_insert(id, now, c).await?;
    }
    tx.sample_prune(now - jiff::SignedDuration::from_hours(24 * 7))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Refreshes every attached host.
pub async fn heartbeat_all(app: &App) -> Result<()> {
    for host in app.agents().hosts() {
        heartbeat(app, host).await?;
    }
    Ok(())
}

/// Every host with its load (operators).
pub async fn list(app: &App, ctx: &Ctx) -> Result<Vec<HostView>> {
    ctx.require_operator(&[
        OperatorRole::Support,
        OperatorRole::Abuse,
        OperatorRole::Billing,
    ])?;
    let mut tx = app.db().read().await?;
    let loads = tx.host_loads().await?;
    Ok(tx
        .host_list()
        .await?
        .into_iter()
        .map(|h| HostView {
            load: loads
                .iter()
                .find(|(id, _)| *id == h.id)
                .map(|(_, l)| *l)
                .unwrap_or_default(),
            attached: app.agents().get(h.id).is_some(),
            host: h,
        })
        .collect())
}

/// Takes a host out of placement (`disabled`) or puts it back (`up`); admins only.
pub async fn set_enabled(app: &App, ctx: &Ctx, id: &str, enabled: bool) -> Result<Host> {
    ctx.require_operator(&[])?;
    let id: HostId = id.parse().map_err(|_| Error::NotFound)?;
    let mut tx = app.db().write().await?;
    tx.host_fetch(id).await?;
    tx.host_set_status(id, if enabled { "up" } else { "disabled" })
        .await?;
    crate::audit::record(
        &mut tx,
        ctx,
        app.now(),
        if enabled {
            "host.enable"
        } else {
            "host.disable"
        },
        Some(&id.to_string()),
        None,
        serde_json::json!({}),
    )
    .await?;
    let h = tx.host_fetch(id).await?;
    tx.commit().await?;
    Ok(h)
}
