//! `maocloud vm|image|ssh-key|host …`: compute from the command line, through the API (the same
//! use cases as the console). `vm console` follows the serial console and types what you type;
//! `image import` shows a progress line while the platform copies and checks the image.

use crate::client::Client;
use crate::output::{self, col, Format};
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Your VMs (operators: everyone's, or `--subscriber`'s).
    List {
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// Launch a VM.
    Create {
        name: String,
        /// Image id or name (`maocloud image list`).
        #[arg(long)]
        image: String,
        /// Size (`maocloud vm sizes`).
        #[arg(long)]
        size: String,
        /// An SSH key id or name of yours; repeat for several.
        #[arg(long = "ssh-key")]
        ssh_keys: Vec<String>,
        /// A file of cloud-init user-data (`#!` script or `#cloud-config`).
        #[arg(long, value_name = "FILE")]
        user_data: Option<std::path::PathBuf>,
        /// Wait until the VM runs (or fails).
        #[arg(long)]
        wait: bool,
    },
    /// One VM.
    Show { id: String },
    Start {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    /// ACPI power-down, forced off after 30 s.
    Stop {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    Reboot {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    /// Move to another size (the disk only grows).
    Resize {
        id: String,
        #[arg(long)]
        size: String,
        #[arg(long)]
        wait: bool,
    },
    /// Delete the VM and its disk.
    Delete {
        id: String,
        #[arg(long)]
        wait: bool,
    },
    /// Follow the serial console; what you type goes to the VM (Ctrl-D to leave). `--log`
    /// prints the boot log so far and returns.
    Console {
        id: String,
        #[arg(long)]
        log: bool,
    },
    /// The size catalogue.
    Sizes,
    /// Your compute quota and its use; operators: a subscriber's (`--subscriber`), which
    /// billing operators set by hand (`--set VCPUS,MEMORY_MIB,DISK_GIB,VMS`) or give back to
    /// the offer's inclusions (`--clear`).
    Quota {
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(
            long,
            value_name = "VCPUS,MEMORY_MIB,DISK_GIB,VMS",
            conflicts_with = "clear",
            requires = "subscriber"
        )]
        set: Option<String>,
        #[arg(long, requires = "subscriber")]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// The image catalogue.
    List,
    Show {
        id: String,
    },
    /// Import a qcow2 or raw image from a path on the platform's host or an http(s) URL
    /// (admins). The checksum is verified and the image inspected before it is offered.
    Import {
        name: String,
        #[arg(long)]
        source: String,
        #[arg(long)]
        sha256: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Retire an image: no new VM from it (admins).
    Retire {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SshKeyCommand {
    List,
    /// Register a public key, from a file (e.g. ~/.ssh/id_ed25519.pub) or `-` for stdin.
    Add {
        name: String,
        #[arg(long, value_name = "FILE")]
        file: std::path::PathBuf,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Hypervisor hosts, their capacity, load and warnings (operators).
    List,
    /// Put a host back into placement (admins).
    Enable { id: String },
    /// Take a host out of placement (admins).
    Disable { id: String },
}

const VM_COLS: [output::Column; 7] = [
    col("ID", "id"),
    col("NAME", "name"),
    col("STATE", "state"),
    col("SIZE", "size"),
    col("IP", "ip"),
    col("ERROR", "error"),
    col("CREATED", "created_at"),
];

/// States that change by themselves.
use maocloud_app::compute::vms::BUSY;

async fn wait_settled(c: &Client, id: &str) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    loop {
        let v = c.get(&format!("/api/v1/vms/{id}")).await?;
        let state = v["state"].as_str().unwrap_or("");
        if !BUSY.contains(&state) {
            if let Some(e) = v["error"].as_str() {
                bail!("the VM is {state}: {e}");
            }
            return Ok(v);
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the VM is still {state} after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn vm(c: &Client, out: Format, cmd: VmCommand) -> anyhow::Result<()> {
    let act = |what: &'static str| move |id: String| (format!("/api/v1/vms/{id}/{what}"), id);
    let (v, wait_for) = match cmd {
        VmCommand::List { subscriber } => {
            let path = match subscriber {
                Some(s) => format!("/api/v1/vms?limit=200&subscriber_id={s}"),
                None => "/api/v1/vms?limit=200".into(),
            };
            (c.get(&path).await?, None)
        }
        VmCommand::Create {
            name,
            image,
            size,
            ssh_keys,
            user_data,
            wait,
        } => {
            let user_data = match user_data {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            };
            let v = c.post("/api/v1/vms", &json!({"name": name, "image": image, "size": size, "ssh_keys": ssh_keys, "user_data": user_data})).await?;
            let id = v["id"].as_str().unwrap_or_default().to_string();
            (v, wait.then_some(id))
        }
        VmCommand::Show { id } => (c.get(&format!("/api/v1/vms/{id}")).await?, None),
        VmCommand::Start { id, wait } => {
            let (p, id) = act("start")(id);
            (c.post(&p, &json!({})).await?, wait.then_some(id))
        }
        VmCommand::Stop { id, wait } => {
            let (p, id) = act("stop")(id);
            (c.post(&p, &json!({})).await?, wait.then_some(id))
        }
        VmCommand::Reboot { id, wait } => {
            let (p, id) = act("reboot")(id);
            (c.post(&p, &json!({})).await?, wait.then_some(id))
        }
        VmCommand::Resize { id, size, wait } => (
            c.post(&format!("/api/v1/vms/{id}/resize"), &json!({"size": size}))
                .await?,
            wait.then_some(id),
        ),
        VmCommand::Delete { id, wait } => (
            c.delete(&format!("/api/v1/vms/{id}")).await?,
            wait.then_some(id),
        ),
        VmCommand::Console { id, log } => return console(c, &id, log).await,
        VmCommand::Sizes => {
            let v = c.get("/api/v1/sizes").await?;
            output::print(
                out,
                &v,
                &[
                    col("NAME", "name"),
                    col("VCPUS", "vcpus"),
                    col("MEMORY_MIB", "memory_mib"),
                    col("DISK_GIB", "disk_gib"),
                ],
            );
            return Ok(());
        }
        VmCommand::Quota {
            subscriber,
            set,
            clear,
        } => {
            let path = match &subscriber {
                Some(s) => format!("/api/v1/subscribers/{s}/compute-quota"),
                None => "/api/v1/quota".into(),
            };
            if let Some(set) = set {
                let n: Vec<i64> = set
                    .split(',')
                    .map(|x| x.trim().parse::<i64>())
                    .collect::<Result<_, _>>()
                    .ok()
                    .filter(|n: &Vec<i64>| n.len() == 4)
                    .context("--set takes four numbers: VCPUS,MEMORY_MIB,DISK_GIB,VMS")?;
                let body =
                    json!({"vcpus": n[0], "memory_mib": n[1], "disk_gib": n[2], "vms": n[3]});
                c.request(reqwest::Method::PUT, &path, Some(&body)).await?;
            } else if clear {
                c.delete(&path).await?;
            }
            let v = c.get(&path).await?;
            output::print(
                out,
                &v,
                &[
                    col("VMS", "vms"),
                    col("USED_VMS", "used_vms"),
                    col("VCPUS", "vcpus"),
                    col("USED_VCPUS", "used_vcpus"),
                    col("MEMORY_MIB", "memory_mib"),
                    col("USED_MEMORY_MIB", "used_memory_mib"),
                    col("DISK_GIB", "disk_gib"),
                    col("USED_DISK_GIB", "used_disk_gib"),
                    col("SET_BY_OPERATOR", "set_by_operator"),
                ],
            );
            return Ok(());
        }
    };
    let v = match wait_for {
        Some(id) => wait_settled(c, &id).await?,
        None => v,
    };
    output::print(out, &v, &VM_COLS);
    Ok(())
}

/// Follows the serial console by polling the log from the last offset; lines typed on stdin
/// go to the VM.
async fn console(c: &Client, id: &str, log_only: bool) -> anyhow::Result<()> {
    let mut offset = 0u64;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<String>>(16);
    if !log_only {
        eprintln!("Connected to the serial console of {id}; Ctrl-D leaves.");
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.blocking_send(None);
                        return;
                    }
                    Ok(_) => {
                        if tx.blocking_send(Some(line.clone())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    loop {
        let v = c
            .get(&format!("/api/v1/vms/{id}/console?offset={offset}"))
            .await?;
        let data = v["data"].as_str().unwrap_or("");
        print!("{data}");
        std::io::stdout().flush().ok();
        offset = v["next_offset"].as_u64().unwrap_or(offset);
        if log_only {
            if data.is_empty() {
                return Ok(());
            }
            continue;
        }
        tokio::select! {
            typed = rx.recv() => match typed {
                Some(Some(line)) => { c.post(&format!("/api/v1/vms/{id}/console"), &json!({"input": line})).await?; }
                _ => return Ok(()),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
}

pub async fn image(c: &Client, out: Format, cmd: ImageCommand) -> anyhow::Result<()> {
    let cols = [
        col("ID", "id"),
        col("NAME", "name"),
        col("KIND", "kind"),
        col("FORMAT", "format"),
        col("MIN_DISK_GIB", "min_disk_gib"),
        col("STATUS", "status"),
        col("SHA256", "sha256"),
    ];
    let v = match cmd {
        ImageCommand::List => c.get("/api/v1/images").await?,
        ImageCommand::Show { id } => c.get(&format!("/api/v1/images/{id}")).await?,
        ImageCommand::Import {
            name,
            source,
            sha256,
            description,
        } => {
            let body = json!({"name": name, "source": source, "sha256": sha256, "description": description});
            let started = std::time::Instant::now();
            let request = c.post("/api/v1/images", &body);
            tokio::pin!(request);
            let spinner = ['|', '/', '-', '\\'];
            let mut n = 0;
            let v = loop {
                tokio::select! {
                    r = &mut request => break r?,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {
                        n += 1;
                        eprint!("\r{} importing {name}: copying, verifying the checksum and inspecting… {:>4} s", spinner[n % 4], started.elapsed().as_secs());
                    }
                }
            };
            eprintln!(
                "\rimported {name} in {:.1} s{:40}",
                started.elapsed().as_secs_f64(),
                ""
            );
            v
        }
        ImageCommand::Retire { id } => c.delete(&format!("/api/v1/images/{id}")).await?,
    };
    output::print(out, &v, &cols);
    Ok(())
}

pub async fn ssh_key(c: &Client, out: Format, cmd: SshKeyCommand) -> anyhow::Result<()> {
    let cols = [
        col("ID", "id"),
        col("NAME", "name"),
        col("FINGERPRINT", "fingerprint"),
        col("CREATED", "created_at"),
    ];
    let v = match cmd {
        SshKeyCommand::List => c.get("/api/v1/ssh-keys").await?,
        SshKeyCommand::Add { name, file } => {
            let key = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            c.post(
                "/api/v1/ssh-keys",
                &json!({"name": name, "public_key": key.trim()}),
            )
            .await?
        }
        SshKeyCommand::Delete { id } => {
            c.delete(&format!("/api/v1/ssh-keys/{id}")).await?;
            eprintln!("SSH key {id} removed (VMs made with it keep it).");
            return Ok(());
        }
    };
    output::print(out, &v, &cols);
    Ok(())
}

pub async fn host(c: &Client, out: Format, cmd: HostCommand) -> anyhow::Result<()> {
    let cols = [
        col("ID", "id"),
        col("NAME", "name"),
        col("ACCEL", "accel"),
        col("STATUS", "status"),
        col("VMS", "vms"),
        col("VCPUS", "used_vcpus"),
        col("OF", "vcpus"),
        col("MEMORY_MIB", "used_memory_mib"),
        col("OF", "memory_mib"),
        col("WARNINGS", "warnings"),
    ];
    let v = match cmd {
        HostCommand::List => c.get("/api/v1/hosts").await?,
        HostCommand::Enable { id } | HostCommand::Disable { id } if id.is_empty() => {
            bail!("a host id is needed")
        }
        HostCommand::Enable { id } => {
            c.post(&format!("/api/v1/hosts/{id}/enable"), &json!({}))
                .await?;
            eprintln!("Host {id} takes new VMs again.");
            return Ok(());
        }
        HostCommand::Disable { id } => {
            c.post(&format!("/api/v1/hosts/{id}/disable"), &json!({}))
                .await?;
            eprintln!("Host {id} takes no new VM; its VMs keep running.");
            return Ok(());
        }
    };
    output::print(out, &v, &cols);
    Ok(())
}
