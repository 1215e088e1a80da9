//! The simulated agent: the [`Agent`] API held in memory, no QEMU, no network. State changes are
//! instant, the console says `sim: booted <id>`, counters grow a little at every read. Capacity,
//! spec checks and idempotency follow the same rules as the QEMU agent ([`crate::rules`]), so the
//! control plane can be tested against hundreds of these with thousands of VMs.

use crate::rules::{self, Claim, Commitment};
use crate::{
    Accel, Agent, AgentError, AgentResult, Counters, HostReport, NetworkSpec, PowerState,
    Resources, VmSpec, VmStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// How a simulated host looks.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub hostname: String,
    pub capacity: Resources,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hostname: "sim-host".into(),
            capacity: Resources {
                vcpus: 64,
                memory_mib: 256 * 1024,
                disk_gib: 4096,
            },
        }
    }
}

pub struct SimAgent {
    config: SimConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    networks: HashMap<Uuid, NetworkSpec>,
    /// Ordered so reports are stable.
    vms: BTreeMap<Uuid, SimVm>,
}

struct SimVm {
    spec: VmSpec,
    power: PowerState,
    console: Vec<u8>,
    /// Reads of the counters since the VM started: the fake usage grows with them.
    ticks: u64,
    pid: u32,
}

impl SimAgent {
    pub fn new(config: SimConfig) -> SimAgent {
        SimAgent {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Makes a running VM crash, as a QEMU killed by the kernel would: the control plane's
    /// crash handling can be tested with it.
    pub fn crash(&self, id: Uuid) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vms.get_mut(&id).ok_or(AgentError::NoSuchVm(id))?;
        if vm.power == PowerState::Running {
            vm.power = PowerState::Crashed;
            vm.console
                .extend_from_slice(format!("sim: crashed {id}\n").as_bytes());
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn others(&self, id: Uuid) -> impl Iterator<Item = Commitment> + '_ {
        self.vms
            .iter()
            .filter(move |(other, _)| **other != id)
            .map(|(_, vm)| Commitment {
                size: vm.spec.size,
                running: vm.power == PowerState::Running,
            })
    }

    fn vm(&mut self, id: Uuid) -> AgentResult<&mut SimVm> {
        self.vms.get_mut(&id).ok_or(AgentError::NoSuchVm(id))
    }
}

impl SimVm {
    fn status(&self) -> VmStatus {
        VmStatus {
            id: self.spec.id,
            power: self.power,
            size: self.spec.size,
            pid: (self.power == PowerState::Running).then_some(self.pid),
        }
    }
}

#[async_trait::async_trait]
impl Agent for SimAgent {
    async fn report(&self) -> AgentResult<HostReport> {
        let state = self.lock();
        Ok(HostReport {
            hostname: self.config.hostname.clone(),
            accel: Accel::Sim,
            capacity: self.config.capacity,
            warnings: Vec::new(),
            vms: state.vms.values().map(SimVm::status).collect(),
        })
    }

    async fn ensure_network(&self, net: &NetworkSpec) -> AgentResult<()> {
        rules::check_network(net)?;
        self.lock().networks.insert(net.id, net.clone());
        Ok(())
    }

    async fn remove_network(&self, id: Uuid) -> AgentResult<()> {
        let mut state = self.lock();
        if let Some(vm) = state.vms.values().find(|vm| vm.spec.network.id == id) {
            return Err(AgentError::Conflict(format!(
                "network {id} is still used by VM {}",
                vm.spec.id
            )));
        }
        state.networks.remove(&id);
        Ok(())
    }

    async fn create(&self, spec: &VmSpec) -> AgentResult<()> {
        rules::check_spec(spec)?;
        let mut state = self.lock();
        if let Some(existing) = state.vms.get(&spec.id) {
            return if rules::same_vm(&existing.spec, spec) {
                Ok(())
            } else {
                Err(AgentError::Conflict(format!(
                    "VM {} exists with another spec",
                    spec.id
                )))
            };
        }
        rules::check(
            self.config.capacity,
            state.others(spec.id),
            spec.size,
            Claim::Create,
        )?;
        let pid = 1000 + state.vms.len() as u32;
        state.vms.insert(
            spec.id,
            SimVm {
                spec: spec.clone(),
                power: PowerState::Stopped,
                console: Vec::new(),
                ticks: 0,
                pid,
            },
        );
        Ok(())
    }

    async fn start(&self, id: Uuid) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power == PowerState::Running {
            return Ok(());
        }
        let (size, network) = (vm.spec.size, vm.spec.network.id);
        if !state.networks.contains_key(&network) {
            return Err(AgentError::Conflict(format!(
                "network {network} is not set up on this host (ensure_network first)"
            )));
        }
        rules::check(self.config.capacity, state.others(id), size, Claim::Start)?;
        let vm = state.vm(id)?;
        vm.power = PowerState::Running;
        vm.ticks = 0;
        vm.console
            .extend_from_slice(format!("sim: booted {id}\n").as_bytes());
        Ok(())
    }

    async fn stop(&self, id: Uuid, _grace_secs: u64) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power == PowerState::Running {
            vm.console
                .extend_from_slice(format!("sim: powered off {id}\n").as_bytes());
        }
        vm.power = PowerState::Stopped;
        Ok(())
    }

    async fn reboot(&self, id: Uuid) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power != PowerState::Running {
            return Err(AgentError::Conflict(format!("VM {id} is not running")));
        }
        vm.console
            .extend_from_slice(format!("sim: booted {id}\n").as_bytes());
        Ok(())
    }

    async fn resize(&self, id: Uuid, size: Resources) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power == PowerState::Running {
            return Err(AgentError::Conflict(format!(
                "VM {id} must be stopped to be resized"
            )));
        }
        rules::check_resize(vm.spec.size, size)?;
        rules::check(self.config.capacity, state.others(id), size, Claim::Resize)?;
        state.vm(id)?.spec.size = size;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> AgentResult<()> {
        self.lock().vms.remove(&id);
        Ok(())
    }

    async fn status(&self, id: Uuid) -> AgentResult<VmStatus> {
        Ok(self.lock().vm(id)?.status())
    }

    async fn console_read(&self, id: Uuid, offset: u64, max: usize) -> AgentResult<(Vec<u8>, u64)> {
        let mut state = self.lock();
        let log = &state.vm(id)?.console;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
        let end = start.saturating_add(max).min(log.len());
        Ok((log[start..end].to_vec(), end as u64))
    }

    async fn console_write(&self, id: Uuid, input: &[u8]) -> AgentResult<()> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power != PowerState::Running {
            return Err(AgentError::Conflict(format!("VM {id} is not running")));
        }
        vm.console.extend_from_slice(input);
        Ok(())
    }

    async fn counters(&self, id: Uuid) -> AgentResult<Counters> {
        let mut state = self.lock();
        let vm = state.vm(id)?;
        if vm.power != PowerState::Running {
            return Ok(Counters::default());
        }
        vm.ticks += 1;
        let t = vm.ticks;
        Ok(Counters {
            cpu_time_ns: t * u64::from(vm.spec.size.vcpus) * 1_000_000_000,
            memory_used_bytes: u64::from(vm.spec.size.memory_mib) << 19,
            disk_read_bytes: t << 20,
            disk_write_bytes: t << 19,
            net_rx_bytes: t << 12,
            net_tx_bytes: t << 11,
        })
    }
}
