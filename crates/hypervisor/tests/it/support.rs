//! Test support for real guests: finding the test guest, a fresh agent per test whose bridges,
//! taps, dnsmasqs, QEMUs and nftables table are torn down when the test ends (pass or fail), a
//! small metadata HTTP server on a bridge's gateway address, and waiting on the serial console.

use maocloud_hypervisor::net;
use maocloud_hypervisor::qemu::{AccelChoice, QemuAgent, QemuConfig};
use maocloud_hypervisor::{Agent, ImageRef, Lease, NetworkSpec, Resources, Seed, VmSpec};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The test guest's directory, or a failure saying how to build it.
pub fn guest_dir() -> PathBuf {
    let dir = std::env::var_os("MAOCLOUD_TEST_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-guest"));
    for file in ["vmlinuz", "initrd.img"] {
        assert!(
            dir.join(file).is_file(),
            "no test guest at {} (missing {file}): run scripts/build-test-guest \
             (or set MAOCLOUD_TEST_GUEST_DIR)",
            dir.display()
        );
    }
    dir.canonicalize().unwrap()
}

/// Fails unless this host can run real guests.
pub fn require_host() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "real-guest tests need root (bridges, taps, nftables)"
    );
    for tool in [
        "qemu-system-x86_64",
        "qemu-img",
        "dnsmasq",
        "nft",
        "ip",
        "mkfs.vfat",
        "mcopy",
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is missing: apt-get install qemu-system-x86 qemu-utils dnsmasq-base nftables \
             iproute2 dosfstools mtools"
        );
    }
}

/// A /24 no other test of this run uses: 10.(200 + pid % 50).(n).0/24.
pub fn subnet() -> (String, [u8; 3]) {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let second = 200 + (std::process::id() % 50) as u8;
    (format!("10.{second}.{n}.0/24"), [10, second, n])
}

/// A fresh QEMU agent (TCG) in a temporary state directory, cleaned up on drop.
pub struct Host {
    pub agent: Option<QemuAgent>,
    pub state: tempfile::TempDir,
    pub table: String,
    networks: Mutex<Vec<Uuid>>,
}

impl Host {
    pub async fn new() -> Host {
        require_host();
        guest_dir();
        let state = tempfile::Builder::new()
            .prefix("maocloud-hv-")
            .tempdir()
            .unwrap();
        // dnsmasq runs as nobody and re-reads its hosts file from here.
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let agent = QemuAgent::open(config(state.path())).await.unwrap();
        let table = agent.nft_table().to_owned();
        Host {
            agent: Some(agent),
            state,
            table,
            networks: Mutex::new(Vec::new()),
        }
    }

    pub fn agent(&self) -> &QemuAgent {
        self.agent.as_ref().expect("agent open")
    }

    /// Drops the agent and opens a new one on the same state directory (an agent restart).
    pub async fn restart(&mut self) {
        drop(self.agent.take());
        self.agent = Some(QemuAgent::open(config(self.state.path())).await.unwrap());
    }

    /// Sets up a network with a metadata server on its gateway; returns both.
    pub async fn network(&self, leases: Vec<Lease>) -> (NetworkSpec, MetadataServer) {
        let (cidr, [a, b, c]) = subnet();
        let gateway = Ipv4Addr::new(a, b, c, 1);
        let mut spec = NetworkSpec {
            id: Uuid::now_v7(),
            cidr,
            gateway: gateway.to_string(),
            metadata_to: format!("{gateway}:8775"),
            leases,
        };
        self.networks.lock().unwrap().push(spec.id);
        // The gateway address exists once the bridge does; then the server binds it and the
        // network is ensured again with the server's port (which also exercises idempotency).
        self.agent().ensure_network(&spec).await.unwrap();
        let server = MetadataServer::start(gateway).await;
        spec.metadata_to = server.address.to_string();
        self.agent().ensure_network(&spec).await.unwrap();
        (spec, server)
    }
}

fn config(state: &Path) -> QemuConfig {
    let mut config = QemuConfig::new(state);
    config.accel = AccelChoice::Tcg;
    config.capacity = Some(Resources {
        vcpus: 8,
        memory_mib: 4096,
        disk_gib: 64,
    });
    config.hostname = Some("test-host".into());
    config
}

impl Drop for Host {
    fn drop(&mut self) {
        drop(self.agent.take());
        let vms = self.state.path().join("vms");
        for entry in std::fs::read_dir(&vms).into_iter().flatten().flatten() {
            let pid = std::fs::read_to_string(entry.path().join("pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(5);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Uuid>().ok())
            {
                let _ = quiet("ip", &["link", "del", &net::tap_name(id)]);
            }
            for group in std::fs::read_to_string(entry.path().join("cgroups"))
                .unwrap_or_default()
                .lines()
            {
                let _ = std::fs::remove_dir(group);
            }
        }
        let nets = self.state.path().join("nets");
        for entry in std::fs::read_dir(&nets).into_iter().flatten().flatten() {
            let pid = std::fs::read_to_string(entry.path().join("dnsmasq.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                let _ = quiet("kill", &[&pid.to_string()]);
            }
        }
        for id in self.networks.lock().unwrap().iter() {
            let _ = quiet("ip", &["link", "del", &net::bridge_name(*id)]);
        }
        let _ = quiet("nft", &["delete", "table", "inet", &self.table]);
    }
}

fn quiet(program: &str, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
}

/// What the metadata server answers one guest (found by its source address).
#[derive(Debug, Clone, Default)]
pub struct GuestMetadata {
    pub instance_id: String,
    pub hostname: String,
    pub ssh_key: String,
    pub user_data: Option<String>,
}

/// An OpenStack/EC2-style metadata server on a bridge's gateway address.
pub struct MetadataServer {
    pub address: SocketAddr,
    guests: Arc<Mutex<HashMap<String, GuestMetadata>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MetadataServer {
    async fn start(gateway: Ipv4Addr) -> MetadataServer {
        let listener = tokio::net::TcpListener::bind((gateway, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        let guests: Arc<Mutex<HashMap<String, GuestMetadata>>> = Default::default();
        let shared = guests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let guests = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, peer, guests).await;
                });
            }
        });
        MetadataServer {
            address,
            guests,
            task,
        }
    }

    /// Serves `metadata` to the guest at `ip`.
    pub fn add(&self, ip: &str, metadata: GuestMetadata) {
        self.guests.lock().unwrap().insert(ip.to_owned(), metadata);
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    guests: Arc<Mutex<HashMap<String, GuestMetadata>>>,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    let guest = guests.lock().unwrap().get(&peer.ip().to_string()).cloned();
    let body = guest.and_then(|g| {
        match path.as_str() {
        "openstack/latest/meta_data.json" => Some(
            serde_json::json!({ "uuid": g.instance_id, "hostname": g.hostname, "name": g.hostname })
                .to_string(),
        ),
        "latest/meta-data/public-keys/0/openssh-key" => Some(format!("{}\n", g.ssh_key)),
        "latest/meta-data/instance-id" => Some(g.instance_id.clone()),
        "openstack/latest/user_data" => g.user_data.clone(),
        _ => None,
    }
    });
    let response = match body {
        Some(body) => format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A VM of the test guest on `network`, with address `.n` of it.
pub fn guest_vm(network: &NetworkSpec, n: u8, hostname: &str) -> (VmSpec, Lease) {
    let dir = guest_dir();
    let id = Uuid::now_v7();
    let bytes = id.as_bytes();
    let mac = format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        bytes[13], bytes[14], bytes[15]
    );
    let prefix = network.cidr.rsplit_once('.').unwrap().0;
    let lease = Lease {
        mac: mac.clone(),
        ip: format!("{prefix}.{n}"),
        hostname: hostname.into(),
    };
    // The uncompressed kernel boots faster under TCG (no decompression); fall back to bzImage.
    // MAOCLOUD_TEST_GUEST_KERNEL=vmlinuz picks one.
    let kernel = match std::env::var("MAOCLOUD_TEST_GUEST_KERNEL") {
        Ok(name) => dir.join(name),
        Err(_) if dir.join("vmlinux").is_file() => dir.join("vmlinux"),
        Err(_) => dir.join("vmlinuz"),
    };
    let spec = VmSpec {
        id,
        size: Resources {
            vcpus: 1,
            memory_mib: 256,
            disk_gib: 1,
        },
        image: ImageRef {
            disk: None,
            disk_format: None,
            kernel: Some(kernel),
            initrd: Some(dir.join("initrd.img")),
            cmdline: Some("quiet panic=-1".into()),
        },
        mac,
        network: NetworkSpec {
            leases: vec![lease.clone()],
            ..network.clone()
        },
        seed: Seed {
            instance_id: id.to_string(),
            hostname: hostname.into(),
            ssh_keys: vec![],
            user_data: None,
        },
    };
    (spec, lease)
}

/// The whole serial log of VM `id`.
pub async fn console(agent: &dyn Agent, id: Uuid) -> String {
    let (bytes, _) = agent.console_read(id, 0, usize::MAX).await.unwrap();
    String::from_utf8_lossy(&bytes).replace('\r', "")
}

/// Waits (at most `limit`) until the serial log of `id` satisfies `done`; returns the log.
pub async fn wait_console(
    agent: &dyn Agent,
    id: Uuid,
    limit: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let log = console(agent, id).await;
        if done(&log) {
            return log;
        }
        if Instant::now() > deadline {
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("VM {id}: no {what} on the console within {limit:?}; last lines:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many lines of the log are exactly `MAOCLOUD-GUEST: <line>`.
pub fn count(log: &str, line: &str) -> usize {
    let wanted = format!("MAOCLOUD-GUEST: {line}");
    log.lines().filter(|l| l.trim_end() == wanted).count()
}

/// Whether the last boot in the log got as far as `ready`.
pub fn booted(log: &str) -> bool {
    let last = log.rsplit("MAOCLOUD-GUEST: init").next().unwrap_or("");
    log.contains("MAOCLOUD-GUEST: init") && has(last, "ready")
}

/// Whether a `MAOCLOUD-GUEST: <line>` line is in the log.
pub fn has(log: &str, line: &str) -> bool {
    count(log, line) > 0
}

/// Reads the banner of the guest's port 22 from the host.
pub async fn ssh_banner(ip: &str) -> std::io::Result<String> {
    let connect = tokio::net::TcpStream::connect((ip, 22));
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let mut banner = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut banner))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"))??;
    Ok(banner)
}

/// Whether process `pid` has exited (a zombie not yet reaped counts as exited).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// IPv4 forwarding turned on for the life of the value, then put back as it was.
pub struct Forwarding(String);

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

impl Forwarding {
    pub fn on() -> Forwarding {
        let before = std::fs::read_to_string(IP_FORWARD).unwrap();
        std::fs::write(IP_FORWARD, "1").unwrap();
        Forwarding(before.trim().to_owned())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = std::fs::write(IP_FORWARD, &self.0);
    }
}

/// The CPU quota (µs per 100 ms) and memory limit (bytes) of process `pid`'s cgroups, if it is
/// in cgroups that set them (v1 `cpu` + `memory` mounted under /sys/fs/cgroup, or v2).
pub fn cgroup_limits(pid: u32) -> Option<(u64, u64)> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = |controller: &str| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            (list.split(',').any(|c| c == controller) || (controller.is_empty() && list.is_empty()))
                .then(|| path.trim_start_matches('/').to_owned())
        })
    };
    let read = |file: String| std::fs::read_to_string(file).ok();
    if let (Some(cpu), Some(memory)) = (path("cpu"), path("memory")) {
        let quota = read(format!("/sys/fs/cgroup/cpu/{cpu}/cpu.cfs_quota_us"))?
            .trim()
            .parse()
            .ok()?;
        let limit = read(format!(
            "/sys/fs/cgroup/memory/{memory}/memory.limit_in_bytes"
        ))?
        .trim()
        .parse()
        .ok()?;
        return Some((quota, limit));
    }
    let group = path("")?;
    let cpu_max = read(format!("/sys/fs/cgroup/{group}/cpu.max"))?;
    let quota = cpu_max.split_whitespace().next()?.parse().ok()?;
    let limit = read(format!("/sys/fs/cgroup/{group}/memory.max"))?
        .trim()
        .parse()
        .ok()?;
    Some((quota, limit))
}
