//! `maocloud bench vm-boot` and `maocloud bench vm-cycles`: compute measurements. vm-boot times
//! `POST /api/v1/vms` → the guest's first `init` line on its serial log against a bare
//! `qemu-system-x86_64` boot of the same guest in the same run, and reads the memory the agent
//! and each QEMU take; vm-cycles times create → running → delete cycles against simulated hosts.

use crate::config::{ComputeMode, ServeArgs};
use crate::serve::Platform;
use anyhow::{bail, Context};
use maocloud_types::SystemClock;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-password-123";

/// A platform served in this process on a free port: its URL and a demo subscriber's token.
async fn platform(
    data: &Path,
    compute: ComputeMode,
    guest: Option<&Path>,
) -> anyhow::Result<(
    maocloud_app::App,
    String,
    String,
    tokio::sync::watch::Sender<bool>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = ServeArgs {
        data_dir: Some(data.to_path_buf()),
        listen: Some(addr),
        demo: true,
        compute: Some(
            match compute {
                ComputeMode::Qemu => "qemu",
                ComputeMode::Sim => "sim",
                ComputeMode::Off => "off",
            }
            .into(),
        ),
        metadata_listen: Some("0.0.0.0:0".parse()?),
        s3_listen: Some("off".into()),
        compute_pool: Some("10.199".into()),
        jobs_interval_ms: Some(1000),
        sweep_interval_secs: Some(0),
        demo_guest: guest.map(Path::to_path_buf),
        ..Default::default()
    }
    .resolve()?;
    config.public_url = format!("http://{addr}");
    let platform = Platform::build(config, Arc::new(SystemClock)).await?;
    let app = platform.app.clone();
    maocloud_app::demo::seed(&app, Some(PASSWORD)).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move { platform.run(listener, rx).await });
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/api/v1/tokens"))
        .json(&json!({"email": maocloud_app::demo::DEMO_SUBSCRIBER, "password": PASSWORD}))
        .send()
        .await?;
    let token = r.json::<Value>().await?["token"]
        .as_str()
        .context("no token")?
        .to_string();
    Ok((app, url, token, tx))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn qemu_pid_of(id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let c = std::fs::read(p.path().join("cmdline")).ok()?;
        let c = String::from_utf8_lossy(&c);
        (c.contains(id) && c.contains("qemu-system"))
            .then(|| p.file_name().to_string_lossy().parse().ok())?
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn wait_for_line(path: &Path, needle: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{needle:?} never appeared in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The command line QEMU runs for a VM, as the kernel shows it.
fn cmdline_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The bare boot: QEMU with the very flags the agent gave the platform's guest, except what
/// ties it to the agent (daemonising, pid file, QMP and serial sockets, the tap on the
/// subscriber's bridge): serial on stdout, user networking, fresh copies of the disk and seed.
/// Time to the first init line.
fn bare_args(platform_args: &[String], scratch: &Path) -> anyhow::Result<Vec<String>> {
    let disk = scratch.join("disk.qcow2");
    let _ = std::fs::remove_file(&disk);
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("1G")
        .status()?;
    anyhow::ensure!(st.success(), "qemu-img create failed");
    let mut args = vec![];
    let mut it = platform_args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-daemonize" => {}
            "-pidfile" | "-qmp" | "-chardev" => {
                it.next();
            }
            "-serial" => {
                it.next();
                args.extend(["-serial".to_string(), "stdio".to_string()]);
            }
            "-netdev" => {
                let v = it.next().cloned().unwrap_or_default();
                let id = v
                    .split(',')
                    .find_map(|p| p.strip_prefix("id="))
                    .unwrap_or("net0")
                    .to_string();
                args.extend(["-netdev".to_string(), format!("user,id={id}")]);
            }
            "-drive" => {
                let v = it.next().cloned().unwrap_or_default();
                let v = match v.split(',').find_map(|p| p.strip_prefix("file=")) {
                    Some(f) if f.ends_with("disk.qcow2") => {
                        v.replace(f, &disk.display().to_string())
                    }
                    Some(f) if f.ends_with("seed.img") => {
                        let seed = scratch.join("seed.img");
                        std::fs::copy(f, &seed)?;
                        v.replace(f, &seed.display().to_string())
                    }
                    _ => v,
                };
                args.extend(["-drive".to_string(), v]);
            }
            other => args.push(other.to_string()),
        }
    }
    args.insert(0, platform_args[0].clone());
    Ok(args)
}

fn bare_boot(args: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut child = std::process::Command::new(&args[0])
        .args(&args[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("qemu-system-x86_64 runs")?;
    let out = child.stdout.take().context("stdout")?;
    let mut elapsed = None;
    for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
        if String::from_utf8_lossy(&line).contains("MAOCLOUD-GUEST: init") {
            elapsed = Some(started.elapsed().as_secs_f64());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    elapsed.context("the bare guest never printed init")
}

pub async fn vm_boot(rounds: u32, guest: PathBuf) -> anyhow::Result<()> {
    anyhow::ensure!(
        guest.join("initrd.img").exists(),
        "no test guest in {} (scripts/build-test-guest)",
        guest.display()
    );
    let data = tempfile::tempdir()?;
    let (app, url, token, stop) = platform(data.path(), ComputeMode::Qemu, Some(&guest)).await?;
    // Room for every round's VM to keep running (for the memory reading), whatever the offer.
    {
        let mut tx = app.db().write().await?;
        let who = tx
            .account_by_email(maocloud_app::demo::DEMO_SUBSCRIBER)
            .await?;
        let q = maocloud_datastore::compute::Quota {
            vcpus: 64,
            memory_mib: 65536,
            disk_gib: 1000,
            vms: 64,
        };
        tx.quota_set(
            maocloud_types::SubscriberId(who.id),
            q,
            "bench",
            maocloud_types::Timestamp::now(),
        )
        .await?;
        tx.commit().await?;
    }
    let http = reqwest::Client::new();
    let (mut platform_s, mut bare_s) = (vec![], vec![]);
    let create = |name: String| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let v: Value = http
                .post(format!("{url}/api/v1/vms"))
                .bearer_auth(&token)
                .json(&json!({"name": name, "image": "test-guest", "size": "xs"}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(
                v["id"]
                    .as_str()
                    .with_context(|| format!("create refused: {v}"))?
                    .to_string(),
            )
        }
    };
    let delete = |id: String| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            http.delete(format!("{url}/api/v1/vms/{id}"))
                .bearer_auth(&token)
                .send()
                .await?;
            loop {
                let v: Value = http
                    .get(format!("{url}/api/v1/vms/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                if v["state"] == "deleted" {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let log_of = |id: &str| data.path().join("compute/vms").join(id).join("console.log");
    for r in 0..rounds {
        // Each boot, the platform's and the bare one, on an otherwise idle machine.
        let t = Instant::now();
        let id = create(format!("bench-{r}")).await?;
        wait_for_line(
            &log_of(&id),
            "MAOCLOUD-GUEST: init",
            Duration::from_secs(120),
        )
        .await?;
        platform_s.push(t.elapsed().as_secs_f64());
        let flags = cmdline_of(qemu_pid_of(&id).context("the platform's QEMU")?);
        let bare = bare_args(&flags, data.path())?;
        wait_for_line(
            &log_of(&id),
            "MAOCLOUD-GUEST: ready",
            Duration::from_secs(120),
        )
        .await?;
        delete(id).await?;
        bare_s.push(bare_boot(&bare)?);
    }
    // Memory: the control plane and agent (this process) idle, then with two guests up.
    let me = std::process::id();
    let rss_idle = rss_kib(me);
    let mut running = vec![];
    for n in 0..2 {
        let id = create(format!("mem-{n}")).await?;
        wait_for_line(
            &log_of(&id),
            "MAOCLOUD-GUEST: ready",
            Duration::from_secs(120),
        )
        .await?;
        running.push(id);
    }
    let rss_running = rss_kib(me);
    let qemu: Vec<u64> = running
        .iter()
        .filter_map(|id| qemu_pid_of(id))
        .map(rss_kib)
        .collect();
    for id in running.clone() {
        delete(id).await?;
    }
    // The last VM's network goes just after it is recorded deleted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let (p, b) = (median(&mut platform_s), median(&mut bare_s));
    println!("vm-boot ({rounds} rounds, TCG, q35, 1 vCPU, 256 MiB, test guest):");
    println!(
        "  POST /api/v1/vms -> first init line: median {:.3} s  (all: {:?})",
        p,
        platform_s
            .iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!(
        "  bare qemu-system-x86_64 -> first init line: median {:.3} s  (all: {:?})",
        b,
        bare_s
            .iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!("  overhead: {:+.1} %", (p - b) / b * 100.0);
    println!(
        "  control plane + agent RSS: {} MiB idle, {} MiB with {} VMs running: {:.0} KiB per VM",
        rss_idle / 1024,
        rss_running / 1024,
        running.len(),
        (rss_running as f64 - rss_idle as f64) / running.len().max(1) as f64
    );
    if !qemu.is_empty() {
        println!(
            "  QEMU RSS per VM: {:.0} MiB (mean of {})",
            qemu.iter().sum::<u64>() as f64 / qemu.len() as f64 / 1024.0,
            qemu.len()
        );
    }
    Ok(())
}

pub async fn vm_cycles(cycles: u32, hosts: u32) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let (app, url, token, stop) = platform(data.path(), ComputeMode::Off, None).await?;
    for h in 0..hosts {
        let sim = maocloud_hypervisor::sim::SimAgent::new(maocloud_hypervisor::sim::SimConfig {
            hostname: format!("sim-{h}"),
            ..Default::default()
        });
        maocloud_app::compute::hosts::attach(&app, Arc::new(sim), None).await?;
    }
    let dir = data.path().join("img");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("k"), b"k")?;
    std::fs::write(dir.join("i"), b"i")?;
    maocloud_app::compute::images::register_kernel(
        &app,
        &maocloud_app::Ctx::system(),
        maocloud_app::compute::images::RegisterKernel {
            name: "sim".into(),
            description: String::new(),
            kernel: dir.join("k"),
            initrd: dir.join("i"),
            cmdline: String::new(),
        },
    )
    .await?;
    let http = reqwest::Client::new();
    let state = |id: String| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let v: Value = http
                .get(format!("{url}/api/v1/vms/{id}"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v["state"].as_str().unwrap_or("").to_string())
        }
    };
    let started = Instant::now();
    for c in 0..cycles {
        let v: Value = http
            .post(format!("{url}/api/v1/vms"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("c{c}"), "image": "sim", "size": "xs"}))
            .send()
            .await?
            .json()
            .await?;
        let id = v["id"]
            .as_str()
            .with_context(|| format!("create refused: {v}"))?
            .to_string();
        while state(id.clone()).await? != "running" {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        http.delete(format!("{url}/api/v1/vms/{id}"))
            .bearer_auth(&token)
            .send()
            .await?;
        while state(id.clone()).await? != "deleted" {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let total = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    println!("vm-cycles: {cycles} create -> running -> delete cycles through the API against {hosts} simulated hosts: {total:.2} s ({:.1} ms per cycle)", total * 1000.0 / cycles as f64);
    Ok(())
}
