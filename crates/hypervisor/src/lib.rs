//! The host side of compute: the typed command API every hypervisor agent answers ([`Agent`]),
//! the QEMU driver that runs real guests ([`qemu::QemuAgent`]), the per-subscriber network it
//! plugs them into ([`net`]), and a simulated agent ([`sim::SimAgent`]) that answers the same
//! API without QEMU so the control plane can be tested with many hosts. Both apply the same
//! [`rules`] (capacity, spec checks, idempotent create), so the simulation refuses what a real
//! host refuses. Inside: the QMP client (`qmp`), cgroup limits (`cgroup`), the NoCloud seed
//! (`seed`), and what is read from or run on the host (`host`, with the KVM probe).
//!
//! This crate knows nothing of subscribers, prices or the database: the control plane decides,
//! an agent carries out. Every command is idempotent, so the control plane can retry any of them
//! after a crash without asking what was already done.

mod cgroup;
mod host;
pub mod net;
pub mod qemu;
mod qmp;
pub mod rules;
mod seed;
pub mod sim;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use uuid::Uuid;

/// What can go wrong on a host.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent does not know this VM (never created, or deleted).
    #[error("no such VM on this host: {0}")]
    NoSuchVm(Uuid),
    /// The command does not apply in the VM's current state (e.g. reboot a stopped VM).
    #[error("{0}")]
    Conflict(String),
    /// The host lacks the capacity asked for.
    #[error("not enough capacity on this host: {0}")]
    Capacity(String),
    /// A bad request that the control plane should have refused (bad path, bad image…).
    #[error("{0}")]
    Invalid(String),
    /// QEMU, the network or the disk failed.
    #[error("{0}")]
    Failed(String),
}

pub type AgentResult<T> = std::result::Result<T, AgentError>;

/// Resources: what a host offers and what a VM uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
}

/// How guests' CPUs are run on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation, used only when a probe guest really ran under it.
    Kvm,
    /// Software emulation.
    Tcg,
    /// The simulated agent: no guest runs.
    Sim,
}

/// The network a VM is plugged into: one per subscriber on a host (R-… isolation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Stable id of the network (the control plane's), used to name the bridge.
    pub id: Uuid,
    /// The subnet's first three octets' /24: e.g. `10.213.7.0/24`; the host takes `.1`.
    pub cidr: String,
    /// The host's address on the bridge (gateway, DHCP server), e.g. `10.213.7.1`.
    pub gateway: String,
    /// Where the guests' metadata requests to 169.254.169.254:80 are sent (DNAT), e.g.
    /// `10.213.7.1:8775` or the control plane's metadata listener.
    pub metadata_to: String,
    /// Static DHCP leases: MAC → address, for every VM on this network.
    pub leases: Vec<Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
    pub hostname: String,
}

/// The boot source: a disk image (qcow2/raw, booted by firmware) and, for small test guests, a
/// kernel and initramfs booted directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The base disk on this host; a VM's disk is a qcow2 overlay on it.
    pub disk: Option<PathBuf>,
    pub disk_format: Option<String>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// The cloud-init NoCloud seed (also served by the metadata service).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Seed {
    pub instance_id: String,
    pub hostname: String,
    pub ssh_keys: Vec<String>,
    pub user_data: Option<String>,
}

/// Everything a host needs to create a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSpec {
    pub id: Uuid,
    pub size: Resources,
    pub image: ImageRef,
    pub mac: String,
    pub network: NetworkSpec,
    pub seed: Seed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    Running,
    Stopped,
    /// The QEMU process died without being asked to.
    Crashed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStatus {
    pub id: Uuid,
    pub power: PowerState,
    pub size: Resources,
    /// The QEMU process, when running.
    pub pid: Option<u32>,
}

/// Counters sampled for monitoring and metering: cumulative since the VM started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub cpu_time_ns: u64,
    pub memory_used_bytes: u64,
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
}

/// What an agent says about its host: sent at registration and with every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    pub hostname: String,
    pub accel: Accel,
    /// What guests may use in all.
    pub capacity: Resources,
    /// Warnings for the operator (e.g. "KVM present but a probe guest hung: running under TCG").
    pub warnings: Vec<String>,
    pub vms: Vec<VmStatus>,
}

/// The typed command API of a hypervisor host. Every command is idempotent: creating a VM that
/// exists with the same spec, starting a running VM, deleting a deleted VM all succeed.
#[async_trait::async_trait]
pub trait Agent: Send + Sync {
    /// The host: capacity, accelerator, warnings, and every VM it has.
    async fn report(&self) -> AgentResult<HostReport>;
    /// Creates (or re-creates, unchanged) the bridge, DHCP leases and isolation rules of a network.
    async fn ensure_network(&self, net: &NetworkSpec) -> AgentResult<()>;
    /// Removes a network that no VM uses any more.
    async fn remove_network(&self, id: Uuid) -> AgentResult<()>;
    /// Prepares a VM: its disk (an overlay of the image, grown to the size) and its seed. Does
    /// not start it.
    async fn create(&self, spec: &VmSpec) -> AgentResult<()>;
    /// Starts QEMU for a created VM. Running already: Ok.
    async fn start(&self, id: Uuid) -> AgentResult<()>;
    /// ACPI power-down, then forced off after `grace_secs`. Stopped already: Ok.
    async fn stop(&self, id: Uuid, grace_secs: u64) -> AgentResult<()>;
    /// Resets a running VM.
    async fn reboot(&self, id: Uuid) -> AgentResult<()>;
    /// Grows a stopped VM's vCPUs, memory and disk; takes effect at the next start.
    async fn resize(&self, id: Uuid, size: Resources) -> AgentResult<()>;
    /// Stops the VM if needed and removes everything it has on this host. Absent: Ok.
    async fn delete(&self, id: Uuid) -> AgentResult<()>;
    async fn status(&self, id: Uuid) -> AgentResult<VmStatus>;
    /// The serial console output from byte `offset` (the whole boot log is kept, across
    /// restarts of the VM), at most `max` bytes; returns the bytes and the next offset.
    async fn console_read(&self, id: Uuid, offset: u64, max: usize) -> AgentResult<(Vec<u8>, u64)>;
    /// Types into the serial console.
    async fn console_write(&self, id: Uuid, input: &[u8]) -> AgentResult<()>;
    async fn counters(&self, id: Uuid) -> AgentResult<Counters>;
}
