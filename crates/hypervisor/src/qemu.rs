//! The QEMU agent: runs guests with Debian's `qemu-system-x86_64`, driven over QMP (no
//! libvirt). Each VM has a directory `<state_dir>/vms/<id>/` holding everything about it:
//!
//! | file          | what                                                                  |
//! |---------------|-----------------------------------------------------------------------|
//! | `spec.json`   | the [`VmSpec`] (written last by `create`: a VM without it is debris)  |
//! | `disk.qcow2`  | the VM's disk: a qcow2 overlay on the image's base disk, or blank      |
//! | `seed.img`    | the NoCloud seed ([`crate::seed`])                                     |
//! | `pid`         | QEMU's pid file: present while QEMU should run (QEMU removes it when  |
//! |               | it exits cleanly; a QEMU killed or crashed leaves it: *Crashed*)      |
//! | `qmp.sock`    | QMP                                                                    |
//! | `serial.sock` | the serial console (one client at a time)                             |
//! | `console.log` | everything the serial console printed, across restarts                |
//! | `cgroups`     | the cgroup directories QEMU runs in                                    |
//!
//! QEMU daemonises (`-daemonize`: its own session, stdio on /dev/null), so guests outlive the
//! agent; [`QemuAgent::open`] finds them again from these files. The power state is read from
//! the files and `/proc` every time, never cached: `pid` absent → Stopped; `pid` names a live
//! QEMU started for this VM (its command line holds the VM's id) → Running; otherwise Crashed.

use crate::cgroup::{self, Cgroups, Groups};
use crate::host::{self, io_failed};
use crate::net::{self, Networks};
use crate::qmp::{Qmp, QmpError};
use crate::rules::{self, Claim, Commitment};
use crate::{
    seed, Accel, Agent, AgentError, AgentResult, Counters, HostReport, NetworkSpec, PowerState,
    Resources, VmSpec, VmStatus,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

/// How the agent picks the accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if a probe guest really runs under it (a few seconds at most), else TCG with a
    /// warning in the report.
    Auto,
    /// KVM, unprobed.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// Where VMs and networks live (`vms/`, `nets/`). Must be searchable by `nobody` (dnsmasq).
    pub state_dir: PathBuf,
    /// What guests may use in all; default: the host's CPUs, 80 % of its memory, the free disk
    /// of `state_dir` at start.
    pub capacity: Option<Resources>,
    pub accel: AccelChoice,
    pub qemu_binary: PathBuf,
    /// QEMU machine type.
    pub machine: String,
    /// The name the host reports; default: the kernel's hostname.
    pub hostname: Option<String>,
    /// The interface guests' traffic may leave by (masqueraded); none: guests reach only the
    /// host's DHCP and metadata.
    pub uplink: Option<String>,
    /// Memory allowed to each QEMU beyond its guest's (cgroup limit).
    pub memory_overhead_mib: u32,
}

impl QemuConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> QemuConfig {
        QemuConfig {
            state_dir: state_dir.into(),
            capacity: None,
            accel: AccelChoice::Auto,
            qemu_binary: "qemu-system-x86_64".into(),
            machine: "q35".into(),
            hostname: None,
            uplink: None,
            memory_overhead_mib: 256,
        }
    }
}

/// TCG's translation cache, bounded so QEMU fits its cgroup (QEMU's default is 1 GiB).
const TCG_TB_SIZE_MIB: u32 = 128;
/// How long QEMU may take to start (until it daemonises) and to answer QMP.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const QMP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct QemuAgent {
    config: QemuConfig,
    hostname: String,
    accel: Accel,
    capacity: Resources,
    warnings: Vec<String>,
    cgroups: Option<Cgroups>,
    nets: Networks,
    vms: Mutex<BTreeMap<Uuid, Arc<Vm>>>,
    /// Held while a command takes capacity, so two commands cannot both take the last of it.
    /// Lock order: a VM's `runtime` first, then this.
    capacity_lock: tokio::sync::Mutex<()>,
}

struct Vm {
    id: Uuid,
    dir: PathBuf,
    spec: Mutex<VmSpec>,
    /// Held by every command that changes the VM (create again, start, stop, reboot, resize,
    /// delete): one at a time. Reads (status, counters, console) do not wait for it.
    runtime: Arc<tokio::sync::Mutex<Runtime>>,
    /// The QMP connection (QEMU serves one client), made on first need.
    qmp: tokio::sync::Mutex<Option<Qmp>>,
    /// The connection to the serial console, with the pid of the QEMU it belongs to.
    console: tokio::sync::Mutex<Option<(u32, tokio::net::unix::OwnedWriteHalf)>>,
}

#[derive(Default)]
struct Runtime {
    deleted: bool,
}

/// What `/proc` and the VM's files say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Stopped,
    Running(u32),
    /// The pid file names a process that is gone (or not our QEMU).
    Crashed(u32),
}

impl Vm {
    fn spec(&self) -> VmSpec {
        self.spec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn power(&self) -> Power {
        let Some(pid) = std::fs::read_to_string(self.file("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        else {
            return Power::Stopped;
        };
        if host::alive(pid) && host::cmdline_contains(pid, &self.id.to_string()) {
            Power::Running(pid)
        } else {
            Power::Crashed(pid)
        }
    }

    /// Drops the connections to QEMU (it is gone or going).
    async fn disconnect(&self) {
        *self.qmp.lock().await = None;
        *self.console.lock().await = None;
    }

    fn status(&self, power: PowerState, pid: Option<u32>) -> VmStatus {
        VmStatus {
            id: self.id,
            power,
            size: self.spec().size,
            pid,
        }
    }
}

impl QemuAgent {
    /// Opens the agent on `config.state_dir`: probes the host, and finds the VMs left by a
    /// previous agent, reconnecting to those still running.
    pub async fn open(config: QemuConfig) -> AgentResult<QemuAgent> {
        let mut config = config;
        std::fs::create_dir_all(config.state_dir.join("vms"))
            .map_err(io_failed(config.state_dir.display()))?;
        config.state_dir = config
            .state_dir
            .canonicalize()
            .map_err(io_failed(config.state_dir.display()))?;
        let mut warnings = Vec::new();

        let missing: Vec<&str> = ["qemu-img", "ip", "nft", "dnsmasq", "mkfs.vfat", "mcopy"]
            .into_iter()
            .chain(config.qemu_binary.to_str())
            .filter(|tool| !on_path(tool))
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "missing tools: {} (Debian packages: qemu-system-x86, qemu-utils, iproute2, \
                 nftables, dnsmasq-base, dosfstools, mtools)",
                missing.join(", ")
            ));
        }

        let accel = match config.accel {
            AccelChoice::Tcg => Accel::Tcg,
            AccelChoice::Kvm => Accel::Kvm,
            AccelChoice::Auto => {
                if !Path::new("/dev/kvm").exists() {
                    warnings.push(
                        "no KVM on this host (/dev/kvm absent): guests run under TCG (slow)".into(),
                    );
                    Accel::Tcg
                } else {
                    match host::probe_kvm(&config.qemu_binary, &config.machine, &config.state_dir)
                        .await
                    {
                        Ok(()) => Accel::Kvm,
                        Err(why) => {
                            tracing::warn!(%why, "KVM probe failed");
                            warnings.push(
                                "KVM present but a probe guest did not run: \
                                 guests run under TCG (slow)"
                                    .into(),
                            );
                            Accel::Tcg
                        }
                    }
                }
            }
        };

        let cgroups = match Cgroups::detect() {
            Ok(cgroups) => {
                tracing::info!(cgroups = %cgroups.describe(), "guests bounded by cgroups");
                Some(cgroups)
            }
            Err(why) => {
                warnings.push(format!(
                    "guests' CPU and memory are not bounded (no usable cgroups: {why})"
                ));
                None
            }
        };

        if let Some(dir) = net::unreachable_ancestor(&config.state_dir) {
            warnings.push(format!(
                "{} is not searchable by others: dnsmasq (as nobody) cannot re-read DHCP leases",
                dir.display()
            ));
        }

        let capacity = config.capacity.unwrap_or_else(|| Resources {
            vcpus: host::cpus(),
            memory_mib: host::memory_total_mib() / 10 * 8,
            disk_gib: host::free_disk_gib(&config.state_dir),
        });
        let nets = Networks::new(&config.state_dir, config.uplink.clone())?;
        let hostname = config.hostname.clone().unwrap_or_else(host::hostname);
        let agent = QemuAgent {
            config,
            hostname,
            accel,
            capacity,
            warnings,
            cgroups,
            nets,
            vms: Mutex::new(BTreeMap::new()),
            capacity_lock: Default::default(),
        };
        agent.reattach().await;
        Ok(agent)
    }

    /// The nftables table this agent writes (`inet` family).
    pub fn nft_table(&self) -> &str {
        self.nets.table()
    }

    /// The directory of VM `id`.
    pub fn vm_dir(&self, id: Uuid) -> PathBuf {
        self.config.state_dir.join("vms").join(id.to_string())
    }

    /// Finds the VMs in `state_dir` and reconnects to the running ones.
    async fn reattach(&self) {
        let Ok(entries) = std::fs::read_dir(self.config.state_dir.join("vms")) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Uuid>().ok())
            else {
                continue;
            };
            let Ok(spec) = std::fs::read(entry.path().join("spec.json")) else {
                continue;
            };
            let spec: VmSpec = match serde_json::from_slice(&spec) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(%id, error = %e, "unreadable spec.json: VM ignored");
                    continue;
                }
            };
            let vm = self.insert(spec);
            match vm.power() {
                Power::Running(pid) => match self.qmp(&vm).await {
                    Ok(_) => tracing::info!(%id, pid, "re-attached to a running VM"),
                    Err(e) => {
                        tracing::warn!(%id, pid, error = %e, "running VM does not answer QMP")
                    }
                },
                Power::Crashed(pid) => {
                    tracing::warn!(%id, pid, "VM crashed while the agent was away")
                }
                Power::Stopped => {}
            }
        }
    }

    fn insert(&self, spec: VmSpec) -> Arc<Vm> {
        let vm = Arc::new(Vm {
            id: spec.id,
            dir: self.vm_dir(spec.id),
            spec: Mutex::new(spec),
            runtime: Default::default(),
            qmp: Default::default(),
            console: Default::default(),
        });
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(vm.id, vm.clone());
        vm
    }

    fn vm(&self, id: Uuid) -> AgentResult<Arc<Vm>> {
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or(AgentError::NoSuchVm(id))
    }

    fn all(&self) -> Vec<Arc<Vm>> {
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every other VM, as the capacity accounting sees it.
    fn others(&self, id: Uuid) -> Vec<Commitment> {
        self.all()
            .iter()
            .filter(|vm| vm.id != id)
            .map(|vm| Commitment {
                size: vm.spec().size,
                running: matches!(vm.power(), Power::Running(_)),
            })
            .collect()
    }

    /// Locks VM `id` for a command; a VM deleted meanwhile is absent.
    async fn lock(
        &self,
        id: Uuid,
    ) -> AgentResult<(Arc<Vm>, tokio::sync::OwnedMutexGuard<Runtime>)> {
        let vm = self.vm(id)?;
        let guard = vm.runtime.clone().lock_owned().await;
        if guard.deleted {
            return Err(AgentError::NoSuchVm(id));
        }
        Ok((vm, guard))
    }

    /// The VM's QMP connection, made if needed.
    async fn qmp(&self, vm: &Vm) -> AgentResult<Qmp> {
        let mut slot = vm.qmp.lock().await;
        if let Some(qmp) = slot.as_ref().filter(|q| !q.is_closed()) {
            return Ok(qmp.clone());
        }
        *slot = None;
        let (id, pid_file) = (vm.id, vm.file("pid"));
        let on_close = Box::new(move |shutdown: Option<Value>| {
            if pid_file.exists() {
                tracing::warn!(%id, ?shutdown, "QEMU exited unexpectedly: VM crashed");
            } else {
                tracing::info!(%id, ?shutdown, "QEMU exited");
            }
        });
        let qmp = Qmp::connect(&vm.file("qmp.sock"), QMP_CONNECT_TIMEOUT, on_close)
            .await
            .map_err(|e| AgentError::Failed(format!("VM {id}: {e}")))?;
        *slot = Some(qmp.clone());
        Ok(qmp)
    }

    /// The VM's status; `deep` also asks QEMU (a QEMU that no longer answers QMP is Crashed).
    async fn status_of(&self, vm: &Vm, deep: bool) -> VmStatus {
        match vm.power() {
            Power::Stopped => vm.status(PowerState::Stopped, None),
            Power::Crashed(_) => vm.status(PowerState::Crashed, None),
            Power::Running(pid) => {
                if deep {
                    let answers = match self.qmp(vm).await {
                        Ok(qmp) => qmp.execute("query-status", None).await.is_ok(),
                        Err(_) => false,
                    };
                    if !answers && host::alive(pid) {
                        return vm.status(PowerState::Crashed, Some(pid));
                    }
                    if !host::alive(pid) {
                        return Box::pin(self.status_of(vm, false)).await;
                    }
                }
                vm.status(PowerState::Running, Some(pid))
            }
        }
    }

    /// Makes the VM's disk and seed when missing.
    async fn prepare_files(&self, spec: &VmSpec, dir: &Path) -> AgentResult<()> {
        std::fs::create_dir_all(dir).map_err(io_failed(dir.display()))?;
        let disk = dir.join("disk.qcow2");
        if !disk.exists() {
            let temporary = dir.join("disk.qcow2.new");
            let size = format!("{}G", spec.size.disk_gib);
            let mut args: Vec<String> =
                vec!["create".into(), "-q".into(), "-f".into(), "qcow2".into()];
            if let Some(base) = &spec.image.disk {
                let info = host::run(
                    "qemu-img",
                    &["info".as_ref(), "--output=json".as_ref(), base.as_os_str()],
                    None,
                )
                .await
                .map_err(|e| AgentError::Invalid(format!("base disk {}: {e}", base.display())))?;
                let info: Value = serde_json::from_str(&info).unwrap_or(Value::Null);
                let format = match &spec.image.disk_format {
                    Some(format) => format.clone(),
                    None => info["format"].as_str().unwrap_or("raw").to_owned(),
                };
                let needed = info["virtual-size"].as_u64().unwrap_or(0);
                if needed > u64::from(spec.size.disk_gib) << 30 {
                    return Err(AgentError::Invalid(format!(
                        "the image needs a disk of at least {} GiB",
                        needed.div_ceil(1 << 30)
                    )));
                }
                args.extend(["-F".into(), format, "-b".into(), base.display().to_string()]);
            }
            args.extend([temporary.display().to_string(), size]);
            host::run("qemu-img", &args, None).await?;
            std::fs::rename(&temporary, &disk).map_err(io_failed(disk.display()))?;
        }
        let seed_image = dir.join("seed.img");
        if !seed_image.exists() {
            seed::write(dir, &seed_image, &spec.seed).await?;
        }
        Ok(())
    }

    /// Starts QEMU for `vm` (not running). The caller holds the VM and the capacity locks.
    async fn launch(&self, vm: &Vm, spec: &VmSpec) -> AgentResult<()> {
        vm.disconnect().await;
        for stale in ["pid", "qmp.sock", "serial.sock"] {
            let _ = std::fs::remove_file(vm.file(stale));
        }
        let tap = net::tap_name(vm.id);
        self.nets.create_tap(&tap, spec.network.id).await?;
        let groups = match &self.cgroups {
            Some(cgroups) => {
                let memory = (u64::from(spec.size.memory_mib)
                    + u64::from(self.config.memory_overhead_mib))
                    << 20;
                let groups = cgroups
                    .prepare(&vm.id.to_string(), spec.size.vcpus, memory)
                    .map_err(|e| AgentError::Failed(format!("cgroup for VM {}: {e}", vm.id)))?;
                let list: String = groups
                    .0
                    .iter()
                    .map(|g| format!("{}\n", g.display()))
                    .collect();
                std::fs::write(vm.file("cgroups"), list).map_err(io_failed("cgroups"))?;
                groups
            }
            None => Groups::default(),
        };
        let procs = groups.procs_files();

        let mut command = tokio::process::Command::new(&self.config.qemu_binary);
        command.args(self.qemu_args(vm, spec, &tap));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: the closure only makes async-signal-safe calls (open, write, close).
        unsafe {
            command.pre_exec(move || cgroup::join_before_exec(&procs));
        }
        let failed = |why: String| {
            let tap = tap.clone();
            let groups = groups.clone();
            async move {
                let _ = self.nets.remove_tap(&tap).await;
                groups.remove();
                AgentError::Failed(format!("VM {}: QEMU did not start: {why}", vm.id))
            }
        };
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Err(failed(format!(
                    "cannot run {}: {e}",
                    self.config.qemu_binary.display()
                ))
                .await)
            }
        };
        // QEMU returns once the guest is set up and the daemon runs on its own.
        let output = match tokio::time::timeout(START_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(failed(e.to_string()).await),
            Err(_) => return Err(failed("timed out".into()).await),
        };
        if !output.status.success() {
            return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_owned()).await);
        }
        let Power::Running(pid) = vm.power() else {
            return Err(failed("no live QEMU behind the pid file".into()).await);
        };
        let qmp = match self.qmp(vm).await {
            Ok(qmp) => qmp,
            Err(e) => {
                host::signal(pid, libc::SIGKILL);
                let _ = std::fs::remove_file(vm.file("pid"));
                return Err(failed(e.to_string()).await);
            }
        };
        let state = qmp
            .execute("query-status", None)
            .await
            .map_err(|e| AgentError::Failed(e.to_string()))?;
        if state["running"] != Value::Bool(true) {
            return Err(AgentError::Failed(format!(
                "VM {}: QEMU started but is {}",
                vm.id, state["status"]
            )));
        }
        tracing::info!(id = %vm.id, pid, accel = ?self.accel, "VM started");
        Ok(())
    }

    fn qemu_args(&self, vm: &Vm, spec: &VmSpec, tap: &str) -> Vec<String> {
        let path = |name: &str| escape(&vm.file(name).display().to_string());
        let mut args: Vec<String> = Vec::new();
        let mut add = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
        let id = vm.id.to_string();
        add(&[
            "-name",
            &format!("guest={id},debug-threads=on"),
            "-uuid",
            &id,
        ]);
        add(&["-machine", &self.config.machine]);
        match self.accel {
            Accel::Kvm => add(&["-accel", "kvm", "-cpu", "host"]),
            _ => add(&["-accel", &format!("tcg,tb-size={TCG_TB_SIZE_MIB}")]),
        }
        add(&[
            "-smp",
            &spec.size.vcpus.to_string(),
            "-m",
            &spec.size.memory_mib.to_string(),
        ]);
        add(&[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-vga",
            "none",
        ]);
        add(&[
            "-daemonize",
            "-pidfile",
            &vm.file("pid").display().to_string(),
        ]);
        add(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", path("qmp.sock")),
        ]);
        add(&[
            "-chardev",
            &format!(
                "socket,id=ser0,path={},server=on,wait=off,logfile={},logappend=on",
                path("serial.sock"),
                path("console.log")
            ),
            "-serial",
            "chardev:ser0",
        ]);
        add(&[
            "-drive",
            &format!(
                "file={},if=none,id=disk0,format=qcow2,cache=writeback,discard=unmap",
                path("disk.qcow2")
            ),
            "-device",
            "virtio-blk-pci,drive=disk0,bootindex=1",
        ]);
        add(&[
            "-drive",
            &format!(
                "file={},if=none,id=seed0,format=raw,readonly=on",
                path("seed.img")
            ),
            "-device",
            "virtio-blk-pci,drive=seed0",
        ]);
        add(&[
            "-netdev",
            &format!("tap,id=net0,ifname={tap},script=no,downscript=no"),
            "-device",
            &format!(
                "virtio-net-pci,netdev=net0,mac={}",
                spec.mac.to_ascii_lowercase()
            ),
        ]);
        add(&[
            "-object",
            "rng-random,id=rng0,filename=/dev/urandom",
            "-device",
            "virtio-rng-pci,rng=rng0",
        ]);
        if let Some(kernel) = &spec.image.kernel {
            add(&["-kernel", &kernel.display().to_string()]);
            if let Some(initrd) = &spec.image.initrd {
                add(&["-initrd", &initrd.display().to_string()]);
            }
            let mut cmdline = spec.image.cmdline.clone().unwrap_or_default();
            if !cmdline
                .split_whitespace()
                .any(|w| w.starts_with("console="))
            {
                cmdline = format!("{cmdline} console=ttyS0").trim().to_owned();
            }
            add(&["-append", &cmdline]);
        }
        args
    }

    /// Stops QEMU: ACPI power button, then `quit` after `grace`, then SIGKILL. The caller holds
    /// the VM's lock. Also tidies after a QEMU that exited by itself.
    async fn halt(&self, vm: &Vm, grace: Duration) -> AgentResult<()> {
        if let Power::Running(pid) = vm.power() {
            let qmp = self.qmp(vm).await.ok();
            let mut gone = false;
            if let Some(qmp) = &qmp {
                if !grace.is_zero() && qmp.execute("system_powerdown", None).await.is_ok() {
                    gone = host::wait_gone(pid, grace).await;
                }
                if !gone {
                    let _ = qmp.execute("quit", None).await;
                    gone = host::wait_gone(pid, Duration::from_secs(5)).await;
                }
            }
            if !gone {
                tracing::warn!(id = %vm.id, pid, "QEMU did not quit: killing it");
                host::signal(pid, libc::SIGKILL);
                if !host::wait_gone(pid, Duration::from_secs(5)).await {
                    return Err(AgentError::Failed(format!(
                        "VM {}: QEMU (pid {pid}) does not die",
                        vm.id
                    )));
                }
            }
        }
        vm.disconnect().await;
        for file in ["pid", "qmp.sock", "serial.sock"] {
            let _ = std::fs::remove_file(vm.file(file));
        }
        self.nets.remove_tap(&net::tap_name(vm.id)).await?;
        if let Ok(list) = std::fs::read_to_string(vm.file("cgroups")) {
            Groups(list.lines().map(PathBuf::from).collect()).remove();
        }
        Ok(())
    }

    /// A connection to the VM's serial console, made if needed; its output is drained and
    /// dropped (the log file has it), so QEMU never blocks on a full socket.
    async fn console(
        &self,
        vm: &Vm,
        slot: &mut Option<(u32, tokio::net::unix::OwnedWriteHalf)>,
        pid: u32,
    ) -> AgentResult<()> {
        if slot.as_ref().is_some_and(|(p, _)| *p == pid) {
            return Ok(());
        }
        let connect = tokio::net::UnixStream::connect(vm.file("serial.sock"));
        let stream = tokio::time::timeout(QMP_CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                AgentError::Failed(format!("VM {}: serial console connection timed out", vm.id))
            })?
            .map_err(io_failed(format!("VM {}: serial console", vm.id)))?;
        let (mut read, write) = stream.into_split();
        tokio::spawn(async move {
            let mut sink = [0u8; 4096];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        *slot = Some((pid, write));
        Ok(())
    }
}

/// QEMU's option syntax doubles commas inside values.
fn escape(value: &str) -> String {
    value.replace(',', ",,")
}

fn on_path(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).exists()))
        .unwrap_or(false)
}

#[async_trait::async_trait]
impl Agent for QemuAgent {
    async fn report(&self) -> AgentResult<HostReport> {
        let mut vms = Vec::new();
        let mut warnings = self.warnings.clone();
        warnings.extend(self.nets.problems());
        for vm in self.all() {
            let status = self.status_of(&vm, false).await;
            if status.power == PowerState::Crashed {
                warnings.push(format!(
                    "VM {} crashed (its QEMU exited unexpectedly)",
                    vm.id
                ));
            }
            vms.push(status);
        }
        Ok(HostReport {
            hostname: self.hostname.clone(),
            accel: self.accel,
            capacity: self.capacity,
            warnings,
            vms,
        })
    }

    async fn ensure_network(&self, net: &NetworkSpec) -> AgentResult<()> {
        self.nets.ensure(net).await?;
        // A bridge made anew (deleted by hand, say) has lost its ports: plug the taps back.
        for vm in self
            .all()
            .iter()
            .filter(|vm| vm.spec().network.id == net.id)
        {
            let tap = net::tap_name(vm.id);
            if net::link_exists(&tap) {
                self.nets.plug_tap(&tap, net.id).await?;
            }
        }
        Ok(())
    }

    async fn remove_network(&self, id: Uuid) -> AgentResult<()> {
        if let Some(vm) = self.all().iter().find(|vm| vm.spec().network.id == id) {
            return Err(AgentError::Conflict(format!(
                "network {id} is still used by VM {}",
                vm.id
            )));
        }
        self.nets.remove(id).await
    }

    async fn create(&self, spec: &VmSpec) -> AgentResult<()> {
        rules::check_spec(spec)?;
        for path in [&spec.image.disk, &spec.image.kernel, &spec.image.initrd]
            .into_iter()
            .flatten()
        {
            if !path.is_file() {
                return Err(AgentError::Invalid(format!(
                    "no image file {}",
                    path.display()
                )));
            }
        }
        let capacity = self.capacity_lock.lock().await;
        if let Ok(existing) = self.vm(spec.id) {
            // Locks are taken VM first, capacity second: let go of capacity before the VM.
            drop(capacity);
            if !rules::same_vm(&existing.spec(), spec) {
                return Err(AgentError::Conflict(format!(
                    "VM {} exists with another spec",
                    spec.id
                )));
            }
            let _runtime = existing.runtime.lock().await;
            return self.prepare_files(&existing.spec(), &existing.dir).await;
        }
        rules::check(
            self.capacity,
            self.others(spec.id),
            spec.size,
            Claim::Create,
        )?;
        let dir = self.vm_dir(spec.id);
        self.prepare_files(spec, &dir).await?;
        net::write_atomic(
            &dir.join("spec.json"),
            &serde_json::to_vec_pretty(spec).expect("serialisable"),
        )?;
        self.insert(spec.clone());
        tracing::info!(id = %spec.id, "VM created");
        Ok(())
    }

    async fn start(&self, id: Uuid) -> AgentResult<()> {
        let (vm, _runtime) = self.lock(id).await?;
        if let Power::Running(_) = vm.power() {
            // Running, unless QEMU no longer answers: then it is killed and started again.
            if self.status_of(&vm, true).await.power == PowerState::Running {
                return Ok(());
            }
        }
        let spec = vm.spec();
        let _capacity = self.capacity_lock.lock().await;
        rules::check(self.capacity, self.others(id), spec.size, Claim::Start)?;
        if !self.nets.is_ready(spec.network.id) {
            return Err(AgentError::Conflict(format!(
                "network {} is not set up on this host (ensure_network first)",
                spec.network.id
            )));
        }
        // A crashed QEMU leaves its tap, cgroup and sockets (a hung one is killed): clear them.
        self.halt(&vm, Duration::ZERO).await?;
        self.prepare_files(&spec, &vm.dir).await?;
        self.launch(&vm, &spec).await
    }

    async fn stop(&self, id: Uuid, grace_secs: u64) -> AgentResult<()> {
        let (vm, _runtime) = self.lock(id).await?;
        self.halt(&vm, Duration::from_secs(grace_secs)).await
    }

    async fn reboot(&self, id: Uuid) -> AgentResult<()> {
        let (vm, _runtime) = self.lock(id).await?;
        if !matches!(vm.power(), Power::Running(_)) {
            return Err(AgentError::Conflict(format!("VM {id} is not running")));
        }
        let qmp = self.qmp(&vm).await?;
        qmp.execute("system_reset", None)
            .await
            .map_err(|e| AgentError::Failed(format!("VM {id}: {e}")))?;
        Ok(())
    }

    async fn resize(&self, id: Uuid, size: Resources) -> AgentResult<()> {
        let (vm, _runtime) = self.lock(id).await?;
        if let Power::Running(_) = vm.power() {
            return Err(AgentError::Conflict(format!(
                "VM {id} must be stopped to be resized"
            )));
        }
        let mut spec = vm.spec();
        rules::check_resize(spec.size, size)?;
        let _capacity = self.capacity_lock.lock().await;
        rules::check(self.capacity, self.others(id), size, Claim::Resize)?;
        if size.disk_gib > spec.size.disk_gib {
            let disk = vm.file("disk.qcow2");
            host::run(
                "qemu-img",
                &[
                    "resize".as_ref(),
                    "-q".as_ref(),
                    disk.as_os_str(),
                    format!("{}G", size.disk_gib).as_ref(),
                ],
                None,
            )
            .await?;
        }
        spec.size = size;
        net::write_atomic(
            &vm.file("spec.json"),
            &serde_json::to_vec_pretty(&spec).expect("serialisable"),
        )?;
        *vm.spec.lock().unwrap_or_else(|p| p.into_inner()) = spec;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> AgentResult<()> {
        let Ok((vm, mut runtime)) = self.lock(id).await else {
            return Ok(());
        };
        self.halt(&vm, Duration::ZERO).await?;
        if vm.dir.exists() {
            std::fs::remove_dir_all(&vm.dir).map_err(io_failed(vm.dir.display()))?;
        }
        runtime.deleted = true;
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        tracing::info!(%id, "VM deleted");
        Ok(())
    }

    async fn status(&self, id: Uuid) -> AgentResult<VmStatus> {
        let vm = self.vm(id)?;
        Ok(self.status_of(&vm, true).await)
    }

    async fn console_read(&self, id: Uuid, offset: u64, max: usize) -> AgentResult<(Vec<u8>, u64)> {
        let vm = self.vm(id)?;
        let path = vm.file("console.log");
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(io_failed(path.display())(e)),
        };
        let length = file
            .metadata()
            .await
            .map_err(io_failed(path.display()))?
            .len();
        let start = offset.min(length);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io_failed(path.display()))?;
        let mut bytes = Vec::new();
        let wanted = (max as u64).min(length - start);
        file.take(wanted)
            .read_to_end(&mut bytes)
            .await
            .map_err(io_failed(path.display()))?;
        let next = start + bytes.len() as u64;
        Ok((bytes, next))
    }

    async fn console_write(&self, id: Uuid, input: &[u8]) -> AgentResult<()> {
        let vm = self.vm(id)?;
        let Power::Running(pid) = vm.power() else {
            return Err(AgentError::Conflict(format!("VM {id} is not running")));
        };
        let mut slot = vm.console.lock().await;
        for attempt in 0..2 {
            self.console(&vm, &mut slot, pid).await?;
            let (_, write) = slot.as_mut().expect("just connected");
            match write.write_all(input).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 0 => {
                    tracing::debug!(%id, error = %e, "serial console lost: reconnecting");
                    *slot = None;
                }
                Err(e) => return Err(io_failed(format!("VM {id}: serial console"))(e)),
            }
        }
        unreachable!("the loop returns")
    }

    async fn counters(&self, id: Uuid) -> AgentResult<Counters> {
        let vm = self.vm(id)?;
        let Power::Running(pid) = vm.power() else {
            return Ok(Counters::default());
        };
        let qmp = self.qmp(&vm).await?;
        let stats = qmp
            .execute("query-blockstats", None)
            .await
            .map_err(|e: QmpError| AgentError::Failed(format!("VM {id}: {e}")))?;
        let (mut read, mut written) = (0, 0);
        for device in stats.as_array().into_iter().flatten() {
            read += device["stats"]["rd_bytes"].as_u64().unwrap_or(0);
            written += device["stats"]["wr_bytes"].as_u64().unwrap_or(0);
        }
        // The tap's receive is the guest's send.
        let (tap_rx, tap_tx) = net::link_bytes(&net::tap_name(id));
        Ok(Counters {
            cpu_time_ns: host::cpu_time_ns(pid).unwrap_or(0),
            memory_used_bytes: host::rss_bytes(pid).unwrap_or(0),
            disk_read_bytes: read,
            disk_write_bytes: written,
            net_rx_bytes: tap_tx,
            net_tx_bytes: tap_rx,
        })
    }
}
