//! The rules every agent applies alike, so the simulated agent refuses exactly what the QEMU one
//! refuses: capacity accounting (R-3.2: can this host take a VM being created, started or
//! resized?), the checks on a VM's spec, and when a repeated `create` is the same VM.
//!
//! Disk is committed from creation to deletion (the overlay exists even when the VM is off);
//! vCPUs and memory are committed while the VM runs. A VM must always fit the whole host on its
//! own, so one that could never start is refused at creation.

use crate::{AgentError, AgentResult, Resources, VmSpec};
use std::net::Ipv4Addr;

/// What is asked of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new VM: its disk is taken now, its vCPUs and memory when it starts.
    Create,
    /// A created VM starts: its vCPUs and memory are taken.
    Start,
    /// A stopped VM changes size: its disk is taken now, the rest at the next start.
    Resize,
}

/// Another VM on the host, as the accounting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment {
    pub size: Resources,
    /// Whether its QEMU runs (its vCPUs and memory are taken).
    pub running: bool,
}

/// Checks that `wanted` fits `capacity` next to `others` (every other VM of the host, not the
/// one being changed), for `claim`.
pub fn check(
    capacity: Resources,
    others: impl IntoIterator<Item = Commitment>,
    wanted: Resources,
    claim: Claim,
) -> AgentResult<()> {
    if wanted.vcpus == 0 || wanted.memory_mib == 0 {
        return Err(AgentError::Invalid(
            "a VM needs at least one vCPU and some memory".into(),
        ));
    }
    let mut disk = 0u64;
    let mut vcpus = 0u64;
    let mut memory = 0u64;
    for other in others {
        disk += u64::from(other.size.disk_gib);
        if other.running {
            vcpus += u64::from(other.size.vcpus);
            memory += u64::from(other.size.memory_mib);
        }
    }
    let too_big = |what: &str, asked: u32, free: u64, total: u32| {
        AgentError::Capacity(format!("{what}: {asked} asked, {free} free of {total}"))
    };
    // On its own, the VM must fit the host.
    if wanted.vcpus > capacity.vcpus {
        return Err(too_big(
            "vCPUs",
            wanted.vcpus,
            capacity.vcpus.into(),
            capacity.vcpus,
        ));
    }
    if wanted.memory_mib > capacity.memory_mib {
        let total = capacity.memory_mib;
        return Err(too_big(
            "memory MiB",
            wanted.memory_mib,
            total.into(),
            total,
        ));
    }
    match claim {
        Claim::Create | Claim::Resize => {
            let free = u64::from(capacity.disk_gib).saturating_sub(disk);
            if u64::from(wanted.disk_gib) > free {
                return Err(too_big(
                    "disk GiB",
                    wanted.disk_gib,
                    free,
                    capacity.disk_gib,
                ));
            }
        }
        Claim::Start => {
            let free = u64::from(capacity.vcpus).saturating_sub(vcpus);
            if u64::from(wanted.vcpus) > free {
                return Err(too_big("vCPUs", wanted.vcpus, free, capacity.vcpus));
            }
            let free = u64::from(capacity.memory_mib).saturating_sub(memory);
            if u64::from(wanted.memory_mib) > free {
                return Err(too_big(
                    "memory MiB",
                    wanted.memory_mib,
                    free,
                    capacity.memory_mib,
                ));
            }
        }
    }
    Ok(())
}

/// Whether `asked` is the VM `existing` again, so `create` may succeed without doing anything.
/// The network's lease list is left out: it grows as the subscriber adds VMs, and the VM's own
/// lease is carried by `ensure_network`, not by the VM. The size is left out too: a resize
/// changes it after creation.
pub fn same_vm(existing: &VmSpec, asked: &VmSpec) -> bool {
    let strip = |spec: &VmSpec| {
        let mut spec = spec.clone();
        spec.network.leases.clear();
        // Where metadata requests go is the network's (ensure_network applies a change), not
        // the VM's: a control plane restarted on another metadata port re-creates the same VM.
        spec.network.metadata_to.clear();
        spec.size = Resources::default();
        spec
    };
    strip(existing) == strip(asked)
}

/// Refuses a resize that would shrink the disk (a filesystem cannot be cut from outside).
pub fn check_resize(current: Resources, wanted: Resources) -> AgentResult<()> {
    if wanted.disk_gib < current.disk_gib {
        return Err(AgentError::Invalid(format!(
            "the disk cannot shrink ({} GiB to {} GiB)",
            current.disk_gib, wanted.disk_gib
        )));
    }
    Ok(())
}

/// Checks what an agent relies on in a spec: a size, a boot source, a MAC, a /N subnet holding
/// the gateway, and a hostname usable in DHCP and the seed.
pub fn check_spec(spec: &VmSpec) -> AgentResult<()> {
    let invalid = |m: String| Err(AgentError::Invalid(m));
    let size = spec.size;
    if size.vcpus == 0 || size.memory_mib == 0 || size.disk_gib == 0 {
        return invalid(format!("a VM needs vCPUs, memory and disk: {size:?}"));
    }
    if spec.image.disk.is_none() && spec.image.kernel.is_none() {
        return invalid("the image has neither a disk nor a kernel".into());
    }
    if spec.image.initrd.is_some() && spec.image.kernel.is_none() {
        return invalid("the image has an initrd but no kernel".into());
    }
    for path in [&spec.image.disk, &spec.image.kernel, &spec.image.initrd]
        .into_iter()
        .flatten()
    {
        if !path.is_absolute() {
            return invalid(format!("image paths must be absolute: {}", path.display()));
        }
    }
    parse_mac(&spec.mac)?;
    check_network(&spec.network)?;
    check_hostname(&spec.seed.hostname)?;
    Ok(())
}

/// Checks a network: `cidr` is `a.b.c.d/N`, the gateway lies in it, leases are well-formed.
pub fn check_network(net: &crate::NetworkSpec) -> AgentResult<()> {
    let (addr, prefix) = parse_cidr(&net.cidr)?;
    let gateway: Ipv4Addr = net
        .gateway
        .parse()
        .map_err(|_| AgentError::Invalid(format!("bad gateway address {:?}", net.gateway)))?;
    if !in_subnet(gateway, addr, prefix) {
        return Err(AgentError::Invalid(format!(
            "gateway {gateway} is not in {}",
            net.cidr
        )));
    }
    parse_socket(&net.metadata_to)?;
    for lease in &net.leases {
        parse_mac(&lease.mac)?;
        let ip: Ipv4Addr = lease
            .ip
            .parse()
            .map_err(|_| AgentError::Invalid(format!("bad lease address {:?}", lease.ip)))?;
        if !in_subnet(ip, addr, prefix) || ip == gateway {
            return Err(AgentError::Invalid(format!(
                "lease {ip} is not a guest address of {}",
                net.cidr
            )));
        }
        check_hostname(&lease.hostname)?;
    }
    Ok(())
}

/// `a.b.c.d/N` → (network address, N), with the host bits cleared.
pub fn parse_cidr(cidr: &str) -> AgentResult<(Ipv4Addr, u8)> {
    let bad = || AgentError::Invalid(format!("bad subnet {cidr:?} (want a.b.c.d/N, N in 8..=30)"));
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&prefix) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - prefix);
    Ok((Ipv4Addr::from(u32::from(addr) & mask), prefix))
}

pub fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - prefix);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// `a.b.c.d:port`.
pub fn parse_socket(s: &str) -> AgentResult<std::net::SocketAddrV4> {
    s.parse()
        .map_err(|_| AgentError::Invalid(format!("bad address {s:?} (want a.b.c.d:port)")))
}

/// `52:54:00:12:34:56`: six hex pairs, unicast.
pub fn parse_mac(mac: &str) -> AgentResult<[u8; 6]> {
    let bad = || AgentError::Invalid(format!("bad MAC address {mac:?}"));
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for byte in &mut out {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() || out[0] & 1 == 1 {
        return Err(bad());
    }
    Ok(out)
}

/// A DNS label: 1..=63 of `[a-zA-Z0-9-]`, not starting or ending with `-`.
pub fn check_hostname(name: &str) -> AgentResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AgentError::Invalid(format!("bad hostname {name:?}")))
    }
}
