//! Real guests under TCG: the test guest (scripts/build-test-guest) booted by the QEMU agent on
//! real bridges, with dnsmasq, nftables and a metadata server. They need root, QEMU, dnsmasq and
//! the test guest, and fail (never skip) without them. Traffic goes only to the bridges, taps
//! and addresses these tests make.

use crate::support::{self, count, has, GuestMetadata, Host};
use maocloud_hypervisor::{net, Agent, AgentError, PowerState, Resources};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(90);

/// (a) The whole life of a VM: boot with metadata and DHCP, SSH port from the host, console
/// typing, ACPI stop, resize, start again, reboot, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle() {
    let host = Host::new().await;
    let agent = host.agent();
    let (network, metadata) = host.network(vec![]).await;
    let (spec, lease) = support::guest_vm(&network, 10, "vm-one");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMaocloudTestKey test@maocloud";
    metadata.add(
        &lease.ip,
        GuestMetadata {
            instance_id: spec.id.to_string(),
            hostname: "vm-one".into(),
            ssh_key: key.into(),
            user_data: None,
        },
    );
    agent.ensure_network(&spec.network).await.unwrap();

    let t0 = Instant::now();
    agent.create(&spec).await.unwrap();
    agent.create(&spec).await.unwrap(); // idempotent
    let created = t0.elapsed();
    agent.start(spec.id).await.unwrap();
    let started = t0.elapsed();
    agent.start(spec.id).await.unwrap(); // idempotent
    support::wait_console(agent, spec.id, BOOT, "init", |log| has(log, "init")).await;
    let init = t0.elapsed();
    let log = support::wait_console(agent, spec.id, BOOT, "ready", |log| has(log, "ready")).await;
    let ready = t0.elapsed();
    eprintln!(
        "timing (TCG): create {created:?}, start returned {started:?}, \
         guest init {init:?}, guest ready {ready:?}"
    );
    assert!(
        has(&log, &format!("ip {}", lease.ip)),
        "no DHCP lease line:\n{log}"
    );
    assert!(
        has(&log, &format!("ssh-key {key}")),
        "no ssh-key line:\n{log}"
    );
    assert!(
        has(&log, &format!("instance-id {}", spec.id)),
        "no instance-id line:\n{log}"
    );
    assert!(
        has(&log, "seed vm-one"),
        "the NoCloud seed was not read:\n{log}"
    );
    assert!(has(&log, "hostname vm-one"), "{log}");

    let banner = support::ssh_banner(&lease.ip).await.unwrap();
    assert!(
        banner.starts_with("MAOCLOUD-GUEST-SSH vm-one"),
        "banner {banner:?}"
    );

    let status = agent.status(spec.id).await.unwrap();
    assert_eq!(status.power, PowerState::Running);
    let pid = status.pid.expect("a running VM has a pid");
    // QEMU is bounded by cgroups (1 vCPU: 100 % of a CPU; 256 MiB + 256 MiB of overhead),
    // unless this host has none, which the report then says.
    let report = agent.report().await.unwrap();
    match support::cgroup_limits(pid) {
        Some(limits) => assert_eq!(limits, (150_000, 512 << 20)),
        None => assert!(
            report.warnings.iter().any(|w| w.contains("not bounded")),
            "{report:?}"
        ),
    }
    let counters = agent.counters(spec.id).await.unwrap();
    assert!(
        counters.cpu_time_ns > 0 && counters.memory_used_bytes > 0,
        "{counters:?}"
    );
    assert!(
        counters.disk_read_bytes > 0,
        "the guest read its seed: {counters:?}"
    );
    assert!(
        counters.net_rx_bytes > 0 && counters.net_tx_bytes > 0,
        "{counters:?}"
    );

    // The console takes input: the shell evaluates what is typed.
    agent
        .console_write(spec.id, b"echo typed-$((6*7))\n")
        .await
        .unwrap();
    support::wait_console(
        agent,
        spec.id,
        Duration::from_secs(20),
        "typed output",
        |log| log.lines().any(|l| l.trim_end() == "typed-42"),
    )
    .await;

    // ACPI power-down: the guest powers itself off well within the grace period.
    let t = Instant::now();
    agent.stop(spec.id, 60).await.unwrap();
    eprintln!("timing (TCG): ACPI stop {:?}", t.elapsed());
    let log = support::console(agent, spec.id).await;
    assert!(
        has(&log, "powering off"),
        "the guest did not see the power button:\n{log}"
    );
    assert!(support::gone(pid), "QEMU still runs");
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Stopped
    );
    agent.stop(spec.id, 5).await.unwrap(); // idempotent
    assert!(matches!(
        agent.reboot(spec.id).await,
        Err(AgentError::Conflict(_))
    ));

    // Resize while stopped: growth is fine, a smaller disk is refused.
    let bigger = Resources {
        vcpus: 2,
        memory_mib: 320,
        disk_gib: 2,
    };
    let smaller = Resources {
        disk_gib: 1,
        ..bigger
    };
    agent.resize(spec.id, bigger).await.unwrap();
    assert!(matches!(
        agent.resize(spec.id, smaller).await,
        Err(AgentError::Invalid(_))
    ));
    let too_big = Resources {
        disk_gib: 1000,
        ..bigger
    };
    assert!(matches!(
        agent.resize(spec.id, too_big).await,
        Err(AgentError::Capacity(_))
    ));

    // Start again, then reboot: `init` twice more in the (appended) log.
    agent.start(spec.id).await.unwrap();
    assert!(matches!(
        agent.resize(spec.id, bigger).await,
        Err(AgentError::Conflict(_))
    ));
    support::wait_console(agent, spec.id, BOOT, "second init", |log| {
        count(log, "init") == 2
    })
    .await;
    let status = agent.status(spec.id).await.unwrap();
    assert_eq!(status.size, bigger);
    support::wait_console(agent, spec.id, BOOT, "ready", |log| {
        count(log, "ready") == 2
    })
    .await;
    agent.reboot(spec.id).await.unwrap();
    support::wait_console(agent, spec.id, BOOT, "third init", |log| {
        count(log, "init") == 3
    })
    .await;

    // The guest powers itself off: a stop, not a crash.
    support::wait_console(agent, spec.id, BOOT, "ready", |log| {
        count(log, "ready") == 3
    })
    .await;
    agent
        .console_write(spec.id, b"poweroff -f\n")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.status(spec.id).await.unwrap().power == PowerState::Running {
        assert!(Instant::now() < deadline, "the guest did not power off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Stopped
    );
    assert!(agent
        .report()
        .await
        .unwrap()
        .warnings
        .iter()
        .all(|w| !w.contains("crashed")));
    agent.start(spec.id).await.unwrap();
    support::wait_console(agent, spec.id, BOOT, "fourth init", |log| {
        count(log, "init") == 4
    })
    .await;

    // Delete (a running VM): QEMU, tap and directory gone; deleting again is fine.
    let dir = agent.vm_dir(spec.id);
    let pid = agent.status(spec.id).await.unwrap().pid.unwrap();
    agent.delete(spec.id).await.unwrap();
    assert!(!dir.exists());
    assert!(!net::link_exists(&net::tap_name(spec.id)));
    assert!(support::gone(pid), "QEMU still runs");
    assert!(matches!(
        agent.status(spec.id).await,
        Err(AgentError::NoSuchVm(_))
    ));
    agent.delete(spec.id).await.unwrap();

    agent.remove_network(network.id).await.unwrap();
    assert!(!net::link_exists(&net::bridge_name(network.id)));
}

/// (b) Two subscribers' networks on one host: a guest of A reaches neither B's guest nor B's
/// gateway, while it reaches its own metadata; the host reaches both guests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation() {
    let host = Host::new().await;
    // With forwarding off the host routes nothing anyway: turn it on so that only the agent's
    // rules stand between the two networks.
    let _forwarding = support::Forwarding::on();
    let agent = host.agent();
    let (net_a, metadata_a) = host.network(vec![]).await;
    let (net_b, metadata_b) = host.network(vec![]).await;
    let (vm_b, lease_b) = support::guest_vm(&net_b, 20, "vm-b");
    metadata_b.add(
        &lease_b.ip,
        GuestMetadata {
            instance_id: vm_b.id.to_string(),
            hostname: "vm-b".into(),
            ..Default::default()
        },
    );
    agent.ensure_network(&vm_b.network).await.unwrap();
    agent.create(&vm_b).await.unwrap();
    agent.start(vm_b.id).await.unwrap();

    let (vm_a, lease_a) = support::guest_vm(&net_a, 10, "vm-a");
    let b_gateway = metadata_b.address;
    let script = r#"#!/bin/sh
try() {
    if nc -w 3 "$2" "$3" </dev/null >/dev/null 2>&1; then echo "$1 reached"; else echo "$1 blocked"; fi
}
try b-ssh B_IP 22
try b-http B_IP 80
try b-gateway B_GATEWAY B_PORT
if timeout 5 wget -q -O /tmp/id http://169.254.169.254/latest/meta-data/instance-id; then
    echo own-metadata reached
else
    echo own-metadata blocked
fi
"#
    .replace("B_IP", &lease_b.ip)
    .replace("B_GATEWAY", &b_gateway.ip().to_string())
    .replace("B_PORT", &b_gateway.port().to_string());
    metadata_a.add(
        &lease_a.ip,
        GuestMetadata {
            instance_id: vm_a.id.to_string(),
            hostname: "vm-a".into(),
            user_data: Some(script),
            ..Default::default()
        },
    );
    agent.ensure_network(&vm_a.network).await.unwrap();
    agent.create(&vm_a).await.unwrap();
    // B must be up before A probes it, or "blocked" would prove nothing.
    support::wait_console(agent, vm_b.id, BOOT, "ready", |log| has(log, "ready")).await;
    assert!(support::ssh_banner(&lease_b.ip)
        .await
        .unwrap()
        .starts_with("MAOCLOUD-GUEST-SSH vm-b"));
    agent.start(vm_a.id).await.unwrap();
    let log = support::wait_console(agent, vm_a.id, BOOT, "ready", |log| has(log, "ready")).await;
    for line in [
        "b-ssh blocked",
        "b-http blocked",
        "b-gateway blocked",
        "own-metadata reached",
    ] {
        assert!(
            has(&log, &format!("user-data {line}")),
            "expected `{line}`:\n{log}"
        );
    }
    assert!(support::ssh_banner(&lease_a.ip)
        .await
        .unwrap()
        .starts_with("MAOCLOUD-GUEST-SSH vm-a"));
    assert!(support::ssh_banner(&lease_b.ip)
        .await
        .unwrap()
        .starts_with("MAOCLOUD-GUEST-SSH vm-b"));

    // A network in use cannot be removed.
    assert!(matches!(
        agent.remove_network(net_a.id).await,
        Err(AgentError::Conflict(_))
    ));
}

/// (c) The agent restarts: the VM keeps running (same QEMU), the new agent drives it over QMP,
/// and a QEMU killed behind its back is reported Crashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart() {
    let mut host = Host::new().await;
    let (network, metadata) = host.network(vec![]).await;
    let (spec, lease) = support::guest_vm(&network, 30, "vm-c");
    metadata.add(
        &lease.ip,
        GuestMetadata {
            instance_id: spec.id.to_string(),
            hostname: "vm-c".into(),
            ..Default::default()
        },
    );
    host.agent().ensure_network(&spec.network).await.unwrap();
    host.agent().create(&spec).await.unwrap();
    host.agent().start(spec.id).await.unwrap();
    support::wait_console(host.agent(), spec.id, BOOT, "init", |log| has(log, "init")).await;
    let pid = host.agent().status(spec.id).await.unwrap().pid.unwrap();

    host.restart().await;
    let agent = host.agent();
    let status = agent.status(spec.id).await.unwrap();
    assert_eq!((status.power, status.pid), (PowerState::Running, Some(pid)));
    agent.reboot(spec.id).await.unwrap();
    support::wait_console(agent, spec.id, BOOT, "second init", |log| {
        count(log, "init") == 2
    })
    .await;
    assert_eq!(agent.status(spec.id).await.unwrap().pid, Some(pid));

    // The bridge and its dnsmasq vanish behind the agent's back: the report says so, and
    // ensure_network mends it all, the running guest's tap included.
    support::wait_console(agent, spec.id, BOOT, "ready", support::booted).await;
    let bridge = net::bridge_name(network.id);
    let dnsmasq = host
        .state
        .path()
        .join(format!("nets/{}/dnsmasq.pid", network.id));
    let dnsmasq = std::fs::read_to_string(dnsmasq).unwrap();
    std::process::Command::new("kill")
        .arg(dnsmasq.trim())
        .status()
        .unwrap();
    std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .status()
        .unwrap();
    let warnings = agent.report().await.unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("is missing")),
        "{warnings:?}"
    );
    agent.ensure_network(&spec.network).await.unwrap();
    let warnings = agent.report().await.unwrap().warnings;
    assert!(
        warnings.iter().all(|w| !w.contains("network")),
        "{warnings:?}"
    );
    let banner = support::ssh_banner(&lease.ip).await.unwrap();
    assert!(banner.starts_with("MAOCLOUD-GUEST-SSH vm-c"), "{banner:?}");

    // SIGKILL: QEMU leaves its pid file behind, so this is a crash, not a stop.
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = agent.status(spec.id).await.unwrap();
        if status.power == PowerState::Crashed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a killed QEMU is still {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = agent.report().await.unwrap();
    assert!(report
        .vms
        .iter()
        .any(|vm| vm.id == spec.id && vm.power == PowerState::Crashed));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains(&spec.id.to_string())),
        "{:?}",
        report.warnings
    );

    // A crashed VM starts again.
    agent.start(spec.id).await.unwrap();
    assert_eq!(
        agent.status(spec.id).await.unwrap().power,
        PowerState::Running
    );
    agent.delete(spec.id).await.unwrap();
}

/// KVM is used only when a probe guest runs under it, and probing takes a few seconds at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accelerator_probe_is_bounded() {
    support::require_host();
    let state = tempfile::tempdir().unwrap();
    let mut config = maocloud_hypervisor::qemu::QemuConfig::new(state.path());
    config.capacity = Some(Resources {
        vcpus: 1,
        memory_mib: 512,
        disk_gib: 1,
    });
    let t = Instant::now();
    let agent = maocloud_hypervisor::qemu::QemuAgent::open(config)
        .await
        .unwrap();
    let elapsed = t.elapsed();
    let report = agent.report().await.unwrap();
    eprintln!(
        "accelerator {:?} chosen in {elapsed:?}; warnings {:?}",
        report.accel, report.warnings
    );
    assert!(elapsed < Duration::from_secs(8), "probing took {elapsed:?}");
    if report.accel == maocloud_hypervisor::Accel::Tcg && std::path::Path::new("/dev/kvm").exists()
    {
        assert!(report
            .warnings
            .iter()
            .any(|w| w.starts_with("KVM present but a probe guest did not run")));
    }
}

/// A VM of a disk image gets a qcow2 overlay on it (the base is never written), no smaller than
/// the image, grown by a resize.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_images_get_an_overlay() {
    let host = Host::new().await;
    let agent = host.agent();
    let base = host.state.path().join("base.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("2G")
        .status()
        .unwrap();
    assert!(made.success());
    let network = maocloud_hypervisor::NetworkSpec {
        id: uuid::Uuid::now_v7(),
        cidr: "10.99.0.0/24".into(),
        gateway: "10.99.0.1".into(),
        metadata_to: "10.99.0.1:8775".into(),
        leases: vec![],
    };
    let (mut spec, _) = support::guest_vm(&network, 10, "disky");
    spec.image = maocloud_hypervisor::ImageRef {
        disk: Some(base.clone()),
        disk_format: None,
        kernel: None,
        initrd: None,
        cmdline: None,
    };
    spec.size.disk_gib = 1;
    assert!(matches!(
        agent.create(&spec).await,
        Err(AgentError::Invalid(_))
    ));
    spec.size.disk_gib = 3;
    agent.create(&spec).await.unwrap();
    let info = |path: &std::path::Path| {
        let out = std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(path)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let disk = agent.vm_dir(spec.id).join("disk.qcow2");
    let overlay = info(&disk);
    assert_eq!(overlay["backing-filename"], base.display().to_string());
    assert_eq!(overlay["backing-filename-format"], "qcow2");
    assert_eq!(overlay["virtual-size"], 3u64 << 30);
    agent
        .resize(
            spec.id,
            Resources {
                disk_gib: 4,
                ..spec.size
            },
        )
        .await
        .unwrap();
    assert_eq!(info(&disk)["virtual-size"], 4u64 << 30);
    assert_eq!(info(&base)["virtual-size"], 2u64 << 30);
    agent.delete(spec.id).await.unwrap();
    assert!(base.exists());
}
