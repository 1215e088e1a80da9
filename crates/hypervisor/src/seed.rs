//! The cloud-init NoCloud seed of a VM: a small FAT image labelled `CIDATA` holding `meta-data`
//! (instance id, hostname, SSH keys) and `user-data` (the subscriber's, or a `#cloud-config`
//! installing the SSH keys), attached read-only. Made with `mkfs.vfat` (Debian's dosfstools)
//! and `mcopy` (mtools), without mounting anything.

use crate::host::{self, io_failed};
use crate::{AgentResult, Seed};
use std::path::Path;

/// The files of the seed, by name.
pub fn files(seed: &Seed) -> Vec<(&'static str, String)> {
    // JSON strings are YAML strings: quoting this way cannot be broken by what the subscriber
    // typed.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut meta = format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        quote(&seed.instance_id),
        quote(&seed.hostname)
    );
    if !seed.ssh_keys.is_empty() {
        meta.push_str("public-keys:\n");
        for key in &seed.ssh_keys {
            meta.push_str(&format!("  - {}\n", quote(key)));
        }
    }
    let user = match &seed.user_data {
        Some(user_data) => user_data.clone(),
        None => {
            let mut user = String::from("#cloud-config\n");
            if !seed.ssh_keys.is_empty() {
                user.push_str("ssh_authorized_keys:\n");
                for key in &seed.ssh_keys {
                    user.push_str(&format!("  - {}\n", quote(key)));
                }
            }
            user
        }
    };
    vec![("meta-data", meta), ("user-data", user)]
}

/// Writes the seed image of `seed` at `image` (through a temporary file, so a crash leaves the
/// old image or the new one).
pub async fn write(dir: &Path, image: &Path, seed: &Seed) -> AgentResult<()> {
    let staging = dir.join("seed.d");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io_failed(staging.display()))?;
    let files = files(seed);
    let mut content = 0usize;
    for (name, text) in &files {
        std::fs::write(staging.join(name), text).map_err(io_failed(name))?;
        content += text.len();
    }
    // FAT12 wants at least a few hundred KiB; leave room for clusters and the directory.
    let kib = (2048 + content * 2 / 1024).next_multiple_of(1024);
    let temporary = dir.join("seed.img.new");
    let _ = std::fs::remove_file(&temporary);
    host::run(
        "mkfs.vfat",
        &[
            "-n".as_ref(),
            "CIDATA".as_ref(),
            "-C".as_ref(),
            temporary.as_os_str(),
            kib.to_string().as_ref(),
        ],
        None,
    )
    .await?;
    // mtools checks the geometry of "floppies" unless told not to.
    let mut args: Vec<std::ffi::OsString> = vec![
        "MTOOLS_SKIP_CHECK=1".into(),
        "mcopy".into(),
        "-o".into(),
        "-i".into(),
        temporary.clone().into(),
    ];
    args.extend(
        files
            .iter()
            .map(|(name, _)| staging.join(name).into_os_string()),
    );
    args.push("::".into());
    host::run("env", &args, None).await?;
    std::fs::rename(&temporary, image).map_err(io_failed(image.display()))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}
