//! Real guests under TCG, end to end through the API: a VM launched with an SSH key boots the
//! test guest (`scripts/build-test-guest`), takes its address from the platform's DHCP, reads
//! its key and user-data from the metadata service and prints them on the serial console; the
//! host reaches it on port 22; stop powers it off by ACPI; delete leaves no QEMU behind.
//! Needs root, qemu-system-x86 and dnsmasq-base (`scripts/test` installs them).

use crate::billing::{offer, subscribe};
use crate::compute::KEY;
use crate::harness::*;
use maocloud::config::ComputeMode;
use maocloud_types::OperatorRole;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

pub fn guest_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("MAOCLOUD_TEST_GUEST_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-guest"));
    assert!(
        dir.join("vmlinuz").exists() && dir.join("initrd.img").exists(),
        "no test guest in {}: build it with scripts/build-test-guest (scripts/test does)",
        dir.display()
    );
    dir
}

/// A /16 of its own for each server, so parallel tests never share a subnet.
pub fn private_pool() -> String {
    let n = (std::process::id() as u64 ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64) % 40;
    format!("10.{}", 150 + n)
}

async fn settle(s: &TestServer, token: &str, id: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        s.run_jobs().await;
        let (_, v) = s.get(&format!("/api/v1/vms/{id}"), Some(token)).await;
        if v["state"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "the VM did not become {want}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn console_until(s: &TestServer, token: &str, id: &str, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (st, c) = s.get(&format!("/api/v1/vms/{id}/console?max=1048576"), Some(token)).await;
        assert_eq!(st, StatusCode::OK, "{c}");
        let text = c["data"].as_str().unwrap_or("").to_string();
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "the console never showed {needle:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn qemu_running_for(id: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(id) && String::from_utf8_lossy(&c).contains("qemu-system"))
            .unwrap_or(false)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_launched_through_the_api_boots_reads_its_key_and_is_reachable() {
    let guest = guest_dir();
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.compute = ComputeMode::Qemu;
        c.compute_pool = private_pool();
    })
    .await;
    let (_, hosts) = {
        let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
        s.get("/api/v1/hosts", Some(&admin.token)).await
    };
    assert_eq!(hosts[0]["accel"], "tcg", "{hosts}");
    maocloud_app::demo::register_test_guest(&s.app, &guest).await.unwrap();
    let billing = s.operator("billing@op.test", OperatorRole::Billing).await;
    let o = offer(&s, &billing.token, "cloud-s", "Cloud S", 1999, 0).await;
    let alice = s.subscriber("alice@example.test").await;
    subscribe(&s, &alice.token, &o).await;
    let t = &alice.token;
    s.post("/api/v1/ssh-keys", Some(t), json!({"name": "laptop", "public_key": KEY})).await;

    let launched = Instant::now();
    let (st, v) = s.post("/api/v1/vms", Some(t), json!({
        "name": "web-1", "image": "test-guest", "size": "xs", "ssh_keys": ["laptop"],
        "user_data": "#!/bin/sh\necho hello-from-user-data\n",
    })).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let ip = v["ip"].as_str().unwrap().to_string();
    settle(&s, t, &id, "running", Duration::from_secs(60)).await;
    let log = console_until(&s, t, &id, &format!("MAOCLOUD-GUEST: ssh-key {KEY}"), Duration::from_secs(120)).await;
    eprintln!("guest read its key {:.1} s after POST /api/v1/vms", launched.elapsed().as_secs_f64());
    assert!(log.contains(&format!("MAOCLOUD-GUEST: ip {ip}")), "the guest did not get its address from DHCP:\n{log}");
    assert!(log.contains(&format!("MAOCLOUD-GUEST: instance-id {id}")), "{log}");
    console_until(&s, t, &id, "MAOCLOUD-GUEST: user-data hello-from-user-data", Duration::from_secs(30)).await;
    console_until(&s, t, &id, "MAOCLOUD-GUEST: ready", Duration::from_secs(30)).await;

    // The host reaches the guest (routed address on the subscriber's bridge).
    let mut banner = String::new();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((ip.as_str(), 22)))
        .await
        .expect("connect in time")
        .expect("the guest's port 22 answers");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.unwrap().unwrap();
    banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    assert!(banner.starts_with("MAOCLOUD-GUEST-SSH web-1"), "{banner}");

    // Stop: ACPI power-down, seen from inside the guest.
    let (st, _) = s.post(&format!("/api/v1/vms/{id}/stop"), Some(t), json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    settle(&s, t, &id, "stopped", Duration::from_secs(60)).await;
    console_until(&s, t, &id, "MAOCLOUD-GUEST: powering off", Duration::from_secs(5)).await;
    assert!(!qemu_running_for(&id), "QEMU still runs after stop");

    // Delete: nothing of the VM is left on the host.
    let (st, _) = s.call(Method::DELETE, &format!("/api/v1/vms/{id}"), Some(t), None).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    settle(&s, t, &id, "deleted", Duration::from_secs(60)).await;
    assert!(!s.data.path().join("compute/vms").join(&id).exists(), "the VM's directory (disk, seed) is left");
    let (st, _) = s.get(&format!("/api/v1/vms/{id}/console"), Some(t)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
