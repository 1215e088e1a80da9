//! `maocloud storage …`: object storage from the command line, through the API (the same use
//! cases as the console): access keys, buckets, usage and quotas, and for operators the store's
//! disks, health and repair progress. Objects themselves go through any S3 client.

use crate::client::Client;
use crate::output::{self, col, Format};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// S3 access keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Buckets.
    #[command(subcommand)]
    Buckets(BucketsCommand),
    /// What you store against your quota; operators: everyone's (`--all`).
    Usage {
        #[arg(long)]
        all: bool,
    },
    /// Operators: set (`--bytes` and `--objects`) or `--clear` a subscriber's quota.
    Quota {
        #[arg(long)]
        subscriber: String,
        #[arg(long, requires = "objects")]
        bytes: Option<i64>,
        #[arg(long, requires = "bytes")]
        objects: Option<i64>,
        #[arg(long, conflicts_with_all = ["bytes", "objects"])]
        clear: bool,
    },
    /// Operators: disks, health and scrub/repair progress.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Your keys (revoked ones too).
    List,
    /// Create a key; its secret is printed this once.
    Create { name: String },
    /// Revoke a key at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum BucketsCommand {
    List,
    Create {
        name: String,
    },
    /// Delete an empty bucket.
    Delete {
        name: String,
    },
}

pub async fn storage(c: &Client, out: Format, cmd: StorageCommand) -> anyhow::Result<()> {
    match cmd {
        StorageCommand::Keys(k) => {
            let cols = [
                col("ID", "id"),
                col("NAME", "name"),
                col("STATUS", "status"),
                col("CREATED", "created_at"),
            ];
            let v = match k {
                KeysCommand::List => c.get("/api/v1/storage/keys").await?,
                KeysCommand::Create { name } => {
                    let v = c
                        .post("/api/v1/storage/keys", &json!({"name": name}))
                        .await?;
                    if out == Format::Table {
                        println!("Access key id:     {}", v["id"].as_str().unwrap_or(""));
                        println!(
                            "Secret access key: {}",
                            v["secret_access_key"].as_str().unwrap_or("")
                        );
                        eprintln!("Keep the secret now: it is not shown again.");
                        return Ok(());
                    }
                    v
                }
                KeysCommand::Revoke { id } => {
                    c.delete(&format!("/api/v1/storage/keys/{id}")).await?
                }
            };
            output::print(out, &v, &cols);
        }
        StorageCommand::Buckets(b) => {
            let cols = [
                col("NAME", "name"),
                col("BYTES", "bytes"),
                col("OBJECTS", "objects"),
                col("CREATED", "created_at"),
            ];
            let v = match b {
                BucketsCommand::List => c.get("/api/v1/storage/buckets").await?,
                BucketsCommand::Create { name } => {
                    c.post("/api/v1/storage/buckets", &json!({"name": name}))
                        .await?
                }
                BucketsCommand::Delete { name } => {
                    c.delete(&format!("/api/v1/storage/buckets/{name}")).await?;
                    eprintln!("Bucket {name} deleted.");
                    return Ok(());
                }
            };
            output::print(out, &v, &cols);
        }
        StorageCommand::Usage { all: false } => {
            let v = c.get("/api/v1/storage/usage").await?;
            let row = json!({
                "bytes": v["bytes"], "objects": v["objects"],
                "quota_bytes": v["quota"]["bytes"], "quota_objects": v["quota"]["objects"],
            });
            output::print(
                out,
                &row,
                &[
                    col("BYTES", "bytes"),
                    col("OF", "quota_bytes"),
                    col("OBJECTS", "objects"),
                    col("OF", "quota_objects"),
                ],
            );
        }
        StorageCommand::Usage { all: true } => {
            let v = c.get("/api/v1/storage/usage/all").await?;
            output::print(
                out,
                &v,
                &[
                    col("SUBSCRIBER", "subscriber_id"),
                    col("BUCKETS", "buckets"),
                    col("BYTES", "bytes"),
                    col("OBJECTS", "objects"),
                ],
            );
        }
        StorageCommand::Quota {
            subscriber,
            bytes,
            objects,
            clear,
        } => {
            let path = format!("/api/v1/subscribers/{subscriber}/storage-quota");
            let v = match (bytes, objects, clear) {
                (Some(b), Some(o), false) => {
                    c.request(
                        reqwest::Method::PUT,
                        &path,
                        Some(&json!({"bytes": b, "objects": o})),
                    )
                    .await?
                }
                (None, None, true) => c.delete(&path).await?,
                _ => c.get(&path).await?,
            };
            output::print(
                out,
                &v,
                &[
                    col("BYTES", "bytes"),
                    col("OBJECTS", "objects"),
                    col("MANUAL", "manual"),
                ],
            );
        }
        StorageCommand::Status => {
            let v = c.get("/api/v1/storage/status").await?;
            if out != Format::Table {
                output::print(out, &v, &[]);
                return Ok(());
            }
            let s = &v["store"];
            println!(
                "Erasure coding: {} data + {} parity shards per block of {} bytes",
                s["data_shards"], s["parity_shards"], s["block_size"]
            );
            output::print(
                out,
                &s["disks"],
                &[
                    col("PATH", "path"),
                    col("ONLINE", "online"),
                    col("FREE", "free_bytes"),
                    col("TOTAL", "total_bytes"),
                ],
            );
            let p = &v["scrub"];
            println!(
                "Scrub: {} of {} objects checked in this pass; {} missing and {} corrupt shards found, {} repaired; last full pass: {}",
                p["objects_checked"], p["objects_total"], p["missing"], p["corrupt"], p["repaired"],
                p["last_pass_finished_at"].as_str().unwrap_or("none yet")
            );
            if let Some(lost) = p["unrecoverable"].as_array().filter(|a| !a.is_empty()) {
                println!("UNRECOVERABLE objects: {lost:?}");
            }
            println!("Deleted extents awaiting removal: {}", v["garbage_pending"]);
        }
    }
    Ok(())
}
