//! Virtual machines: create (quota, placement, network and address), start, stop, reboot,
//! resize, delete, the serial console — and the durable job that carries each change out on the
//! VM's host. A request records the state asked for and enqueues `vm.converge`; the job drives
//! the host there with idempotent agent commands, so a control plane killed half-way resumes
//! when the job's lease runs out, and a change the host refuses is undone and explained.
//! Suspension (R-7.1c) stops a subscriber's VMs without destroying anything and restarts them
//! when lifted; usage spans (VM-hours by size, disk GiB-hours) are written for billing.

use super::{check_quota, place, quota_of, size, used, Size};
use crate::jobs::{JobOutcome, Registry};
use crate::{audit, suspension, App, Ctx, Error, Result};
use maocloud_datastore::compute::{Network, Vm};
use maocloud_datastore::{NewJob, Scope, Tx};
use maocloud_hypervisor::{AgentError, ImageRef, Lease, NetworkSpec, PowerState, Seed, VmSpec};
use maocloud_types::{NetworkId, PageRequest, SubscriberId, Timestamp, VmId};
use serde_json::json;

/// What a subscriber asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateVm {
    pub name: String,
    /// Image id or name.
    pub image: String,
    /// A size of the catalogue.
    pub size: String,
    /// SSH key ids or names.
    pub ssh_keys: Vec<String>,
    pub user_data: Option<String>,
}

/// How long a guest gets to power off after ACPI before it is forced off.
pub const STOP_GRACE_SECS: u64 = 30;
const USER_DATA_MAX: usize = 16 * 1024;

/// States in which the VM is being changed: other changes wait.
pub const BUSY: &[&str] = &[
    "creating",
    "starting",
    "stopping",
    "rebooting",
    "resizing",
    "deleting",
];

pub fn check_name(name: &str) -> Result<String> {
    let n = name.trim();
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if !ok {
        return Err(Error::invalid("name", "must be a host name: 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'"));
    }
    Ok(n.to_string())
}

/// User-data as cloud-init reads it: a script (`#!`), a cloud-config (`#cloud-config`), an
/// include list or a MIME multipart; at most 16 KiB of text.
pub fn check_user_data(u: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("user_data", why.to_string()));
    if u.len() > USER_DATA_MAX {
        return bad("must be at most 16384 bytes");
    }
    if u.contains('\0') {
        return bad("must be text (it contains a NUL byte)");
    }
    let first = u.lines().next().unwrap_or("").trim_end();
    let known = first.starts_with("#!")
        || first == "#cloud-config"
        || first == "#include"
        || first == "#cloud-boothook"
        || first
            .to_ascii_lowercase()
            .starts_with("content-type: multipart/");
    if !known {
        return bad("must start with '#!' (a script), '#cloud-config', '#include' or a MIME multipart header");
    }
    if first == "#cloud-config"
        && u.lines()
            .any(|l| l.starts_with('\t') || l.trim_start_matches(' ').starts_with('\t'))
    {
        return bad("is not valid YAML: a cloud-config must be indented with spaces, not tabs");
    }
    Ok(())
}

pub async fn list(
    app: &App,
    ctx: &Ctx,
    subscriber: Option<SubscriberId>,
    page: &PageRequest,
) -> Result<Vec<Vm>> {
    let mut tx = app.db().read().await?;
    Ok(tx.vm_list(&ctx.scope(), subscriber, None, page).await?)
}

/// A VM in view, by id (a deleted one too: it shows it was deleted).
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<Vm> {
    let mut tx = app.db().read().await?;
    Ok(tx.vm_fetch(&ctx.scope(), id).await?)
}

pub async fn create(app: &App, ctx: &Ctx, req: CreateVm) -> Result<Vm> {
    let owner = ctx.require_subscriber()?;
    let name = check_name(&req.name)?;
    let size = size(&req.size)?;
    if let Some(u) = &req.user_data {
        check_user_data(u)?;
    }
    let now = app.now();
    let mut tx = app.db().write().await?;
    suspension::ensure_active(&mut tx, owner).await?;
    let image = match tx.image_fetch(req.image.trim()).await {
        Ok(i) if i.status == "ready" => i,
        _ => {
            return Err(Error::invalid(
                "image",
                "is not an image of the catalogue (see GET /api/v1/images)",
            ))
        }
    };
    if (size.disk_gib as i64) < image.min_disk_gib {
        return Err(Error::invalid(
            "size",
            format!(
                "has a {} GiB disk; image {} needs at least {} GiB",
                size.disk_gib, image.name, image.min_disk_gib
            ),
        ));
    }
    let mut keys = Vec::new();
    for k in &req.ssh_keys {
        match tx.ssh_key_fetch(&Scope::Subscriber(owner), k.trim()).await {
            Ok(key) => keys.push(key.public_key),
            Err(maocloud_datastore::Error::NotFound) => {
                return Err(Error::invalid(
                    "ssh_keys",
                    format!("{k} is not one of your SSH keys"),
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mine = tx.vms_of(owner).await?;
    if mine.iter().any(|v| v.name == name) {
        return Err(Error::Conflict {
            field: Some("name".into()),
            reason: "you already have a VM with this name".into(),
        });
    }
    let quota = quota_of(&mut tx, owner).await?;
    check_quota(
        &quota,
        &used(&mine),
        (
            size.vcpus as i64,
            size.memory_mib as i64,
            size.disk_gib as i64,
            1,
        ),
    )?;
    let hosts: Vec<_> = tx
        .host_list()
        .await?
        .into_iter()
        .filter(|h| app.agents().get(h.id).is_some())
        .collect();
    let need = (
        size.vcpus as i64,
        size.memory_mib as i64,
        size.disk_gib as i64,
    );
    let Some(host) = place(&hosts, &tx.host_loads().await?, need) else {
        return Err(Error::Conflict {
            field: Some("size".into()),
            reason: format!("no host has room for a {} VM ({} vCPU, {} MiB, {} GiB) right now; try a smaller size or later", size.name, size.vcpus, size.memory_mib, size.disk_gib),
        });
    };
    let network = network_for(app, &mut tx, owner, host, now).await?;
    let taken: Vec<i64> = tx
        .vms_on_network(network.id)
        .await?
        .iter()
        .map(|v| v.ip_host)
        .collect();
    let Some(ip_host) = (10..=250).find(|n| !taken.contains(n)) else {
        return Err(Error::Conflict {
            field: None,
            reason: "your network on this host has no free address left".into(),
        });
    };
    let id = VmId::new();
    let b = id.as_uuid().into_bytes();
    let vm = Vm {
        id,
        subscriber_id: owner,
        name,
        host_id: host,
        image_id: image.id,
        network_id: network.id,
        size: size.name.into(),
        vcpus: size.vcpus as i64,
        memory_mib: size.memory_mib as i64,
        disk_gib: size.disk_gib as i64,
        mac: format!("52:54:00:{:02x}:{:02x}:{:02x}", b[13], b[14], b[15]),
        ip_host,
        ip: host_ip(&network, ip_host),
        ssh_keys: serde_json::to_string(&keys).map_err(Error::internal)?,
        user_data: req.user_data,
        state: "creating".into(),
        desired: "running".into(),
        held: false,
        error: None,
        pending_size: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    tx.vm_insert(&vm).await?;
    converge_later(&mut tx, vm.id, now).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        "vm.create",
        Some(&id.to_string()),
        Some(owner),
        json!({"size": vm.size, "image": image.name, "host": host.to_string()}),
    )
    .await?;
    tx.commit().await?;
    app.wake_jobs();
    Ok(vm)
}

/// The subscriber's network on `host`, made on first use from the next free /24 of the pool.
async fn network_for(
    app: &App,
    tx: &mut Tx,
    owner: SubscriberId,
    host: maocloud_types::HostId,
    now: Timestamp,
) -> Result<Network> {
    if let Some(n) = tx.network_of(owner, host).await? {
        return Ok(n);
    }
    let used = tx.network_slots().await?;
    let Some(slot) = (0..=255i64).find(|s| !used.contains(s)) else {
        return Err(Error::Conflict {
            field: None,
            reason: "the platform has no free network left; contact support".into(),
        });
    };
    let pool = &app.settings().compute_pool;
    let n = Network {
        id: NetworkId::new(),
        subscriber_id: owner,
        host_id: host,
        slot,
        cidr: format!("{pool}.{slot}.0/24"),
        gateway: format!("{pool}.{slot}.1"),
        created_at: now,
    };
    tx.network_insert(&n).await?;
    Ok(n)
}

fn host_ip(n: &Network, host: i64) -> String {
    let base = n
        .gateway
        .rsplit_once('.')
        .map(|(b, _)| b)
        .unwrap_or("10.0.0");
    format!("{base}.{host}")
}

/// What a change asks of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Reboot,
}

/// Starts, stops or reboots a VM. Asking for the state it is in already changes nothing.
pub async fn act(app: &App, ctx: &Ctx, id: &str, action: Action) -> Result<Vm> {
    let (mut tx, mut vm, now) = open_for_change(app, ctx, id).await?;
    if action != Action::Stop {
        suspension::ensure_active(&mut tx, vm.subscriber_id).await?;
        ensure_contract(&mut tx, vm.subscriber_id).await?;
    }
    busy(&vm)?;
    let (state, desired) = match (action, vm.state.as_str()) {
        (Action::Start, "running") | (Action::Stop, "stopped") => return Ok(vm),
        (Action::Start, _) => ("starting", "running"),
        (Action::Stop, _) => ("stopping", "stopped"),
        (Action::Reboot, "running") => ("rebooting", "running"),
        (Action::Reboot, s) => {
            return Err(Error::Conflict {
                field: None,
                reason: format!("the VM is {s}: only a running VM can be rebooted"),
            })
        }
    };
    vm.state = state.into();
    vm.desired = desired.into();
    vm.held = false;
    vm.error = None;
    record_change(app, ctx, tx, vm, now, &format!("vm.{state}"), json!({})).await
}

/// Moves a VM to another size: vCPUs and memory may change, the disk only grows. Refused over
/// quota, and when its host lacks the capacity; the VM restarts if it was running.
pub async fn resize(app: &App, ctx: &Ctx, id: &str, to: &str) -> Result<Vm> {
    let to: Size = size(to)?;
    let (mut tx, mut vm, now) = open_for_change(app, ctx, id).await?;
    suspension::ensure_active(&mut tx, vm.subscriber_id).await?;
    busy(&vm)?;
    if to.name == vm.size {
        return Ok(vm);
    }
    if (to.disk_gib as i64) < vm.disk_gib {
        return Err(Error::invalid(
            "size",
            format!(
                "has a {} GiB disk, smaller than this VM's {} GiB: a disk only grows",
                to.disk_gib, vm.disk_gib
            ),
        ));
    }
    let add = (
        to.vcpus as i64 - vm.vcpus,
        to.memory_mib as i64 - vm.memory_mib,
        to.disk_gib as i64 - vm.disk_gib,
    );
    let mine = tx.vms_of(vm.subscriber_id).await?;
    let quota = quota_of(&mut tx, vm.subscriber_id).await?;
    check_quota(
        &quota,
        &used(&mine),
        (add.0.max(0), add.1.max(0), add.2.max(0), 0),
    )?;
    let host = tx.host_fetch(vm.host_id).await?;
    let load = tx
        .host_loads()
        .await?
        .into_iter()
        .find(|(h, _)| *h == vm.host_id)
        .map(|(_, l)| l)
        .unwrap_or_default();
    if load.vcpus + add.0 > host.vcpus
        || load.memory_mib + add.1 > host.memory_mib
        || load.disk_gib + add.2 > host.disk_gib
    {
        return Err(Error::Conflict {
            field: Some("size".into()),
            reason: format!("the VM's host lacks the capacity for size {} right now (R-3.2); nothing was changed", to.name),
        });
    }
    vm.pending_size = Some(to.name.into());
    vm.state = "resizing".into();
    vm.error = None;
    let detail = json!({"from": vm.size, "to": to.name});
    record_change(app, ctx, tx, vm, now, "vm.resize", detail).await
}

/// Deletes a VM and everything it has on its host (disk, address, seed).
pub async fn delete(app: &App, ctx: &Ctx, id: &str) -> Result<Vm> {
    let (tx, mut vm, now) = open_for_change(app, ctx, id).await?;
    if vm.state == "deleting" {
        return Ok(vm);
    }
    vm.state = "deleting".into();
    vm.desired = "deleted".into();
    record_change(app, ctx, tx, vm, now, "vm.delete", json!({})).await
}

/// A VM the caller may change, in a write transaction: not deleted, theirs (or any, for the
/// abuse desk).
async fn open_for_change(app: &App, ctx: &Ctx, id: &str) -> Result<(Tx, Vm, Timestamp)> {
    may_change(ctx)?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    let vm = tx.vm_fetch(&ctx.scope(), id).await?;
    if vm.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    Ok((tx, vm, now))
}

/// Records a change asked of a VM, enqueues the job that carries it out, audits it, and wakes
/// the job runner.
async fn record_change(
    app: &App,
    ctx: &Ctx,
    mut tx: Tx,
    mut vm: Vm,
    now: Timestamp,
    action: &str,
    detail: serde_json::Value,
) -> Result<Vm> {
    vm.updated_at = now;
    tx.vm_update(&vm).await?;
    converge_later(&mut tx, vm.id, now).await?;
    audit::record(
        &mut tx,
        ctx,
        now,
        action,
        Some(&vm.id.to_string()),
        Some(vm.subscriber_id),
        detail,
    )
    .await?;
    tx.commit().await?;
    app.wake_jobs();
    Ok(vm)
}

/// Who may change a VM: its subscriber, or the abuse desk (and admins).
fn may_change(ctx: &Ctx) -> Result<()> {
    match ctx.principal.subscriber() {
        Some(_) => Ok(()),
        None => ctx.require_operator(&[maocloud_types::OperatorRole::Abuse]),
    }
}

fn busy(vm: &Vm) -> Result<()> {
    if BUSY.contains(&vm.state.as_str()) {
        return Err(Error::Conflict {
            field: None,
            reason: format!("the VM is {}; try again once that is done", vm.state),
        });
    }
    Ok(())
}

/// The serial console output from `offset`: `(bytes, next offset)`.
pub async fn console_read(
    app: &App,
    ctx: &Ctx,
    id: &str,
    offset: u64,
    max: usize,
) -> Result<(Vec<u8>, u64)> {
    let vm = get(app, ctx, id).await?;
    if vm.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    let agent = app
        .agents()
        .get(vm.host_id)
        .ok_or_else(|| Error::Conflict {
            field: None,
            reason: "the VM's host is not connected right now".into(),
        })?;
    match agent
        .console_read(vm.id.as_uuid(), offset, max.min(1 << 20))
        .await
    {
        Ok(r) => Ok(r),
        Err(AgentError::NoSuchVm(_)) => Ok((Vec::new(), offset)),
        Err(e) => Err(Error::internal(e)),
    }
}

/// Types into the serial console (refused while suspended: R-7.1c).
pub async fn console_write(app: &App, ctx: &Ctx, id: &str, input: &[u8]) -> Result<()> {
    let vm = get(app, ctx, id).await?;
    if vm.deleted_at.is_some() {
        return Err(Error::NotFound);
    }
    {
        let mut tx = app.db().read().await?;
        suspension::ensure_active(&mut tx, vm.subscriber_id).await?;
    }
    if vm.state != "running" {
        return Err(Error::Conflict {
            field: None,
            reason: format!("the VM is {}: start it to type into its console", vm.state),
        });
    }
    let agent = app
        .agents()
        .get(vm.host_id)
        .ok_or_else(|| Error::Conflict {
            field: None,
            reason: "the VM's host is not connected right now".into(),
        })?;
    agent
        .console_write(vm.id.as_uuid(), input)
        .await
        .map_err(Error::internal)
}

/// Counters of a running VM (for monitoring).
pub async fn counters(app: &App, ctx: &Ctx, id: &str) -> Result<maocloud_hypervisor::Counters> {
    let vm = get(app, ctx, id).await?;
    let agent = app.agents().get(vm.host_id).ok_or(Error::NotFound)?;
    agent
        .counters(vm.id.as_uuid())
        .await
        .map_err(|_| Error::Conflict {
            field: None,
            reason: format!("the VM is {}: no counters", vm.state),
        })
}

pub(crate) async fn converge_later(tx: &mut Tx, vm: VmId, now: Timestamp) -> Result<()> {
    tx.job_enqueue(
        &NewJob {
            kind: "vm.converge",
            payload: &json!({ "vm": vm.to_string() }),
            run_at: now,
            max_attempts: 8,
            dedupe_key: None,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Records that a VM's QEMU died without being asked to.
pub(crate) async fn mark_crashed(app: &App, id: VmId) -> Result<()> {
    let now = app.now();
    let mut tx = app.db().write().await?;
    let mut vm = tx.vm_fetch(&Scope::All, &id.to_string()).await?;
    if vm.state != "running" {
        return Ok(());
    }
    tracing::warn!(vm = %id, "guest crashed");
    vm.state = "crashed".into();
    vm.error = Some("the VM's QEMU process ended unexpectedly; start it again".into());
    vm.updated_at = now;
    tx.vm_update(&vm).await?;
    tx.usage_close(vm.id, "vm", now).await?;
    tx.commit().await?;
    Ok(())
}

pub fn register(r: &mut Registry) {
    r.register("vm.converge", |app, job| {
        Box::pin(async move {
            let Some(id) = job.payload["vm"].as_str().map(str::to_owned) else {
                return JobOutcome::Fail("payload without vm".into());
            };
            let last = job.attempts >= job.max_attempts;
            match converge(&app, &id, last).await {
                Ok(()) => JobOutcome::Done,
                Err(Step::Retry(e)) => JobOutcome::Retry(e),
                Err(Step::Fail(e)) => JobOutcome::Fail(e),
            }
        })
    });
    r.register("compute.enforce", |app, job| {
        Box::pin(async move {
            let Some(s) = job.payload["subscriber"]
                .as_str()
                .and_then(|s| s.parse().ok())
            else {
                return JobOutcome::Fail("payload without subscriber".into());
            };
            match enforce(&app, s).await {
                Ok(()) => JobOutcome::Done,
                Err(e) => JobOutcome::Retry(e.to_string()),
            }
        })
    });
}

enum Step {
    Retry(String),
    Fail(String),
}

impl From<maocloud_datastore::Error> for Step {
    fn from(e: maocloud_datastore::Error) -> Self {
        Step::Retry(e.to_string())
    }
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Retry(e.to_string())
    }
}

/// Everything the host needs to make or start the VM.
async fn spec_of(app: &App, tx: &mut Tx, vm: &Vm) -> Result<VmSpec> {
    let image = tx.image_fetch(&vm.image_id.to_string()).await?;
    let net = tx.network_fetch(vm.network_id).await?;
    let leases = tx
        .vms_on_network(net.id)
        .await?
        .into_iter()
        .map(|v| Lease {
            mac: v.mac,
            ip: v.ip,
            hostname: v.name,
        })
        .collect();
    let keys: Vec<String> = serde_json::from_str(&vm.ssh_keys).map_err(Error::internal)?;
    Ok(VmSpec {
        id: vm.id.as_uuid(),
        size: maocloud_hypervisor::Resources {
            vcpus: vm.vcpus as u32,
            memory_mib: vm.memory_mib as u32,
            disk_gib: vm.disk_gib as u32,
        },
        image: ImageRef {
            disk: image.path.map(Into::into),
            disk_format: image.format,
            kernel: image.kernel_path.map(Into::into),
            initrd: image.initrd_path.map(Into::into),
            cmdline: image.cmdline,
        },
        mac: vm.mac.clone(),
        network: NetworkSpec {
            id: net.id.as_uuid(),
            cidr: net.cidr.clone(),
            gateway: net.gateway.clone(),
            metadata_to: format!("{}:{}", net.gateway, app.agents().metadata_port()),
            leases,
        },
        seed: Seed {
            instance_id: vm.id.to_string(),
            hostname: vm.name.clone(),
            ssh_keys: keys,
            user_data: vm.user_data.clone(),
        },
    })
}

/// Drives one VM's host towards what its record asks. Every agent command is idempotent, so
/// running this again after a crash half-way is safe.
async fn converge(app: &App, id: &str, last_attempt: bool) -> std::result::Result<(), Step> {
    let (vm, spec) = {
        let mut tx = app.db().read().await?;
        let vm = tx.vm_fetch(&Scope::All, id).await.map_err(Error::from)?;
        if vm.deleted_at.is_some() {
            return Ok(());
        }
        let spec = spec_of(app, &mut tx, &vm).await?;
        (vm, spec)
    };
    let Some(agent) = app.agents().get(vm.host_id) else {
        return Err(Step::Retry(format!("host {} is not connected", vm.host_id)));
    };
    let uuid = vm.id.as_uuid();
    let outcome: std::result::Result<Option<&str>, AgentError> = async {
        match vm.state.as_str() {
            "deleting" => {
                agent.delete(uuid).await?;
                Ok(Some("deleted"))
            }
            "creating" => {
                agent.ensure_network(&spec.network).await?;
                agent.create(&spec).await?;
                if vm.desired == "running" && !vm.held {
                    agent.start(uuid).await?;
                    Ok(Some("running"))
                } else {
                    Ok(Some("stopped"))
                }
            }
            "starting" => {
                agent.ensure_network(&spec.network).await?;
                agent.create(&spec).await?;
                agent.start(uuid).await?;
                Ok(Some("running"))
            }
            "stopping" => {
                agent.stop(uuid, STOP_GRACE_SECS).await?;
                Ok(Some("stopped"))
            }
            "rebooting" => {
                agent.reboot(uuid).await?;
                Ok(Some("running"))
            }
            "resizing" => {
                let to = vm
                    .pending_size
                    .as_deref()
                    .and_then(|s| size(s).ok())
                    .ok_or_else(|| AgentError::Invalid("no size to resize to".into()))?;
                agent.stop(uuid, STOP_GRACE_SECS).await?;
                agent.resize(uuid, to.resources()).await?;
                if vm.desired == "running" {
                    agent.start(uuid).await?;
                    Ok(Some("running"))
                } else {
                    Ok(Some("stopped"))
                }
            }
            _ => Ok(None),
        }
    }
    .await;
    let now = app.now();
    let mut tx = app.db().write().await?;
    // Re-read: the record may have moved on (e.g. deleted while this ran).
    let mut cur = tx.vm_fetch(&Scope::All, id).await.map_err(Error::from)?;
    if cur.state != vm.state {
        return Ok(());
    }
    match outcome {
        Ok(None) => return Ok(()),
        Ok(Some(state)) => {
            if vm.state == "resizing" {
                if let Some(to) = cur.pending_size.take().and_then(|s| size(&s).ok()) {
                    cur.size = to.name.into();
                    cur.vcpus = to.vcpus as i64;
                    cur.memory_mib = to.memory_mib as i64;
                    cur.disk_gib = to.disk_gib as i64;
                    tx.usage_close(cur.id, "disk", now).await?;
                    tx.usage_close(cur.id, "vm", now).await?;
                }
            }
            cur.state = state.into();
            cur.error = None;
            cur.updated_at = now;
            match state {
                "deleted" => {
                    cur.deleted_at = Some(now);
                    tx.usage_close(cur.id, "vm", now).await?;
                    tx.usage_close(cur.id, "disk", now).await?;
                }
                "running" => {
                    tx.usage_open(&cur, "disk", &cur.size, cur.disk_gib, now)
                        .await?;
                    tx.usage_open(&cur, "vm", &cur.size, 1, now).await?;
                }
                _ => {
                    tx.usage_open(&cur, "disk", &cur.size, cur.disk_gib, now)
                        .await?;
                    tx.usage_close(cur.id, "vm", now).await?;
                }
            }
            tx.vm_update(&cur).await?;
            let last_on_network =
                state == "deleted" && tx.vms_on_network(cur.network_id).await?.is_empty();
            tx.commit().await?;
            if last_on_network {
                // The subscriber's last VM on this host is gone: so are its bridge and DHCP
                // server (the network record stays, and is made again on the next VM).
                if let Err(e) = agent.remove_network(cur.network_id.as_uuid()).await {
                    tracing::warn!(network = %cur.network_id, error = %e, "could not remove an unused network");
                }
            }
            Ok(())
        }
        Err(e) => {
            let permanent = matches!(
                e,
                AgentError::Capacity(_)
                    | AgentError::Invalid(_)
                    | AgentError::Conflict(_)
                    | AgentError::NoSuchVm(_)
            );
            if !permanent && !last_attempt {
                return Err(Step::Retry(e.to_string()));
            }
            // Undo or settle: a create the host refused leaves nothing behind on it; a resize
            // refused keeps the old size; anything else shows the error.
            let msg = e.to_string();
            match vm.state.as_str() {
                "creating" => {
                    let _ = agent.delete(uuid).await;
                    cur.state = "error".into();
                }
                "resizing" => {
                    cur.pending_size = None;
                    cur.state = power_of(&*agent, uuid).await;
                }
                _ => cur.state = power_of(&*agent, uuid).await,
            }
            cur.error = Some(msg.clone());
            cur.updated_at = now;
            tx.vm_update(&cur).await?;
            tx.commit().await?;
            Err(Step::Fail(msg))
        }
    }
}

async fn power_of(agent: &dyn maocloud_hypervisor::Agent, id: uuid::Uuid) -> String {
    match agent.status(id).await {
        Ok(s) if s.power == PowerState::Running => "running",
        Ok(s) if s.power == PowerState::Crashed => "crashed",
        Ok(_) => "stopped",
        Err(_) => "error",
    }
    .into()
}

/// R-7.3c, at a contract's end date: when the subscriber has no active subscription left,
/// their VMs stop (held: kept, read-only, for the grace period). In the caller's transaction.
pub(crate) async fn end_of_contract(
    tx: &mut Tx,
    subscriber: SubscriberId,
    now: Timestamp,
) -> Result<()> {
    if has_active_contract(tx, subscriber).await? {
        return Ok(());
    }
    for mut vm in tx.vms_of(subscriber).await? {
        if matches!(
            vm.state.as_str(),
            "running" | "starting" | "rebooting" | "creating"
        ) {
            vm.held = true;
            vm.desired = "stopped".into();
            vm.state = "stopping".into();
            vm.updated_at = now;
            tx.vm_update(&vm).await?;
            converge_later(tx, vm.id, now).await?;
        }
    }
    Ok(())
}

/// R-7.3c, after the grace period: the subscriber's VMs and their disks are deleted, unless a
/// contract is active again. In the caller's transaction.
pub(crate) async fn erase_all(
    tx: &mut Tx,
    subscriber: SubscriberId,
    now: Timestamp,
) -> Result<u64> {
    if has_active_contract(tx, subscriber).await? {
        return Ok(0);
    }
    let mut n = 0;
    for mut vm in tx.vms_of(subscriber).await? {
        vm.state = "deleting".into();
        vm.desired = "deleted".into();
        vm.updated_at = now;
        tx.vm_update(&vm).await?;
        converge_later(tx, vm.id, now).await?;
        n += 1;
    }
    Ok(n)
}

async fn has_active_contract(tx: &mut Tx, subscriber: SubscriberId) -> Result<bool> {
    Ok(tx
        .subscription_list(&Scope::All, subscriber)
        .await?
        .iter()
        .any(|s| s.status == "active"))
}

/// Refuses to start a VM whose subscriber's contracts have all ended (R-7.3c: kept read-only).
async fn ensure_contract(tx: &mut Tx, subscriber: SubscriberId) -> Result<()> {
    if crate::termination::all_contracts_ended(tx, subscriber).await? {
        return Err(Error::Conflict {
            field: None,
            reason: "your contract has ended: your VMs are kept, stopped, until their erasure date; export what you need".into(),
        });
    }
    Ok(())
}

/// Asks the platform to apply a subscriber's suspension state to their VMs (R-7.1c).
pub(crate) async fn enforce_later(
    tx: &mut Tx,
    subscriber: SubscriberId,
    now: Timestamp,
) -> Result<()> {
    tx.job_enqueue(
        &NewJob {
            kind: "compute.enforce",
            payload: &json!({ "subscriber": subscriber.to_string() }),
            run_at: now,
            max_attempts: 20,
            dedupe_key: None,
        },
        now,
    )
    .await?;
    Ok(())
}

/// Suspended: running VMs are stopped and held; lifted: held VMs start again. Nothing is
/// destroyed (R-7.1c).
pub async fn enforce(app: &App, subscriber: SubscriberId) -> Result<()> {
    let suspended = suspension::is_suspended(app, subscriber).await?;
    let now = app.now();
    let mut tx = app.db().write().await?;
    for mut vm in tx.vms_of(subscriber).await? {
        let change =
            if suspended && matches!(vm.state.as_str(), "running" | "starting" | "rebooting") {
                vm.held = true;
                vm.desired = "stopped".into();
                Some("stopping")
            } else if !suspended
                && vm.held
                && vm.state == "stopped"
                && has_active_contract(&mut tx, subscriber).await?
            {
                vm.held = false;
                vm.desired = "running".into();
                Some("starting")
            } else {
                None
            };
        if let Some(state) = change {
            vm.state = state.into();
            vm.updated_at = now;
            tx.vm_update(&vm).await?;
            converge_later(&mut tx, vm.id, now).await?;
        }
    }
    tx.commit().await?;
    app.wake_jobs();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_data_must_be_something_cloud_init_reads() {
        assert!(super::check_user_data("#!/bin/sh\necho hi\n").is_ok());
        assert!(super::check_user_data("#cloud-config\nhostname: a\n").is_ok());
        for bad in [
            "echo hi",
            "#cloud-config\n\thostname: a",
            "#!/bin/sh\0",
            &"#!".repeat(9000),
        ] {
            assert!(super::check_user_data(bad).is_err(), "{bad:.20}");
        }
    }

    #[test]
    fn names_are_host_names() {
        assert_eq!(super::check_name(" web-1 ").unwrap(), "web-1");
        for bad in ["", "-a", "a-", "Web", "a_b", &"a".repeat(64)] {
            assert!(super::check_name(bad).is_err(), "{bad}");
        }
    }
}
