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
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-guest")
        });
    assert!(
        dir.join("vmlinuz").exists() && dir.join("initrd.img").exists(),
        "no test guest in {}: build it with scripts/build-test-guest (scripts/test does)",
        dir.display()
    );
    dir
}

/// A /16 of its own for each server, so parallel tests never share a subnet: one per call in
/// this process (10.150 to 10.189).
pub fn private_pool() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 40;
    format!("10.{}", 150 + n)
}

/// The test guest as image `test-guest`, and a subscriber on an offer with the key `laptop`.
async fn guest_and_subscriber(s: &TestServer, guest: &std::path::Path) -> Subscriber {
    maocloud_app::demo::register_test_guest(&s.app, guest)
        .await
        .unwrap();
    let billing = s.operator("billing@op.test", OperatorRole::Billing).await;
    let o = offer(s, &billing.token, "cloud-s", "Cloud S", 1999, 0).await;
    let alice = s.subscriber("alice@example.test").await;
    subscribe(s, &alice.token, &o).await;
    s.post(
        "/api/v1/ssh-keys",
        Some(&alice.token),
        json!({"name": "laptop", "public_key": KEY}),
    )
    .await;
    alice
}

async fn settle(s: &TestServer, token: &str, id: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        s.run_jobs().await;
        let (_, v) = s.get(&format!("/api/v1/vms/{id}"), Some(token)).await;
        if v["state"] == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the VM did not become {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn console_until(
    s: &TestServer,
    token: &str,
    id: &str,
    needle: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (st, c) = s
            .get(
                &format!("/api/v1/vms/{id}/console?max=1048576"),
                Some(token),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{c}");
        let text = c["data"].as_str().unwrap_or("").to_string();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the console never showed {needle:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn qemu_running_for(id: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c).contains(id)
                    && String::from_utf8_lossy(&c).contains("qemu-system")
            })
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
    let _cleanup = Leftovers(s.data.path().to_path_buf());
    let (_, hosts) = {
        let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
        s.get("/api/v1/hosts", Some(&admin.token)).await
    };
    assert_eq!(hosts[0]["accel"], "tcg", "{hosts}");
    let alice = guest_and_subscriber(&s, &guest).await;
    let t = &alice.token;

    let launched = Instant::now();
    let (st, v) = s
        .post(
            "/api/v1/vms",
            Some(t),
            json!({
                "name": "web-1", "image": "test-guest", "size": "xs", "ssh_keys": ["laptop"],
                "user_data": "#!/bin/sh\necho hello-from-user-data\n",
            }),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let ip = v["ip"].as_str().unwrap().to_string();
    settle(&s, t, &id, "running", Duration::from_secs(60)).await;
    console_until(
        &s,
        t,
        &id,
        &format!("MAOCLOUD-GUEST: ssh-key {KEY}"),
        Duration::from_secs(120),
    )
    .await;
    eprintln!(
        "guest read its key {:.1} s after POST /api/v1/vms",
        launched.elapsed().as_secs_f64()
    );
    let log = console_until(&s, t, &id, "MAOCLOUD-GUEST: ready", Duration::from_secs(60)).await;
    assert!(
        log.contains(&format!("MAOCLOUD-GUEST: ip {ip}")),
        "the guest did not get its address from DHCP:\n{log}"
    );
    assert!(
        log.contains(&format!("MAOCLOUD-GUEST: instance-id {id}")),
        "{log}"
    );
    assert!(
        log.contains("MAOCLOUD-GUEST: user-data hello-from-user-data"),
        "{log}"
    );

    // The host reaches the guest (routed address on the subscriber's bridge).
    let mut banner = String::new();
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((ip.as_str(), 22)),
    )
    .await
    .expect("connect in time")
    .expect("the guest's port 22 answers");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    assert!(banner.starts_with("MAOCLOUD-GUEST-SSH web-1"), "{banner}");

    // Stop: ACPI power-down, seen from inside the guest.
    let (st, _) = s
        .post(&format!("/api/v1/vms/{id}/stop"), Some(t), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    settle(&s, t, &id, "stopped", Duration::from_secs(60)).await;
    console_until(
        &s,
        t,
        &id,
        "MAOCLOUD-GUEST: powering off",
        Duration::from_secs(5),
    )
    .await;
    assert!(!qemu_running_for(&id), "QEMU still runs after stop");

    // Delete: nothing of the VM is left on the host.
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/v1/vms/{id}"), Some(t), None)
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    settle(&s, t, &id, "deleted", Duration::from_secs(60)).await;
    assert!(
        !s.data.path().join("compute/vms").join(&id).exists(),
        "the VM's directory (disk, seed) is left"
    );
    let (st, _) = s.get(&format!("/api/v1/vms/{id}/console"), Some(t)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Kills what a `serve` under test left running (guests, DHCP servers) if the test fails.
struct Leftovers(std::path::PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let needle = self.0.display().to_string();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains(&needle) {
                if let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() {
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status();
                }
            }
        }
    }
}

fn qemu_count_for(id: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            let c = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let c = String::from_utf8_lossy(&c);
            c.contains(id) && c.contains("qemu-system")
        })
        .count()
}

fn serve(data: &std::path::Path, port: u16, pool: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_maocloud"))
        .args([
            "serve",
            "--demo",
            "--s3-listen",
            "off",
            "--compute",
            "qemu",
            "--compute-pool",
            pool,
            "--metadata-listen",
            "0.0.0.0:0",
            "--jobs-interval-ms",
            "100",
            "--sweep-interval-secs",
            "0",
        ])
        .arg("--demo-guest")
        .arg(guest_dir())
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("MAOCLOUD_DEMO_PASSWORD", PASSWORD)
        .env("MAOCLOUD_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("maocloud serve starts")
}

// A control plane killed (SIGKILL) while it creates a VM: the guest it had started keeps
// running, and after a restart the create completes — one QEMU, no orphan, the VM running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_killed_during_create_resumes_with_no_orphan() {
    let data = tempfile::tempdir().unwrap();
    let _cleanup = Leftovers(data.path().to_path_buf());
    let pool = private_pool();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let healthy = |http: reqwest::Client, url: String| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not become healthy");
    };
    let mut first = serve(data.path(), port, &pool);
    healthy(http.clone(), url.clone()).await;
    let r = http
        .post(format!("{url}/api/v1/tokens"))
        .json(&json!({"email": maocloud_app::demo::DEMO_SUBSCRIBER, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{url}/api/v1/vms"))
        .bearer_auth(&token)
        .json(&json!({"name": "survivor", "image": "test-guest", "size": "xs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Kill the control plane the moment its job has started the guest, before it records it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while qemu_count_for(&id) == 0 {
        assert!(Instant::now() < deadline, "QEMU never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // QEMU daemonises: for a moment the parent that waits for the guest to start shares its
    // command line. Then one remains.
    let deadline = Instant::now() + Duration::from_secs(30);
    while qemu_count_for(&id) != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        qemu_count_for(&id),
        1,
        "the guest survives its control plane"
    );

    let mut second = serve(data.path(), port, &pool);
    healthy(http.clone(), url.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = http
            .get(format!("{url}/api/v1/vms/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the create did not resume: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        qemu_count_for(&id),
        1,
        "exactly one QEMU for the VM after the resume"
    );
    // And the guest is the one that booted: it reaches its ready line.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let c: Value = http
            .get(format!("{url}/api/v1/vms/{id}/console?max=1048576"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if c["data"]
            .as_str()
            .unwrap_or("")
            .contains("MAOCLOUD-GUEST: ready")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the guest never got ready: {c}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = http
        .delete(format!("{url}/api/v1/vms/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while qemu_count_for(&id) > 0 {
        assert!(Instant::now() < deadline, "QEMU still runs after delete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
}

// A guest on a host that joined with `maocloud agent` reads its key from the platform's
// metadata service through that host's proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_on_a_remote_host_reads_its_metadata_through_the_agent() {
    let guest = guest_dir();
    let token = "r".repeat(40);
    let s = TestServer::start_with(Db::Sqlite, |c| {
        c.agent_token = Some("r".repeat(40));
        c.compute_pool = private_pool();
    })
    .await;
    let _cleanup = Leftovers(s.data.path().to_path_buf());
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_maocloud"))
        .args([
            "agent",
            "--name",
            "remote-qemu",
            "--listen",
            "127.0.0.1:0",
            "--metadata-listen",
            "0.0.0.0:0",
            "--heartbeat-secs",
            "1",
            "--join",
            &s.url,
            "--token",
            &token,
        ])
        .arg("--state-dir")
        .arg(s.data.path().join("remote-agent"))
        .env("MAOCLOUD_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("maocloud agent starts");
    let admin = s.operator("admin@op.test", OperatorRole::Admin).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, h) = s.get("/api/v1/hosts", Some(&admin.token)).await;
        if h[0]["attached"] == true {
            assert_eq!(h[0]["name"], "remote-qemu");
            break;
        }
        assert!(Instant::now() < deadline, "the agent did not join: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alice = guest_and_subscriber(&s, &guest).await;
    let t = &alice.token;
    let (st, v) = s
        .post(
            "/api/v1/vms",
            Some(t),
            json!({"name": "far-1", "image": "test-guest", "size": "xs", "ssh_keys": ["laptop"]}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    settle(&s, t, &id, "running", Duration::from_secs(60)).await;
    console_until(
        &s,
        t,
        &id,
        &format!("MAOCLOUD-GUEST: ssh-key {KEY}"),
        Duration::from_secs(120),
    )
    .await;
    s.call(Method::DELETE, &format!("/api/v1/vms/{id}"), Some(t), None)
        .await;
    settle(&s, t, &id, "deleted", Duration::from_secs(60)).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
}
