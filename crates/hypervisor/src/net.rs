//! Per-subscriber networks on a host: one Linux bridge per network (`mcb` + 12 hex digits of
//! the network id), the host's gateway address on it, one `dnsmasq` per bridge handing out the
//! static leases (DHCP only), a tap per VM plugged into it (`mct` + 12 hex digits of the VM id),
//! and one nftables table per agent that isolates the bridges:
//!
//! - guests' requests to `169.254.169.254:80` are DNATed to the network's `metadata_to`;
//! - nothing is forwarded between a bridge and any other interface (another subscriber's bridge,
//!   the host's uplink), except to the uplink when one is configured (then masqueraded);
//! - guests reach the host only for DHCP, ICMP and the metadata target.
//!
//! Everything a network needs is kept in `<state_dir>/nets/<id>/` (its spec, the DHCP hosts and
//! lease files, dnsmasq's pid and log), and the nftables table is rewritten whole from those
//! specs, so `ensure` is idempotent and repairs whatever is missing.

use crate::host::{self, io_failed};
use crate::rules;
use crate::{AgentResult, NetworkSpec};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The address guests ask for metadata (the EC2/OpenStack convention).
pub const METADATA_ADDRESS: &str = "169.254.169.254";

/// The name of network `id`'s bridge: `mcb` + the id's last 6 bytes in hex (15 characters, the
/// kernel's limit; UUIDv7s begin with a timestamp, their end is random).
pub fn bridge_name(id: Uuid) -> String {
    format!("mcb{}", last_hex(id))
}

/// The name of VM `id`'s tap: `mct` + the id's last 6 bytes in hex.
pub fn tap_name(id: Uuid) -> String {
    format!("mct{}", last_hex(id))
}

fn last_hex(id: Uuid) -> String {
    id.as_bytes()[10..].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether network interface `name` exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Bytes (received, sent) by interface `name`, as the host counts them.
pub fn link_bytes(name: &str) -> (u64, u64) {
    let read = |what: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/{what}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    (read("rx_bytes"), read("tx_bytes"))
}

/// The networks of one agent.
pub struct Networks {
    dir: PathBuf,
    table: String,
    uplink: Option<String>,
    /// Serialises changes: the nftables table is rewritten from every network at once.
    lock: tokio::sync::Mutex<()>,
}

impl Networks {
    /// The networks kept under `state_dir`; the nftables table is named after `state_dir`, so
    /// two agents on one host (tests) keep apart.
    pub fn new(state_dir: &Path, uplink: Option<String>) -> AgentResult<Networks> {
        let dir = state_dir.join("nets");
        std::fs::create_dir_all(&dir).map_err(io_failed(dir.display()))?;
        make_readable(&dir)?;
        // FNV-1a of the path: stable across restarts, short enough for a table name.
        let hash = state_dir
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
            });
        Ok(Networks {
            dir,
            table: format!("maocloud_{:08x}", hash as u32),
            uplink,
            lock: Default::default(),
        })
    }

    /// The nftables table of this agent (`inet` family).
    pub fn table(&self) -> &str {
        &self.table
    }

    fn net_dir(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Creates or repairs network `net`: bridge, address, DHCP, isolation rules.
    pub async fn ensure(&self, net: &NetworkSpec) -> AgentResult<()> {
        rules::check_network(net)?;
        let _guard = self.lock.lock().await;
        let dir = self.net_dir(net.id);
        std::fs::create_dir_all(&dir).map_err(io_failed(dir.display()))?;
        make_readable(&dir)?;
        write_atomic(
            &dir.join("spec.json"),
            &serde_json::to_vec_pretty(net).expect("serialisable"),
        )?;

        let bridge = bridge_name(net.id);
        let (_, prefix) = rules::parse_cidr(&net.cidr)?;
        if !link_exists(&bridge) {
            ip(&["link", "add", "name", &bridge, "type", "bridge"])
                .await
                .or_else(|e| {
                    if link_exists(&bridge) {
                        Ok(String::new())
                    } else {
                        Err(e)
                    }
                })?;
        }
        disable_ipv6(&bridge);
        ip(&[
            "addr",
            "replace",
            &format!("{}/{prefix}", net.gateway),
            "dev",
            &bridge,
        ])
        .await?;
        ip(&["link", "set", &bridge, "up"]).await?;

        let mut hosts = String::new();
        for lease in &net.leases {
            let _ = writeln!(
                hosts,
                "{},{},{}",
                lease.mac.to_ascii_lowercase(),
                lease.ip,
                lease.hostname
            );
        }
        write_atomic(&dir.join("hosts"), hosts.as_bytes())?;
        self.ensure_dnsmasq(net, &dir, &bridge).await?;

        self.write_rules().await?;
        self.ensure_forwarding()?;
        Ok(())
    }

    /// Removes network `id`: dnsmasq, bridge, rules. Absent: Ok.
    pub async fn remove(&self, id: Uuid) -> AgentResult<()> {
        let _guard = self.lock.lock().await;
        let dir = self.net_dir(id);
        let bridge = bridge_name(id);
        stop_dnsmasq(&dir, &bridge).await;
        if link_exists(&bridge) {
            ip(&["link", "del", &bridge]).await?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_failed(dir.display()))?;
        }
        self.write_rules().await
    }

    /// The specs of every network of this agent.
    pub fn specs(&self) -> Vec<NetworkSpec> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut specs: Vec<NetworkSpec> = entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("spec.json")).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        specs.sort_by_key(|s| s.id);
        specs
    }

    /// What is wrong with the networks (for the report): a bridge or a dnsmasq gone, which
    /// `ensure` would repair.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for spec in self.specs() {
            let bridge = bridge_name(spec.id);
            if !link_exists(&bridge) {
                problems.push(format!("network {}: bridge {bridge} is missing", spec.id));
            } else if dnsmasq_pid(&self.net_dir(spec.id), &bridge).is_none() {
                problems.push(format!(
                    "network {}: its DHCP server is not running",
                    spec.id
                ));
            }
        }
        problems
    }

    /// Whether network `id` was set up by this agent and its bridge exists.
    pub fn is_ready(&self, id: Uuid) -> bool {
        self.net_dir(id).join("spec.json").exists() && link_exists(&bridge_name(id))
    }

    /// (Re)creates tap `tap` on network `id`'s bridge, with fresh counters.
    pub async fn create_tap(&self, tap: &str, id: Uuid) -> AgentResult<()> {
        if link_exists(tap) {
            ip(&["link", "del", tap]).await?;
        }
        ip(&["tuntap", "add", "dev", tap, "mode", "tap"]).await?;
        disable_ipv6(tap);
        self.plug_tap(tap, id).await
    }

    /// Plugs existing tap `tap` into network `id`'s bridge (again), up.
    pub async fn plug_tap(&self, tap: &str, id: Uuid) -> AgentResult<()> {
        ip(&["link", "set", tap, "master", &bridge_name(id), "up"]).await?;
        Ok(())
    }

    /// Removes tap `tap`. Absent: Ok.
    pub async fn remove_tap(&self, tap: &str) -> AgentResult<()> {
        if link_exists(tap) {
            ip(&["link", "del", tap]).await.or_else(|e| {
                if link_exists(tap) {
                    Err(e)
                } else {
                    Ok(String::new())
                }
            })?;
        }
        Ok(())
    }

    async fn ensure_dnsmasq(&self, net: &NetworkSpec, dir: &Path, bridge: &str) -> AgentResult<()> {
        let (subnet, prefix) = rules::parse_cidr(&net.cidr)?;
        let netmask = Ipv4Addr::from(u32::MAX << (32 - prefix));
        let file = |name: &str| dir.join(name).display().to_string();
        let args = vec![
            "--conf-file=/dev/null".to_owned(),
            "--port=0".into(),
            "--bind-interfaces".into(),
            format!("--interface={bridge}"),
            "--except-interface=lo".into(),
            format!("--dhcp-range={subnet},static,{netmask},12h"),
            format!("--dhcp-hostsfile={}", file("hosts")),
            format!("--dhcp-leasefile={}", file("leases")),
            format!("--pid-file={}", file("dnsmasq.pid")),
            format!("--log-facility={}", file("dnsmasq.log")),
            format!("--dhcp-option=option:router,{}", net.gateway),
            "--dhcp-authoritative".into(),
            "--log-dhcp".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
        ];
        let args_file = dir.join("dnsmasq.args");
        let wanted = args.join("\n");
        let same_args = std::fs::read_to_string(&args_file).is_ok_and(|a| a == wanted);
        if let Some(pid) = dnsmasq_pid(dir, bridge) {
            if same_args {
                // Re-read the hosts file.
                host::signal(pid, libc::SIGHUP);
                return Ok(());
            }
            stop_dnsmasq(dir, bridge).await;
        }
        std::fs::write(&args_file, &wanted).map_err(io_failed(args_file.display()))?;
        // dnsmasq reports start-up errors on stderr, then daemonises (its own session).
        host::run("dnsmasq", &args, None).await?;
        Ok(())
    }

    /// Rewrites this agent's nftables table from every network's spec (or removes it when there
    /// is none), in one atomic `nft -f` transaction.
    async fn write_rules(&self) -> AgentResult<()> {
        let specs = self.specs();
        let table = &self.table;
        let mut nft = format!("table inet {table}\ndelete table inet {table}\n");
        if !specs.is_empty() {
            nft.push_str(&ruleset(table, &specs, self.uplink.as_deref())?);
        }
        host::run("nft", &["-f", "-"], Some(nft.as_bytes())).await?;
        Ok(())
    }

    /// Turns IPv4 forwarding on when something must be forwarded: an uplink, or a metadata
    /// target that is not the bridge's own address. Left as it is otherwise.
    fn ensure_forwarding(&self) -> AgentResult<()> {
        let remote_metadata = self.specs().iter().any(|s| {
            rules::parse_socket(&s.metadata_to).is_ok_and(|to| to.ip().to_string() != s.gateway)
        });
        if self.uplink.is_none() && !remote_metadata {
            return Ok(());
        }
        let path = "/proc/sys/net/ipv4/ip_forward";
        if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        std::fs::write(path, "1").map_err(io_failed(path))
    }
}

/// The nftables table `table` (family `inet`) isolating the bridges of `specs`, masquerading
/// their traffic out of `uplink` if there is one.
pub fn ruleset(table: &str, specs: &[NetworkSpec], uplink: Option<&str>) -> AgentResult<String> {
    let mut pre = String::new();
    let mut post = String::new();
    let mut input = String::new();
    let mut forward = String::new();
    for spec in specs {
        let bridge = bridge_name(spec.id);
        let (subnet, prefix) = rules::parse_cidr(&spec.cidr)?;
        let to = rules::parse_socket(&spec.metadata_to)?;
        let (md_ip, md_port) = (to.ip(), to.port());
        let b = format!("iifname \"{bridge}\"");
        let _ = writeln!(
            pre,
            "    {b} ip daddr {METADATA_ADDRESS} tcp dport 80 dnat ip to {md_ip}:{md_port}"
        );
        let _ = writeln!(input, "    {b} ct state established,related accept");
        let _ = writeln!(input, "    {b} udp dport 67 accept");
        let _ = writeln!(
            input,
            "    {b} ip daddr {} meta l4proto icmp accept",
            spec.gateway
        );
        let _ = writeln!(input, "    {b} ip daddr {md_ip} tcp dport {md_port} accept");
        let _ = writeln!(input, "    {b} drop");
        // Within one bridge (seen here only when br_netfilter is loaded): one subscriber.
        let _ = writeln!(forward, "    {b} oifname \"{bridge}\" accept");
        let _ = writeln!(
            forward,
            "    {b} ip daddr {md_ip} tcp dport {md_port} ct status dnat accept"
        );
        if let Some(uplink) = uplink {
            let _ = writeln!(forward, "    {b} oifname \"{uplink}\" accept");
            let _ = writeln!(
                post,
                "    ip saddr {subnet}/{prefix} oifname \"{uplink}\" masquerade"
            );
        }
        let _ = writeln!(forward, "    {b} drop");
        let _ = writeln!(
            forward,
            "    oifname \"{bridge}\" ct state established,related accept"
        );
        let _ = writeln!(forward, "    oifname \"{bridge}\" drop");
    }
    let chain = |name: &str, hook: &str, rules: &str| {
        format!("  chain {name} {{\n    type {hook}; policy accept;\n{rules}  }}\n")
    };
    Ok(format!(
        "table inet {table} {{\n{}{}{}{}}}\n",
        chain("prerouting", "nat hook prerouting priority dstnat", &pre),
        chain("postrouting", "nat hook postrouting priority srcnat", &post),
        chain("input", "filter hook input priority filter", &input),
        chain("forward", "filter hook forward priority filter", &forward),
    ))
}

async fn ip(args: &[&str]) -> AgentResult<String> {
    host::run("ip", args, None).await
}

/// The pid of the dnsmasq serving `bridge`, if it runs.
fn dnsmasq_pid(dir: &Path, bridge: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("dnsmasq.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (host::alive(pid) && host::cmdline_contains(pid, &format!("--interface={bridge}")))
        .then_some(pid)
}

async fn stop_dnsmasq(dir: &Path, bridge: &str) {
    if let Some(pid) = dnsmasq_pid(dir, bridge) {
        host::signal(pid, libc::SIGTERM);
        if !host::wait_gone(pid, Duration::from_secs(3)).await {
            host::signal(pid, libc::SIGKILL);
            host::wait_gone(pid, Duration::from_secs(2)).await;
        }
    }
    let _ = std::fs::remove_file(dir.join("dnsmasq.pid"));
}

/// Guests have no business with the host over IPv6: no link-local address on bridges and taps.
fn disable_ipv6(link: &str) {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"), "1");
}

/// dnsmasq drops to `nobody` and re-reads the hosts file as that user on SIGHUP.
fn make_readable(dir: &Path) -> AgentResult<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_failed(dir.display()))
}

/// Writes `path` through a temporary file and a rename, readable by all (see [`make_readable`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> AgentResult<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes).map_err(io_failed(temporary.display()))?;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))
        .map_err(io_failed(temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(io_failed(path.display()))
}

/// Whether `dnsmasq` (running as `nobody`) can reach files under `dir`: every ancestor must be
/// searchable by others. Returns the first one that is not.
pub fn unreachable_ancestor(dir: &Path) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for part in dir.components() {
        path.push(part);
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o001 == 0 {
            return Some(path);
        }
    }
    None
}
