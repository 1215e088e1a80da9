//! One disk directory: its marker (`maocloud-disk.json`, the disk's random id), its layout
//! (`shards/<first 2 hex chars of the extent id>/<id>.<shard index>`, `tmp/` for files being
//! written, on the same filesystem so a rename is atomic), durable directory updates, and its
//! free space.

use crate::{codec, DiskStatus, Uuid};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub(crate) const MARKER: &str = "maocloud-disk.json";
const SHARDS: &str = "shards";
const TMP: &str = "tmp";

#[derive(Serialize, Deserialize)]
struct Marker {
    /// The disk's identity: extents record it for each shard, so a swapped disk is noticed.
    id: Uuid,
    format: u32,
}

pub(crate) struct Disk {
    pub path: PathBuf,
    /// The id read from (or written to) the marker; `None` while the disk is unusable.
    id: RwLock<Option<Uuid>>,
}

impl Disk {
    pub fn new(path: PathBuf) -> Disk {
        Disk {
            path,
            id: RwLock::new(None),
        }
    }

    pub fn id(&self) -> Option<Uuid> {
        *self.id.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn shards_dir(&self) -> PathBuf {
        self.path.join(SHARDS)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join(TMP)
    }

    pub fn shard_dir(&self, extent: Uuid) -> PathBuf {
        let hex = extent.simple().to_string();
        self.shards_dir().join(&hex[..2])
    }

    pub fn shard_path(&self, extent: Uuid, index: usize) -> PathBuf {
        self.shard_dir(extent).join(format!("{extent}.{index}"))
    }

    /// A fresh temporary path for shard `index` of `extent` (unique even if two writers race).
    pub fn tmp_path(&self, extent: Uuid, index: usize) -> PathBuf {
        let salt = u64::from_le_bytes(codec::random::<8>());
        self.tmp_dir().join(format!("{extent}.{index}.{salt:016x}"))
    }

    /// Makes the directory usable: creates it, its marker (atomically, with a fresh random id)
    /// and its subdirectories when missing. Used at open and when a scrub rebuilds shards onto a
    /// disk whose directory vanished. Returns the disk's id.
    pub fn prepare(&self) -> io::Result<Uuid> {
        let mut known = self.id.write().unwrap_or_else(|p| p.into_inner());
        fs::create_dir_all(&self.path)?;
        let id = match read_marker(&self.path) {
            Ok(id) => id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = uuid::Builder::from_random_bytes(codec::random::<16>()).into_uuid();
                write_marker(&self.path, id)?;
                if known.is_some() {
                    tracing::warn!(disk = %self.path.display(), %id,
                        "disk directory had lost its marker; it is now a new, empty disk");
                }
                id
            }
            Err(e) => return Err(e),
        };
        if let Some(old) = *known {
            if old != id {
                tracing::warn!(disk = %self.path.display(), %old, new = %id, "disk id changed");
            }
        }
        let mut created_top = create_dir(&self.tmp_dir())?;
        created_top |= create_dir(&self.shards_dir())?;
        let mut created_prefix = false;
        for p in 0..=255u8 {
            created_prefix |= create_dir(&self.shards_dir().join(format!("{p:02x}")))?;
        }
        if created_prefix {
            fsync_dir(&self.shards_dir())?;
        }
        if created_top {
            fsync_dir(&self.path)?;
        }
        *known = Some(id);
        Ok(id)
    }

    pub fn status(&self) -> DiskStatus {
        let on_disk = read_marker(&self.path).ok();
        let online = on_disk.is_some() && on_disk == self.id() && self.shards_dir().is_dir();
        let (total_bytes, free_bytes) = space(&self.path).unwrap_or((0, 0));
        DiskStatus {
            path: self.path.clone(),
            id: on_disk,
            online,
            total_bytes,
            free_bytes,
        }
    }
}

/// `true` when it created the directory.
fn create_dir(path: &Path) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn read_marker(dir: &Path) -> io::Result<Uuid> {
    let raw = fs::read(dir.join(MARKER))?;
    let m: Marker = serde_json::from_slice(&raw).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", dir.join(MARKER).display()),
        )
    })?;
    Ok(m.id)
}

/// Writes the marker atomically: temporary file, fsync, rename, fsync of the directory.
fn write_marker(dir: &Path, id: Uuid) -> io::Result<()> {
    let tmp = dir.join(format!(".{MARKER}.tmp"));
    let body = serde_json::to_vec_pretty(&Marker { id, format: 1 }).map_err(io::Error::other)?;
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(MARKER))?;
    fsync_dir(dir)
}

/// Makes a directory's entries (a create, rename or unlink in it) durable.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}

/// (total, available) bytes of the filesystem holding `path`.
fn space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter that
    // statvfs fills in; it is read only when the call succeeds.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}
