//! Images VMs boot from: operators import disk images (qcow2 or raw, from a file on the control
//! plane's host or an http(s) URL), checksum-verified and inspected — an image that points at a
//! backing file or an external data file is refused, since a guest disk made on it could read
//! the host's files. Kernel images (a kernel and an initramfs booted directly) serve small
//! guests such as the test guest. Every signed-in user sees the ready images.

use crate::{audit, App, Ctx, Error, Result};
use maocloud_datastore::compute::Image;
use maocloud_types::{ImageId, OperatorRole};
use serde_json::json;
use sha2::Digest;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// What an operator asks to import.
#[derive(Debug, Clone)]
pub struct ImportDisk {
    pub name: String,
    pub description: String,
    /// A path on the control plane's host, or an `http(s)://` URL.
    pub source: String,
    /// The expected SHA-256, hex.
    pub sha256: String,
}

/// A kernel image: a kernel and an initramfs booted directly.
#[derive(Debug, Clone)]
pub struct RegisterKernel {
    pub name: String,
    pub description: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
}

fn images_dir(app: &App) -> PathBuf {
    app.settings().data_dir.join("images")
}

pub fn check_name(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(Error::invalid(
            "name",
            "must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    Ok(name.to_string())
}

pub async fn list(app: &App, ctx: &Ctx) -> Result<Vec<Image>> {
    let all = ctx.require_operator(&[OperatorRole::Support]).is_ok();
    let mut tx = app.db().read().await?;
    Ok(tx.image_list(all).await?)
}

/// An image by id or name (retired ones only for operators).
pub async fn get(app: &App, ctx: &Ctx, id: &str) -> Result<Image> {
    let mut tx = app.db().read().await?;
    let i = tx.image_fetch(id).await?;
    if i.status != "ready" && ctx.require_operator(&[OperatorRole::Support]).is_err() {
        return Err(Error::NotFound);
    }
    Ok(i)
}

/// Retires an image: no new VM boots from it; VMs already made keep working.
pub async fn retire(app: &App, ctx: &Ctx, id: &str) -> Result<Image> {
    ctx.require_operator(&[])?;
    let mut tx = app.db().write().await?;
    let i = tx.image_fetch(id).await?;
    tx.image_set_status(i.id, "retired").await?;
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "image.retire",
        Some(&i.id.to_string()),
        None,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Image {
        status: "retired".into(),
        ..i
    })
}

/// Imports a disk image: copies or downloads it, verifies its checksum, inspects it, records it.
/// `progress` is told the bytes done so far and the total when known.
pub async fn import_disk(
    app: &App,
    ctx: &Ctx,
    req: ImportDisk,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<Image> {
    ctx.require_operator(&[])?;
    let name = check_name(&req.name)?;
    let want = req.sha256.trim().to_ascii_lowercase();
    if want.len() != 64 || !want.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "sha256",
            "must be the image's SHA-256 as 64 hex digits",
        ));
    }
    if app.db().read().await?.image_fetch(&name).await.is_ok() {
        return Err(Error::Conflict {
            field: Some("name".into()),
            reason: "an image with this name exists".into(),
        });
    }
    let id = ImageId::new();
    let dir = images_dir(app);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(Error::internal)?;
    let part = dir.join(format!("{id}.part"));
    let result = async {
        let (size, got) = fetch(&req.source, &part, progress).await?;
        if got != want {
            return Err(Error::invalid(
                "sha256",
                format!("does not match the image: its SHA-256 is {got}"),
            ));
        }
        let info = inspect(&part).await?;
        let path = dir.join(format!("{id}.{}", info.format));
        tokio::fs::rename(&part, &path)
            .await
            .map_err(Error::internal)?;
        Ok((size, got, info, path))
    }
    .await;
    let (size, sha, info, path) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    let image = Image {
        id,
        name,
        description: req.description.trim().chars().take(500).collect(),
        kind: "disk".into(),
        format: Some(info.format),
        path: Some(path.display().to_string()),
        kernel_path: None,
        initrd_path: None,
        cmdline: None,
        size_bytes: size as i64,
        sha256: sha,
        min_disk_gib: info.virtual_size.div_ceil(1 << 30).max(1) as i64,
        status: "ready".into(),
        created_at: app.now(),
    };
    save(app, ctx, &image).await?;
    Ok(image)
}

/// Registers a kernel image from files on the control plane's host (the demo's test guest).
pub async fn register_kernel(app: &App, ctx: &Ctx, req: RegisterKernel) -> Result<Image> {
    ctx.require_operator(&[])?;
    let name = check_name(&req.name)?;
    if let Ok(existing) = app.db().read().await?.image_fetch(&name).await {
        return Ok(existing);
    }
    let id = ImageId::new();
    let dir = images_dir(app).join(id.to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(Error::internal)?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut copy = |from: &Path, to: PathBuf| -> Result<String> {
        let bytes = std::fs::read(from).map_err(|e| {
            Error::invalid("kernel", format!("cannot read {}: {e}", from.display()))
        })?;
        hasher.update(&bytes);
        size += bytes.len() as u64;
        std::fs::write(&to, &bytes).map_err(Error::internal)?;
        Ok(to.display().to_string())
    };
    let kernel = copy(&req.kernel, dir.join("kernel"))?;
    let initrd = copy(&req.initrd, dir.join("initrd"))?;
    let image = Image {
        id,
        name,
        description: req.description,
        kind: "kernel".into(),
        format: None,
        path: None,
        kernel_path: Some(kernel),
        initrd_path: Some(initrd),
        cmdline: Some(req.cmdline),
        size_bytes: size as i64,
        sha256: hex(&hasher.finalize()),
        min_disk_gib: 1,
        status: "ready".into(),
        created_at: app.now(),
    };
    save(app, ctx, &image).await?;
    Ok(image)
}

async fn save(app: &App, ctx: &Ctx, image: &Image) -> Result<()> {
    let mut tx = app.db().write().await?;
    match tx.image_insert(image).await {
        Err(maocloud_datastore::Error::Conflict(_)) => {
            return Err(Error::Conflict {
                field: Some("name".into()),
                reason: "an image with this name exists".into(),
            })
        }
        r => r?,
    }
    audit::record(
        &mut tx,
        ctx,
        app.now(),
        "image.import",
        Some(&image.id.to_string()),
        None,
        json!({"name": image.name, "sha256": image.sha256}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies or downloads `source` to `to`, hashing on the way; returns size and SHA-256.
async fn fetch(
    source: &str,
    to: &Path,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<(u64, String)> {
    let mut out = tokio::fs::File::create(to).await.map_err(Error::internal)?;
    let mut hasher = sha2::Sha256::new();
    let mut done = 0u64;
    if source.starts_with("http://") || source.starts_with("https://") {
        let mut resp = reqwest::get(source)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::invalid("source", format!("cannot download: {e}")))?;
        let total = resp.content_length();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::invalid("source", format!("download interrupted: {e}")))?
        {
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(Error::internal)?;
            done += chunk.len() as u64;
            progress(done, total);
        }
    } else {
        let path = Path::new(source);
        if !path.is_absolute() {
            return Err(Error::invalid(
                "source",
                "must be an absolute path on the control plane's host or an http(s) URL",
            ));
        }
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::invalid("source", format!("cannot open: {e}")))?;
        let total = file.metadata().await.ok().map(|m| m.len());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::invalid("source", format!("cannot read: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).await.map_err(Error::internal)?;
            done += n as u64;
            progress(done, total);
        }
    }
    out.flush().await.map_err(Error::internal)?;
    Ok((done, hex(&hasher.finalize())))
}

struct Info {
    format: String,
    virtual_size: u64,
}

/// `qemu-img info` of an uploaded image: only qcow2 or raw, no backing file, no external data
/// file. The format is probed here and then always passed explicitly to QEMU.
async fn inspect(path: &Path) -> Result<Info> {
    let out = tokio::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .await
        .map_err(|e| Error::internal(format!("qemu-img cannot run (install qemu-utils): {e}")))?;
    if !out.status.success() {
        return Err(Error::invalid(
            "source",
            "is not a disk image qemu-img can read",
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(Error::internal)?;
    check_info(&v)
}

fn check_info(v: &serde_json::Value) -> Result<Info> {
    let format = v["format"].as_str().unwrap_or_default().to_string();
    if !matches!(format.as_str(), "qcow2" | "raw") {
        return Err(Error::invalid(
            "source",
            format!("is a {format} image; only qcow2 and raw are accepted"),
        ));
    }
    if v.get("backing-filename").is_some() || v.get("full-backing-filename").is_some() {
        return Err(Error::invalid(
            "source",
            "points at a backing file; upload a standalone image (qemu-img convert)",
        ));
    }
    if v.pointer("/format-specific/data/data-file").is_some() {
        return Err(Error::invalid(
            "source",
            "uses an external data file; upload a standalone image",
        ));
    }
    let virtual_size = v["virtual-size"].as_u64().unwrap_or(0);
    if virtual_size == 0 || virtual_size > (2048u64 << 30) {
        return Err(Error::invalid(
            "source",
            "has no sane virtual size (1 byte to 2 TiB)",
        ));
    }
    Ok(Info {
        format,
        virtual_size,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn refuses_backing_files_data_files_and_odd_formats() {
        let ok = json!({"format": "qcow2", "virtual-size": 1u64 << 30});
        assert_eq!(super::check_info(&ok).unwrap().format, "qcow2");
        for bad in [
            json!({"format": "qcow2", "virtual-size": 1024, "backing-filename": "/etc/shadow"}),
            json!({"format": "qcow2", "virtual-size": 1024, "format-specific": {"data": {"data-file": "/dev/sda"}}}),
            json!({"format": "vmdk", "virtual-size": 1024}),
            json!({"format": "raw", "virtual-size": 0}),
        ] {
            assert!(super::check_info(&bad).is_err(), "{bad}");
        }
    }
}

/// The file at `path` if it is one of an image's files (disk, kernel, initramfs), for a remote
/// host that proved who it is: hosts copy images from the control plane.
pub async fn file_for_host(
    app: &App,
    host: maocloud_types::HostId,
    secret: &str,
    path: &str,
) -> Result<PathBuf> {
    if !super::hosts::verify_agent(app, host, secret).await? {
        return Err(Error::Unauthenticated("not an agent of this platform"));
    }
    let mut tx = app.db().read().await?;
    tx.image_by_path(path).await?;
    Ok(PathBuf::from(path))
}
