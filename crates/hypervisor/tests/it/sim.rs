//! The simulated agent and the rules it shares with the QEMU agent: capacity on create, start
//! and resize, idempotent commands, state changes, console and counters, crashes.

use maocloud_hypervisor::rules::{self, Claim, Commitment};
use maocloud_hypervisor::sim::{SimAgent, SimConfig};
use maocloud_hypervisor::{
    Accel, Agent, AgentError, ImageRef, Lease, NetworkSpec, PowerState, Resources, Seed, VmSpec,
};
use std::path::PathBuf;
use uuid::Uuid;

fn network() -> NetworkSpec {
    NetworkSpec {
        id: Uuid::now_v7(),
        cidr: "10.20.30.0/24".into(),
        gateway: "10.20.30.1".into(),
        metadata_to: "10.20.30.1:8775".into(),
        leases: vec![],
    }
}

fn vm(network: &NetworkSpec, size: Resources) -> VmSpec {
    let id = Uuid::now_v7();
    VmSpec {
        id,
        size,
        image: ImageRef {
            disk: Some(PathBuf::from("/var/lib/maocloud/images/debian-12.qcow2")),
            disk_format: Some("qcow2".into()),
            kernel: None,
            initrd: None,
            cmdline: None,
        },
        mac: "52:54:00:aa:bb:cc".into(),
        network: network.clone(),
        seed: Seed {
            instance_id: id.to_string(),
            hostname: "web-1".into(),
            ssh_keys: vec![],
            user_data: None,
        },
    }
}

fn size(vcpus: u32, memory_mib: u32, disk_gib: u32) -> Resources {
    Resources {
        vcpus,
        memory_mib,
        disk_gib,
    }
}

fn agent(capacity: Resources) -> SimAgent {
    SimAgent::new(SimConfig {
        hostname: "sim-1".into(),
        capacity,
    })
}

#[tokio::test]
async fn lifecycle_console_and_counters() {
    let agent = agent(size(8, 8192, 100));
    let net = network();
    agent.ensure_network(&net).await.unwrap();
    let spec = vm(&net, size(2, 2048, 20));
    agent.create(&spec).await.unwrap();
    agent.create(&spec).await.unwrap();
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Stopped
    );
    assert_eq!(agent.counters(spec.id).await.unwrap(), Default::default());

    agent.start(spec.id).await.unwrap();
    agent.start(spec.id).await.unwrap();
    let status = agent.status(spec.id).await.unwrap();
    assert_eq!(status.power, PowerState::Running);
    assert!(status.pid.is_some());
    let (log, next) = agent.console_read(spec.id, 0, 4096).await.unwrap();
    assert_eq!(
        String::from_utf8(log).unwrap(),
        format!("sim: booted {}\n", spec.id)
    );
    let (rest, after) = agent.console_read(spec.id, next, 4096).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(after, next);
    agent.console_write(spec.id, b"hello\n").await.unwrap();
    let (typed, _) = agent.console_read(spec.id, next, 3).await.unwrap();
    assert_eq!(typed, b"hel");

    let first = agent.counters(spec.id).await.unwrap();
    let second = agent.counters(spec.id).await.unwrap();
    assert!(second.cpu_time_ns > first.cpu_time_ns && second.net_rx_bytes > first.net_rx_bytes);

    agent.reboot(spec.id).await.unwrap();
    agent.stop(spec.id, 30).await.unwrap();
    agent.stop(spec.id, 30).await.unwrap();
    assert!(matches!(
        agent.reboot(spec.id).await,
        Err(AgentError::Conflict(_))
    ));
    assert!(matches!(
        agent.console_write(spec.id, b"x").await,
        Err(AgentError::Conflict(_))
    ));

    let report = agent.report().await.unwrap();
    assert_eq!(report.accel, Accel::Sim);
    assert_eq!(report.hostname, "sim-1");
    assert_eq!(report.vms.len(), 1);

    assert!(matches!(
        agent.remove_network(net.id).await,
        Err(AgentError::Conflict(_))
    ));
    agent.delete(spec.id).await.unwrap();
    agent.delete(spec.id).await.unwrap();
    assert!(matches!(
        agent.status(spec.id).await,
        Err(AgentError::NoSuchVm(_))
    ));
    agent.remove_network(net.id).await.unwrap();
}

#[tokio::test]
async fn create_is_idempotent_but_not_a_replace() {
    let agent = agent(size(8, 8192, 100));
    let net = network();
    let spec = vm(&net, size(1, 512, 10));
    agent.create(&spec).await.unwrap();
    // The lease list grows as the subscriber adds VMs: still the same VM.
    let mut later = spec.clone();
    later.network.leases.push(Lease {
        mac: spec.mac.clone(),
        ip: "10.20.30.10".into(),
        hostname: "web-1".into(),
    });
    agent.create(&later).await.unwrap();
    let mut other = spec.clone();
    other.seed.hostname = "web-2".into();
    assert!(matches!(
        agent.create(&other).await,
        Err(AgentError::Conflict(_))
    ));
}

#[tokio::test]
async fn capacity_is_enforced_on_create_start_and_resize() {
    let agent = agent(size(4, 4096, 50));
    let net = network();
    agent.ensure_network(&net).await.unwrap();

    // Disk is taken at creation.
    let a = vm(&net, size(2, 2048, 30));
    agent.create(&a).await.unwrap();
    let too_much_disk = vm(&net, size(1, 512, 21));
    assert!(matches!(
        agent.create(&too_much_disk).await,
        Err(AgentError::Capacity(_))
    ));
    // A VM bigger than the host never fits.
    let huge = vm(&net, size(5, 512, 1));
    assert!(matches!(
        agent.create(&huge).await,
        Err(AgentError::Capacity(_))
    ));

    // vCPUs and memory are taken at start.
    let b = vm(&net, size(2, 2048, 10));
    let c = vm(&net, size(1, 1024, 10));
    agent.create(&b).await.unwrap();
    agent.create(&c).await.unwrap();
    agent.start(a.id).await.unwrap();
    agent.start(b.id).await.unwrap();
    assert!(matches!(
        agent.start(c.id).await,
        Err(AgentError::Capacity(_))
    ));
    agent.stop(b.id, 0).await.unwrap();
    agent.start(c.id).await.unwrap();

    // Resize: stopped only, the disk only grows, within capacity.
    assert!(matches!(
        agent.resize(a.id, size(2, 2048, 40)).await,
        Err(AgentError::Conflict(_))
    ));
    assert!(matches!(
        agent.resize(b.id, size(2, 2048, 5)).await,
        Err(AgentError::Invalid(_))
    ));
    assert!(matches!(
        agent.resize(b.id, size(2, 2048, 11)).await,
        Err(AgentError::Capacity(_))
    ));
    agent.resize(b.id, size(1, 1024, 10)).await.unwrap();
    assert_eq!(agent.status(b.id).await.unwrap().size, size(1, 1024, 10));
    // Now b fits next to a and c.
    agent.start(b.id).await.unwrap();
}

#[tokio::test]
async fn start_needs_the_network_and_bad_specs_are_refused() {
    let agent = agent(size(4, 4096, 50));
    let net = network();
    let spec = vm(&net, size(1, 512, 5));
    agent.create(&spec).await.unwrap();
    assert!(matches!(
        agent.start(spec.id).await,
        Err(AgentError::Conflict(_))
    ));
    agent.ensure_network(&net).await.unwrap();
    agent.start(spec.id).await.unwrap();

    let mut bad = vm(&net, size(1, 512, 5));
    bad.mac = "01:00:5e:00:00:01".into(); // multicast
    assert!(matches!(
        agent.create(&bad).await,
        Err(AgentError::Invalid(_))
    ));
    let mut bad = vm(&net, size(1, 512, 5));
    bad.image = ImageRef {
        disk: None,
        disk_format: None,
        kernel: None,
        initrd: None,
        cmdline: None,
    };
    assert!(matches!(
        agent.create(&bad).await,
        Err(AgentError::Invalid(_))
    ));
    let mut bad = vm(&net, size(1, 512, 5));
    bad.network.gateway = "10.99.0.1".into();
    assert!(matches!(
        agent.create(&bad).await,
        Err(AgentError::Invalid(_))
    ));
    assert!(matches!(
        agent.status(Uuid::now_v7()).await,
        Err(AgentError::NoSuchVm(_))
    ));
}

#[tokio::test]
async fn a_crash_is_reported_and_the_vm_starts_again() {
    let agent = agent(size(4, 4096, 50));
    let net = network();
    agent.ensure_network(&net).await.unwrap();
    let spec = vm(&net, size(1, 512, 5));
    agent.create(&spec).await.unwrap();
    agent.start(spec.id).await.unwrap();
    agent.crash(spec.id).unwrap();
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Crashed
    );
    agent.start(spec.id).await.unwrap();
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Running
    );
}

/// The control plane runs many simulated hosts with thousands of VMs: that must stay cheap.
#[tokio::test]
async fn thousands_of_vms_are_cheap() {
    let agent = agent(size(100_000, 100_000_000, 1_000_000));
    let net = network();
    agent.ensure_network(&net).await.unwrap();
    let started = std::time::Instant::now();
    for _ in 0..2000 {
        let spec = vm(&net, size(1, 512, 5));
        agent.create(&spec).await.unwrap();
        agent.start(spec.id).await.unwrap();
    }
    assert_eq!(agent.report().await.unwrap().vms.len(), 2000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_capacity_rule() {
    let cap = size(4, 4096, 100);
    let running = |vcpus, mem, disk| Commitment {
        size: size(vcpus, mem, disk),
        running: true,
    };
    let stopped = |vcpus, mem, disk| Commitment {
        size: size(vcpus, mem, disk),
        running: false,
    };
    // Stopped VMs hold disk, not CPU or memory.
    let others = [stopped(4, 4096, 50), running(2, 1024, 10)];
    rules::check(cap, others, size(2, 3072, 40), Claim::Start).unwrap();
    rules::check(cap, others, size(2, 3072, 40), Claim::Create).unwrap();
    assert!(rules::check(cap, others, size(2, 3072, 41), Claim::Create).is_err());
    assert!(rules::check(cap, others, size(3, 1024, 1), Claim::Start).is_err());
    assert!(rules::check(cap, others, size(1, 3073, 1), Claim::Start).is_err());
    assert!(rules::check(cap, [], size(0, 1, 1), Claim::Create).is_err());
    assert!(rules::check_resize(size(1, 1, 10), size(1, 1, 9)).is_err());
    rules::check_resize(size(2, 2, 10), size(1, 1, 10)).unwrap();
}

#[test]
fn names_fit_the_kernel_limit_and_use_the_random_end_of_uuids() {
    use maocloud_hypervisor::net::{bridge_name, tap_name};
    let a: Uuid = "0190f5c4-1a2b-7000-8000-aabbccddeeff".parse().unwrap();
    let b: Uuid = "0190f5c4-1a2b-7000-8000-112233445566".parse().unwrap();
    assert_eq!(tap_name(a), "mctaabbccddeeff");
    assert_eq!(bridge_name(b), "mcb112233445566");
    assert!(tap_name(a).len() <= 15);
    assert_ne!(tap_name(a), tap_name(b));
}
