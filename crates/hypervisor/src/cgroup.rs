//! Bounds each guest's QEMU with cgroups: a CPU quota of vCPUs × 100 % plus half a CPU for
//! QEMU's own threads (main loop, I/O: without it they steal from the vCPUs, and a TCG guest
//! boots ~10 % slower than unbounded), and a memory limit of
//! the guest's memory plus QEMU's overhead. Works with cgroup v1 (the `cpu` and `memory`
//! hierarchies) and v2; where neither can be written the agent runs guests unbounded and says so
//! in its report.
//!
//! The groups live in a `maocloud` group: on v1 under the agent's own group of each hierarchy
//! (nesting keeps whatever limits the agent itself is under); on v2 beside the agent's group
//! (v2 forbids processes in a group whose controllers are delegated). QEMU enters its group
//! before it execs (see [`join_before_exec`]), so not one page escapes the limit.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
pub enum Cgroups {
    V1 { cpu: PathBuf, memory: PathBuf },
    V2 { base: PathBuf },
}

/// A guest's groups (one per hierarchy on v1, one on v2).
#[derive(Debug, Clone, Default)]
pub struct Groups(pub Vec<PathBuf>);

impl Cgroups {
    /// Finds writable cpu and memory controllers; the error says why there are none.
    pub fn detect() -> Result<Cgroups, String> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let mounts = parse_mounts(&mountinfo);
        let v1 = |controller: &str| {
            let (mount, root) = mounts
                .iter()
                .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == controller))
                .map(|m| (m.point.clone(), m.root.clone()))?;
            let path = own_path(&own, Some(controller))?;
            Some(under(&mount, &root, &path).join("maocloud"))
        };
        let found = match (v1("cpu"), v1("memory")) {
            (Some(cpu), Some(memory)) => Cgroups::V1 { cpu, memory },
            _ => {
                let mount = mounts
                    .iter()
                    .find(|m| {
                        m.fstype == "cgroup2"
                            && std::fs::read_to_string(m.point.join("cgroup.controllers"))
                                .is_ok_and(|c| {
                                    c.split_whitespace().any(|x| x == "cpu")
                                        && c.split_whitespace().any(|x| x == "memory")
                                })
                    })
                    .ok_or("no cgroup hierarchy offers the cpu and memory controllers")?;
                let path = own_path(&own, None).ok_or("cannot find this process's cgroup")?;
                let own_dir = under(&mount.point, &mount.root, &path);
                let parent = if own_dir == mount.point {
                    own_dir
                } else {
                    own_dir.parent().map(Path::to_path_buf).unwrap_or(own_dir)
                };
                Cgroups::V2 {
                    base: parent.join("maocloud"),
                }
            }
        };
        found
            .prepare_base()
            .map_err(|e| format!("{}: {e}", found.describe()))?;
        Ok(found)
    }

    pub fn describe(&self) -> String {
        match self {
            Cgroups::V1 { cpu, memory } => {
                format!("cgroup v1 ({}, {})", cpu.display(), memory.display())
            }
            Cgroups::V2 { base } => format!("cgroup v2 ({})", base.display()),
        }
    }

    fn prepare_base(&self) -> std::io::Result<()> {
        match self {
            Cgroups::V1 { cpu, memory } => {
                std::fs::create_dir_all(cpu)?;
                std::fs::create_dir_all(memory)
            }
            Cgroups::V2 { base } => {
                if let Some(parent) = base.parent() {
                    enable_controllers(parent)?;
                }
                std::fs::create_dir_all(base)?;
                enable_controllers(base)
            }
        }
    }

    /// Creates (or updates) the groups of guest `name` with its limits.
    pub fn prepare(&self, name: &str, vcpus: u32, memory_bytes: u64) -> std::io::Result<Groups> {
        let quota = u64::from(vcpus.max(1)) * PERIOD_US + PERIOD_US / 2;
        match self {
            Cgroups::V1 { cpu, memory } => {
                let cpu = cpu.join(name);
                let memory = memory.join(name);
                std::fs::create_dir_all(&cpu)?;
                std::fs::create_dir_all(&memory)?;
                std::fs::write(cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                std::fs::write(cpu.join("cpu.cfs_quota_us"), quota.to_string())?;
                std::fs::write(
                    memory.join("memory.limit_in_bytes"),
                    memory_bytes.to_string(),
                )?;
                Ok(Groups(vec![cpu, memory]))
            }
            Cgroups::V2 { base } => {
                let group = base.join(name);
                std::fs::create_dir_all(&group)?;
                std::fs::write(group.join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
                std::fs::write(group.join("memory.max"), memory_bytes.to_string())?;
                Ok(Groups(vec![group]))
            }
        }
    }
}

impl Groups {
    /// Removes the groups (they must be empty: QEMU gone); errors are ignored.
    pub fn remove(&self) {
        for group in &self.0 {
            let _ = std::fs::remove_dir(group);
        }
    }

    /// The `cgroup.procs` files to join, as C strings ready for [`join_before_exec`].
    pub fn procs_files(&self) -> Vec<CString> {
        self.0
            .iter()
            .filter_map(|g| CString::new(g.join("cgroup.procs").as_os_str().as_bytes()).ok())
            .collect()
    }
}

/// Moves the calling process into each group by writing "0" to its `cgroup.procs`. Meant for
/// `pre_exec`: only async-signal-safe calls (open, write, close), no allocation.
pub fn join_before_exec(procs_files: &[CString]) -> std::io::Result<()> {
    for file in procs_files {
        // SAFETY: a valid C string; the fd is closed before returning.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let error = std::io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(error);
            }
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path) -> std::io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&file)?;
    let has = |c: &str| enabled.split_whitespace().any(|x| x == c);
    if has("cpu") && has("memory") {
        return Ok(());
    }
    std::fs::write(&file, "+cpu +memory")
}

struct Mount {
    root: PathBuf,
    point: PathBuf,
    fstype: String,
    options: String,
}

/// `/proc/self/mountinfo`: `id parent dev root point opts [tags…] - fstype source superopts`.
fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: PathBuf::from(unescape(left.get(3)?)),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype: (*right.first()?).to_owned(),
                options: (*right.get(2)?).to_owned(),
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// This process's group in the v1 hierarchy holding `controller`, or in v2 (`None`).
fn own_path(own: &str, controller: Option<&str>) -> Option<String> {
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            Some(c) => controllers.split(',').any(|x| x == c),
            None => controllers.is_empty(),
        };
        hit.then(|| path.to_owned())
    })
}

/// The directory of group `path` in a hierarchy mounted at `point` whose root is `root`.
fn under(point: &Path, root: &Path, path: &str) -> PathBuf {
    let relative = Path::new(path)
        .strip_prefix(root)
        .unwrap_or(Path::new(path));
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    point.join(relative)
}
