//! What the agent reads from and runs on the host: commands (their stderr becomes the error),
//! processes seen through `/proc`, the host's CPUs, memory, free disk and name, and the KVM
//! probe that decides whether guests may run under KVM.

use crate::{AgentError, AgentResult};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Runs `program args…` to completion (at most a minute), feeding it `stdin`; returns its stdout,
/// or its stderr as a `Failed` error.
pub async fn run<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    stdin: Option<&[u8]>,
) -> AgentResult<String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = || {
        let args: Vec<_> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        format!("{program} {}", args.join(" "))
    };
    let mut child = command
        .spawn()
        .map_err(|e| AgentError::Failed(format!("cannot run {program}: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .await
            .map_err(|e| AgentError::Failed(format!("{}: writing stdin: {e}", shown())))?;
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| AgentError::Failed(format!("{} timed out", shown())))?
        .map_err(|e| AgentError::Failed(format!("{}: {e}", shown())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(AgentError::Failed(format!(
            "{} failed ({}): {}",
            shown(),
            output.status,
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Wraps an I/O error on `what` as a `Failed` error.
pub fn io_failed(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> AgentError {
    move |e| AgentError::Failed(format!("{what}: {e}"))
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Whether process `pid`'s command line contains `needle` as one of its words or within one.
pub fn cmdline_contains(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| {
            cmdline
                .split(|b| *b == 0)
                .any(|arg| String::from_utf8_lossy(arg).contains(needle))
        })
        .unwrap_or(false)
}

/// User + system CPU time of process `pid`, in nanoseconds.
pub fn cpu_time_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)?;
    Some((utime + stime) * (1_000_000_000 / ticks))
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Sends `signal` to `pid`; a missing process is not an error.
pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Waits until `pid` is gone (or a zombie), at most `limit`; returns whether it is gone.
pub async fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !alive(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// `MemTotal` from `/proc/meminfo`, in MiB.
pub fn memory_total_mib() -> u32 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| u32::try_from(kib / 1024).unwrap_or(u32::MAX))
}

/// Space available to unprivileged users on the filesystem of `path`, in GiB.
pub fn free_disk_gib(path: &Path) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return 0;
    }
    // The field types vary across targets.
    #[allow(clippy::useless_conversion)]
    let bytes = u64::from(stat.f_bavail).saturating_mul(stat.f_frsize);
    u32::try_from(bytes >> 30).unwrap_or(u32::MAX)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A 64-bit-mode probe guest for `-kernel` (a multiboot image with the a.out kludge, loaded at
/// 1 MiB): it maps the first GiB with 2 MiB pages, enters long mode, writes 32 MiB of memory,
/// then writes 0x10 to an `isa-debug-exit` device at port 0xf4, which makes QEMU exit with
/// status (0x10 << 1) | 1 = 33. A host whose KVM opens but runs guests at a crawl (nested KVM
/// where every page fault takes a millisecond: Linux's decompressor never finishes) misses the
/// deadline; under a working KVM it takes milliseconds.
///
/// Assembled with `as --32` + `objcopy -O binary` from:
/// ```text
/// .code32 ; BASE = 0x100000
/// hdr:   .long 0x1BADB002, 0x00010000, -(0x1BADB002+0x00010000)
///        .long BASE+hdr, BASE, BASE+end, BASE+end, BASE+entry
/// entry: mov $0x110000,%edi; xor %eax,%eax; mov $3072,%ecx; rep stosl     # clear 3 tables
///        movl $0x111003,0x110000; movl $0x112003,0x111000                 # PML4 -> PDPT -> PD
///        mov $0x112000,%edi; mov $0x83,%eax; mov $512,%ecx
/// 2:     mov %eax,(%edi); add $0x200000,%eax; add $8,%edi; loop 2b        # 512 x 2 MiB pages
///        mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4                      # PAE
///        mov $0x110000,%eax; mov %eax,%cr3
///        mov $0xC0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr               # EFER.LME
///        mov %cr0,%eax; or $0x80000001,%eax; mov %eax,%cr0                # PG | PE
///        lgdt BASE+gdtr; ljmp $0x08, $BASE+lm
/// .code64
/// lm:    mov $0x400000,%rdi; mov $0x400000,%rcx; mov $0x5a5a5a5a5a5a5a5a,%rax
///        rep stosq                                                        # 32 MiB from 4 MiB
///        mov $0xf4,%dx; mov $0x10,%al; out %al,%dx
/// 1:     hlt; jmp 1b
/// gdt:   .quad 0, 0x00209A0000000000, 0x0000920000000000
/// gdtr:  .word 23; .long BASE+gdt
/// end:
/// ```
const KVM_PROBE: [u8; 222] = [
    0x02, 0xb0, 0xad, 0x1b, 0x00, 0x00, 0x01, 0x00, 0xfe, 0x4f, 0x51, 0xe4, 0x00, 0x00, 0x10, 0x00,
    0x00, 0x00, 0x10, 0x00, 0xde, 0x00, 0x10, 0x00, 0xde, 0x00, 0x10, 0x00, 0x20, 0x00, 0x10, 0x00,
    0xbf, 0x00, 0x00, 0x11, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05,
    0x00, 0x00, 0x11, 0x00, 0x03, 0x10, 0x11, 0x00, 0xc7, 0x05, 0x00, 0x10, 0x11, 0x00, 0x03, 0x20,
    0x11, 0x00, 0xbf, 0x00, 0x20, 0x11, 0x00, 0xb8, 0x83, 0x00, 0x00, 0x00, 0xb9, 0x00, 0x02, 0x00,
    0x00, 0x89, 0x07, 0x05, 0x00, 0x00, 0x20, 0x00, 0x83, 0xc7, 0x08, 0xe2, 0xf4, 0x0f, 0x20, 0xe0,
    0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x00, 0x11, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80,
    0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d,
    0x01, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0x0f, 0x01, 0x15, 0xd8, 0x00, 0x10, 0x00, 0xea, 0x95,
    0x00, 0x10, 0x00, 0x08, 0x00, 0x48, 0xc7, 0xc7, 0x00, 0x00, 0x40, 0x00, 0x48, 0xc7, 0xc1, 0x00,
    0x00, 0x40, 0x00, 0x48, 0xb8, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0xf3, 0x48, 0xab,
    0x66, 0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd, 0x8d, 0xb6, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x92, 0x00, 0x00, 0x17, 0x00, 0xc0, 0x00, 0x10, 0x00,
];

/// How long the probe guest may take, QEMU's start included.
const KVM_PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// Runs the probe guest under KVM with the CPU model real guests get; Ok if it finished in time.
pub async fn probe_kvm(qemu: &Path, machine: &str, work_dir: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    let payload = work_dir.join("kvm-probe.bin");
    std::fs::write(&payload, KVM_PROBE)
        .map_err(|e| format!("writing {}: {e}", payload.display()))?;
    let mut child = Command::new(qemu)
        .args([
            "-machine", machine, "-accel", "kvm", "-cpu", "host", "-m", "64",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-vga",
            "none",
        ])
        .arg("-kernel")
        .arg(&payload)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    let stderr = child.stderr.take();
    let outcome = tokio::time::timeout(KVM_PROBE_DEADLINE, child.wait()).await;
    let _ = std::fs::remove_file(&payload);
    match outcome {
        Ok(Ok(status)) if status.code() == Some(33) => Ok(()),
        Ok(Ok(status)) => {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                use tokio::io::AsyncReadExt;
                let _ = stderr.read_to_string(&mut text).await;
            }
            Err(format!("probe guest ended with {status}: {}", text.trim()))
        }
        Ok(Err(e)) => Err(format!("waiting for the probe guest: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!(
                "probe guest did not finish within {KVM_PROBE_DEADLINE:?}"
            ))
        }
    }
}
