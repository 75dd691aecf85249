//! Host tuning checks for `corelog tune`: does this machine give the shards
//! what they need (locked memory, io_uring, quiet cores, a DMA-capable data
//! disk, socket limits)? Runs on the CLI thread before or instead of the
//! broker, never on a shard, so it may use `std::fs` freely.
//!
//! Shaped as DESIGN.md asks of logic that decides: every check is a pure
//! function of the text of /proc and /sys files (a [`HostSnapshot`]), unit
//! tested with sample contents; [`HostSnapshot::read`] is the only part that
//! touches the real host. Checks never change anything; each [`Finding`] may
//! carry the runtime-only [`Fix`]es `tune --apply` is allowed to write.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::memlock::{GLOMMIO_MIN_MEMLOCK_BYTES, IO_MEMORY_BYTES_PER_EXECUTOR};

/// Rings per glommio executor that register the DMA pool (mirrors the private
/// constant in `memlock.rs`: main, latency and poll rings).
const RINGS_PER_EXECUTOR: u64 = 3;
/// glommio's io_uring use (registered buffers, the features it probes) needs 5.8.
const KERNEL_MIN: (u32, u32) = (5, 8);
/// Each shard listens with this backlog (glommio's `TcpListener::bind`).
const LISTEN_BACKLOG: u64 = 1024;
/// Socket buffer ceiling that lets one connection carry a large produce or
/// fetch at 10-25 Gb/s without the window closing.
const SOCKET_BUFFER_BYTES_MIN: u64 = 16 << 20;
/// Connections plus segment and index files of thousands of partitions.
const OPEN_FILES_MIN: u64 = 100_000;
/// Per-CPU packet input queue deep enough for line-rate bursts.
const NETDEV_BACKLOG_MIN: u64 = 16_384;
/// Requests a block queue should hold so shards' DMA writes and reads overlap.
const NR_REQUESTS_MIN: u64 = 256;
/// `CAP_SYS_RESOURCE`: lets a process raise its hard rlimits.
const CAP_SYS_RESOURCE_BIT: u32 = 24;

/// How a check came out. `Warn` is a recommendation the host misses; it never
/// makes `tune --check` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.pad(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Info => "INFO",
        })
    }
}

/// A runtime-only change `tune --apply` may make: write `value` to `path`
/// (under /proc/sys or /sys). Nothing persistent is ever written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub path: PathBuf,
    pub value: String,
}

/// One row of the `tune --check` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: String,
    pub current: String,
    pub recommended: String,
    pub status: Status,
    /// One line: why this matters to corelog.
    pub why: String,
    /// Extra lines printed under the table (IRQ lines, for example).
    pub details: Vec<String>,
    pub fixes: Vec<Fix>,
}

impl Finding {
    fn new(check: &str, current: String, recommended: &str, status: Status, why: &str) -> Self {
        Finding {
            check: check.to_string(),
            current,
            recommended: recommended.to_string(),
            status,
            why: why.to_string(),
            details: Vec::new(),
            fixes: Vec::new(),
        }
    }

    fn with_fix(mut self, path: impl Into<PathBuf>, value: impl Into<String>) -> Self {
        self.fixes.push(Fix {
            path: path.into(),
            value: value.into(),
        });
        self
    }
}

/// A soft and hard resource limit; `u64::MAX` is unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

/// The data directory's storage, as read from the host.
#[derive(Debug, Clone, Default)]
pub struct DataDirSnapshot {
    /// `--data-dir` as given, made absolute.
    pub path: PathBuf,
    /// Whether `path` exists yet (`corelog serve` creates it).
    pub exists: bool,
    /// The directory actually examined, symlinks resolved: `path`, or its
    /// nearest existing ancestor when `path` does not exist yet.
    pub probed_path: PathBuf,
    /// `st_dev` of `probed_path` as (major, minor).
    pub device: Option<(u32, u32)>,
    /// Text of /proc/self/mountinfo.
    pub mountinfo: Option<String>,
    /// Kernel name of the whole disk under /sys/dev/block (`nvme0n1`).
    pub disk_name: Option<String>,
    /// `queue/scheduler`, `queue/nr_requests`, `queue/rotational` texts.
    pub scheduler: Option<String>,
    pub nr_requests: Option<String>,
    pub rotational: Option<String>,
    /// Outcome of creating a scratch file with O_DIRECT and writing one
    /// aligned block to it: `Err` holds the OS error.
    pub o_direct: Option<Result<(), String>>,
}

/// Everything the checks look at, as raw file text (`None`: absent or
/// unreadable). Build one with [`HostSnapshot::read`] or by hand in tests.
#[derive(Debug, Clone, Default)]
pub struct HostSnapshot {
    /// /proc/sys/kernel/osrelease.
    pub kernel_release: Option<String>,
    /// /proc/sys/kernel/io_uring_disabled (Linux 6.6+).
    pub io_uring_disabled: Option<String>,
    /// Result of an `io_uring_setup` probe: `Err(errno)` when refused.
    pub io_uring_probe: Option<Result<(), i32>>,
    pub memlock: Option<Limit>,
    pub nofile: Option<Limit>,
    /// /proc/self/status (for CapEff).
    pub process_status: Option<String>,
    /// CPUs this process may run on (sched_getaffinity), as the broker picks.
    pub allowed_cpus: Vec<usize>,
    /// /sys/devices/system/cpu/online and .../isolated.
    pub online_cpus: Option<String>,
    pub isolated_cpus: Option<String>,
    /// /proc/cmdline.
    pub cmdline: Option<String>,
    /// scaling_governor of each CPU a shard would be pinned to.
    pub governors: Vec<(usize, Option<String>)>,
    /// /sys/kernel/mm/transparent_hugepage/enabled.
    pub transparent_hugepage: Option<String>,
    /// /proc/interrupts.
    pub interrupts: Option<String>,
    /// Names identifying NIC queues in /proc/interrupts: interface names and
    /// their device names (`eth0`, `virtio2`, `0000:3b:00.0`).
    pub nic_names: Vec<String>,
    /// Where each of the NIC's IRQs may and does fire.
    pub irq_affinity: BTreeMap<u32, IrqAffinity>,
    /// Values of the sysctls in [`SYSCTLS`], by dotted name.
    pub sysctls: BTreeMap<String, String>,
    pub data_dir: Option<DataDirSnapshot>,
}

/// /proc/irq/N/smp_affinity_list (CPUs allowed) and, where the kernel has
/// it, effective_affinity_list (the CPU the IRQ is actually routed to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IrqAffinity {
    pub allowed: String,
    pub effective: Option<String>,
}

/// The sysctls the checks read, by dotted name.
pub const SYSCTLS: &[&str] = &[
    "net.core.somaxconn",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.core.netdev_max_backlog",
    "vm.swappiness",
    "vm.overcommit_memory",
    "fs.file-max",
    "fs.aio-max-nr",
];

/// `/proc/sys/...` path of a dotted sysctl name.
pub fn sysctl_path(name: &str) -> PathBuf {
    Path::new("/proc/sys").join(name.replace('.', "/"))
}

/// The CPUs `corelog serve --cores shards` pins its shards to: the allowed
/// CPUs in order, wrapping around (as `server::broker` does).
pub fn broker_cpus(allowed_cpus: &[usize], shards: usize) -> Vec<usize> {
    if allowed_cpus.is_empty() {
        return Vec::new();
    }
    let mut cpus: Vec<usize> = (0..shards)
        .map(|shard| allowed_cpus[shard % allowed_cpus.len()])
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// Runs every check for `shards` shards.
pub fn check_all(host: &HostSnapshot, shards: usize) -> Vec<Finding> {
    let cores = broker_cpus(&host.allowed_cpus, shards);
    let mut findings = vec![
        check_memlock(host.memlock, has_cap_sys_resource(host), shards),
        check_io_uring(
            host.kernel_release.as_deref(),
            host.io_uring_disabled.as_deref(),
            host.io_uring_probe,
        ),
        check_cpu_count(&host.allowed_cpus, host.online_cpus.as_deref(), shards),
        check_isolation(&cores, host.isolated_cpus.as_deref()),
        check_nohz_full(&cores, host.cmdline.as_deref()),
        check_governor(&host.governors),
        check_nic_irqs(
            host.interrupts.as_deref(),
            &host.nic_names,
            &host.irq_affinity,
            &cores,
        ),
        check_transparent_hugepage(host.transparent_hugepage.as_deref()),
    ];
    if let Some(data_dir) = &host.data_dir {
        findings.extend(check_data_dir(data_dir));
    }
    findings.extend(check_sysctls(&host.sysctls));
    findings.push(check_nofile(host.nofile));
    findings
}

fn has_cap_sys_resource(host: &HostSnapshot) -> bool {
    host.process_status
        .as_deref()
        .and_then(|status| has_capability(status, CAP_SYS_RESOURCE_BIT))
        .unwrap_or(false)
}

// ---- parsers -------------------------------------------------------------

/// The bracketed choice of a sysfs selector: `always [madvise] never` -> `madvise`.
pub fn selected_choice(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = start + text[start..].find(']')?;
    Some(&text[start + 1..end])
}

/// A kernel CPU list (`0-3,8,10-11`); the empty list is valid.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
                if last < first || last - first > 1 << 16 {
                    return None;
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Formats CPUs as a kernel CPU list: `[0, 1, 2, 5]` -> `0-2,5`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<String> = Vec::new();
    let mut index = 0;
    while index < sorted.len() {
        let first = sorted[index];
        let mut last = first;
        while index + 1 < sorted.len() && sorted[index + 1] == last + 1 {
            index += 1;
            last = sorted[index];
        }
        ranges.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
        index += 1;
    }
    ranges.join(",")
}

/// Major and minor version of a kernel release (`6.8.0-45-generic` -> (6, 8)).
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Value of `name=value` on the kernel command line (`Some("")` for a bare flag).
pub fn cmdline_param<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .take_while(|word| *word != "--") // the rest belongs to init
        .find_map(|word| match word.split_once('=') {
            Some((key, value)) if key == name => Some(value),
            None if word == name => Some(""),
            _ => None,
        })
}

/// Whether capability `bit` is in the `CapEff:` line of /proc/self/status.
pub fn has_capability(status: &str, bit: u32) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(mask & (1 << bit) != 0)
}

/// One line of /proc/self/mountinfo, the fields the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: (u32, u32),
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Parses a mountinfo line: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
pub fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split_whitespace().collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let mut after = after.split_whitespace();
    Some(MountEntry {
        device: (major.parse().ok()?, minor.parse().ok()?),
        mount_point: PathBuf::from(unescape_mountinfo(fields.get(4)?)),
        fs_type: after.next()?.to_string(),
        source: unescape_mountinfo(after.next().unwrap_or("none")),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[index], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                index += 4;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` (absolute, symlinks resolved): the longest mount
/// point that is a prefix of it, preferring entries whose device matches
/// `device` (the path's `st_dev`) when given. Later mounts shadow earlier ones.
pub fn find_mount(mountinfo: &str, path: &Path, device: Option<(u32, u32)>) -> Option<MountEntry> {
    let candidates: Vec<MountEntry> = mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .filter(|entry| path.starts_with(&entry.mount_point))
        .collect();
    let best = |entries: Vec<&MountEntry>| {
        entries
            .into_iter()
            .rev()
            .max_by_key(|entry| entry.mount_point.components().count())
            .cloned()
    };
    let matching: Vec<&MountEntry> = candidates
        .iter()
        .filter(|entry| Some(entry.device) == device)
        .collect();
    best(matching).or_else(|| best(candidates.iter().collect()))
}

/// An IRQ line of /proc/interrupts that belongs to a NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIrq {
    pub irq: u32,
    /// Interrupts handled so far, per CPU column.
    pub counts: Vec<u64>,
    /// The action name, e.g. `mlx5_comp3@pci:0000:3b:00.0` or `eth0-TxRx-2`.
    pub name: String,
}

/// The numbered IRQ lines of /proc/interrupts whose action names mention
/// one of `nic_names` as a whole word (`eth0` matches `eth0-TxRx-0`, not `eth01`).
pub fn nic_irqs(interrupts: &str, nic_names: &[String]) -> Vec<NicIrq> {
    let mut lines = interrupts.lines();
    let cpu_columns = lines
        .next()
        .map(|header| header.split_whitespace().count())
        .unwrap_or(0);
    lines
        .filter_map(|line| {
            let (irq, rest) = line.trim_start().split_once(':')?;
            let irq: u32 = irq.parse().ok()?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let counts: Vec<u64> = fields
                .iter()
                .take(cpu_columns)
                .map_while(|field| field.parse().ok())
                .collect();
            let name = fields.last()?.to_string();
            let mentions_nic = fields[counts.len()..]
                .iter()
                .any(|field| nic_names.iter().any(|nic| mentions_word(field, nic)));
            mentions_nic.then_some(NicIrq { irq, counts, name })
        })
        .collect()
}

fn mentions_word(haystack: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    haystack.match_indices(word).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + word.len()..].chars().next();
        let is_boundary = |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric());
        is_boundary(before) && is_boundary(after)
    })
}

/// Bytes as a short human string: 16777216 -> `16 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    if bytes == u64::MAX {
        return "unlimited".into();
    }
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        return format!("{} GiB", bytes >> 30);
    }
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        return format!("{} MiB", bytes >> 20);
    }
    if bytes >= 1 << 20 {
        return format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64);
    }
    if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        return format!("{} KiB", bytes >> 10);
    }
    format!("{bytes} B")
}

fn format_count(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

fn parse_number(text: Option<&str>) -> Option<u64> {
    text?.trim().parse().ok()
}

// ---- checks --------------------------------------------------------------

/// RLIMIT_MEMLOCK the broker asks for with `shards` shards (see `memlock.rs`).
pub fn memlock_wanted_bytes(shards: usize) -> u64 {
    GLOMMIO_MIN_MEMLOCK_BYTES
        + shards.max(1) as u64 * IO_MEMORY_BYTES_PER_EXECUTOR as u64 * RINGS_PER_EXECUTOR
}

/// corelog raises the soft limit itself up to the hard one (any hard limit
/// with CAP_SYS_RESOURCE), so what counts is what it can reach.
pub fn check_memlock(limit: Option<Limit>, can_raise_hard: bool, shards: usize) -> Finding {
    const CHECK: &str = "RLIMIT_MEMLOCK";
    let wanted = memlock_wanted_bytes(shards);
    let recommended = format!(">= {} (or unlimited)", format_bytes(wanted));
    let Some(limit) = limit else {
        return Finding::new(
            CHECK,
            "unknown".into(),
            &recommended,
            Status::Warn,
            "could not read the limit; glommio needs 512 KiB per process to start an executor",
        );
    };
    let current = format!(
        "soft {} / hard {}",
        format_bytes(limit.soft),
        format_bytes(limit.hard)
    );
    let reachable = if can_raise_hard {
        u64::MAX
    } else {
        limit.soft.max(limit.hard)
    };
    let (status, why) = if reachable >= wanted {
        (Status::Ok, format!(
            "glommio needs 512 KiB to start a shard; corelog raises the soft limit to register 2 MiB DMA buffers x {RINGS_PER_EXECUTOR} rings per shard"
        ))
    } else if reachable >= GLOMMIO_MIN_MEMLOCK_BYTES {
        (Status::Warn, format!(
            "corelog will run with smaller registered DMA buffers ({} reachable, {shards} shards want {})",
            format_bytes(reachable), format_bytes(wanted)
        ))
    } else {
        (
            Status::Warn,
            "below glommio's 512 KiB minimum: `corelog serve` refuses to start".into(),
        )
    };
    let mut finding = Finding::new(CHECK, current, &recommended, status, "");
    finding.why = why;
    finding
}

/// glommio needs io_uring from Linux 5.8, not disabled by sysctl or seccomp.
pub fn check_io_uring(
    kernel_release: Option<&str>,
    io_uring_disabled: Option<&str>,
    probe: Option<Result<(), i32>>,
) -> Finding {
    const CHECK: &str = "io_uring";
    let version = kernel_release.and_then(parse_kernel_version);
    let disabled = parse_number(io_uring_disabled);
    let mut current = match (kernel_release, version) {
        (Some(release), _) => format!("kernel {}", release.trim()),
        (None, _) => "kernel unknown".to_string(),
    };
    if let Some(disabled) = disabled {
        current.push_str(&format!(", io_uring_disabled={disabled}"));
    }
    let recommended = "kernel >= 5.8, io_uring_disabled=0";
    let too_old = version.is_some_and(|version| version < KERNEL_MIN);
    let (status, why) = if too_old {
        (
            Status::Warn,
            "glommio needs Linux 5.8+ for the io_uring features every shard uses".to_string(),
        )
    } else if let Some(Err(errno)) = probe {
        current.push_str(&format!(", io_uring_setup failed (errno {errno})"));
        (Status::Warn, "io_uring_setup is refused (io_uring_disabled, seccomp in a container, or an LSM): shards cannot start".to_string())
    } else if disabled == Some(2) {
        (
            Status::Warn,
            "io_uring is disabled for every process: shards cannot start".to_string(),
        )
    } else if disabled == Some(1) {
        (
            Status::Info,
            "io_uring only for root and kernel.io_uring_group members; run corelog as one of them"
                .to_string(),
        )
    } else {
        (
            Status::Ok,
            "every shard is a glommio executor driving three io_uring rings".to_string(),
        )
    };
    let mut finding = Finding::new(CHECK, current, recommended, status, "");
    finding.why = why;
    finding
}

/// One shard per core: more shards than usable CPUs makes pinned executors share a core.
pub fn check_cpu_count(
    allowed_cpus: &[usize],
    online_cpus: Option<&str>,
    shards: usize,
) -> Finding {
    let online = online_cpus.and_then(parse_cpu_list).map(|cpus| cpus.len());
    let current = match online {
        Some(online) => format!(
            "{shards} shards, {} usable of {online} online",
            allowed_cpus.len()
        ),
        None => format!("{shards} shards, {} usable", allowed_cpus.len()),
    };
    let recommended = format!("shards <= usable CPUs ({})", allowed_cpus.len());
    if shards > allowed_cpus.len() {
        return Finding::new("CPUs vs shards", current, &recommended, Status::Warn,
            "each shard is pinned to its own core; extra shards share cores and stall each other's reactors");
    }
    let (status, why) = if shards == allowed_cpus.len() && shards > 1 {
        (Status::Info, "every usable core runs a shard; leaving one for IRQs and housekeeping (--cores N-1) steadies tail latency")
    } else {
        (
            Status::Ok,
            "one pinned glommio executor (shard) per core, nothing shares a core",
        )
    };
    Finding::new("CPUs vs shards", current, &recommended, status, why)
}

/// Broker cores should be in `isolcpus` so the scheduler keeps other work off them.
pub fn check_isolation(broker_cpus: &[usize], isolated: Option<&str>) -> Finding {
    let isolated = isolated.and_then(parse_cpu_list).unwrap_or_default();
    let current = if isolated.is_empty() {
        "none isolated".to_string()
    } else {
        format!("isolated {}", format_cpu_list(&isolated))
    };
    let recommended = format!("isolcpus={}", format_cpu_list(broker_cpus));
    let covered = !broker_cpus.is_empty() && broker_cpus.iter().all(|cpu| isolated.contains(cpu));
    let (status, why) = if covered {
        (
            Status::Ok,
            "the scheduler keeps other threads off the shards' cores",
        )
    } else if !isolated.is_empty() {
        (Status::Info, "isolated CPUs are outside this process's affinity; start corelog with `taskset -c <isolated>` to use them")
    } else {
        (
            Status::Info,
            "optional: isolating the shards' cores keeps other threads from preempting a reactor",
        )
    };
    Finding::new("CPU isolation", current, &recommended, status, why)
}

/// `nohz_full` stops the scheduler tick on a core running a single thread.
pub fn check_nohz_full(broker_cpus: &[usize], cmdline: Option<&str>) -> Finding {
    let value = cmdline.and_then(|cmdline| cmdline_param(cmdline, "nohz_full"));
    let current = match value {
        Some(value) => format!("nohz_full={value}"),
        None => "not set".to_string(),
    };
    let recommended = format!("nohz_full={}", format_cpu_list(broker_cpus));
    let covered = value.and_then(parse_cpu_list).is_some_and(|cpus| {
        !broker_cpus.is_empty() && broker_cpus.iter().all(|cpu| cpus.contains(cpu))
    });
    let (status, why) = if covered {
        (
            Status::Ok,
            "no timer tick interrupts a shard's reactor loop",
        )
    } else {
        (
            Status::Info,
            "optional: a shard is the only thread on its core, so the periodic tick is pure jitter",
        )
    };
    Finding::new("nohz_full", current, &recommended, status, why)
}

/// Shards poll and spin; a power-saving governor adds wake-up latency.
pub fn check_governor(governors: &[(usize, Option<String>)]) -> Finding {
    let known: Vec<(usize, &str)> = governors
        .iter()
        .filter_map(|(cpu, governor)| Some((*cpu, governor.as_deref()?.trim())))
        .collect();
    if known.is_empty() {
        return Finding::new(
            "CPU governor",
            "no cpufreq".into(),
            "performance",
            Status::Info,
            "no cpufreq driver (typical in VMs): the hypervisor or firmware controls frequency",
        );
    }
    let mut names: Vec<&str> = known.iter().map(|(_, governor)| *governor).collect();
    names.sort_unstable();
    names.dedup();
    let current = names.join(",");
    if names == ["performance"] {
        return Finding::new(
            "CPU governor",
            current,
            "performance",
            Status::Ok,
            "shard cores stay at full clock between bursts",
        );
    }
    let mut finding = Finding::new(
        "CPU governor",
        current,
        "performance",
        Status::Warn,
        "powersave/schedutil down-clock idle-ish shard cores; the next request pays the ramp-up",
    );
    for (cpu, governor) in known {
        if governor != "performance" {
            finding = finding.with_fix(
                format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"),
                "performance",
            );
        }
    }
    finding
}

/// NIC queue interrupts landing on shard cores steal time from reactors.
pub fn check_nic_irqs(
    interrupts: Option<&str>,
    nic_names: &[String],
    irq_affinity: &BTreeMap<u32, IrqAffinity>,
    broker_cpus: &[usize],
) -> Finding {
    let irqs = interrupts
        .map(|text| nic_irqs(text, nic_names))
        .unwrap_or_default();
    let mut on_broker_cores = 0;
    let mut details = Vec::new();
    for irq in &irqs {
        let affinity = irq_affinity.get(&irq.irq);
        let allowed = affinity.map_or("?", |affinity| affinity.allowed.trim());
        let effective = affinity.and_then(|affinity| affinity.effective.as_deref());
        // Where it really fires if the kernel says so, else everywhere allowed.
        let cpus = effective
            .or(affinity.map(|affinity| affinity.allowed.as_str()))
            .and_then(parse_cpu_list)
            .unwrap_or_default();
        let overlaps = cpus.iter().any(|cpu| broker_cpus.contains(cpu));
        if overlaps {
            on_broker_cores += 1;
        }
        let counts: Vec<String> = irq.counts.iter().map(u64::to_string).collect();
        let effective = effective.map_or(String::new(), |cpus| {
            format!(" (effective {})", cpus.trim())
        });
        let marker = if overlaps { "  <- on shard cores" } else { "" };
        details.push(format!(
            "IRQ {:>4} {:<24} per-CPU counts [{}] affinity {allowed}{effective}{marker}",
            irq.irq,
            irq.name,
            counts.join(" "),
        ));
    }
    let current = format!(
        "{} NIC IRQs, {on_broker_cores} may hit shard cores",
        irqs.len()
    );
    let recommended = format!("NIC IRQs off {}", format_cpu_list(broker_cpus));
    let why = if irqs.is_empty() {
        "no NIC queue IRQs found in /proc/interrupts"
    } else {
        "softirq work on a shard's core delays its reactor; steer queues with irqaffinity= or /proc/irq/N/smp_affinity_list"
    };
    let mut finding = Finding::new("NIC IRQ affinity", current, &recommended, Status::Info, why);
    finding.details = details;
    finding
}

/// THP `always` makes khugepaged compact and collapse pages under the shards.
pub fn check_transparent_hugepage(enabled: Option<&str>) -> Finding {
    let mode = enabled.and_then(selected_choice);
    let current = mode.unwrap_or("unknown").to_string();
    match mode {
        Some("madvise") | Some("never") => Finding::new("transparent hugepages", current, "madvise or never", Status::Ok,
            "no compaction stalls or memory bloat from huge pages nobody asked for"),
        Some(_) => Finding::new("transparent hugepages", current, "madvise or never", Status::Warn,
            "`always` lets page faults and khugepaged stall a shard for compaction (ms-scale p99 spikes)")
            .with_fix("/sys/kernel/mm/transparent_hugepage/enabled", "madvise"),
        None => Finding::new("transparent hugepages", current, "madvise or never", Status::Info,
            "THP not available on this kernel"),
    }
}

/// The filesystem and disk under `--data-dir`: O_DIRECT, scheduler, queue depth.
pub fn check_data_dir(data_dir: &DataDirSnapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    let absolute = data_dir.probed_path.as_path();
    let mount = data_dir
        .mountinfo
        .as_deref()
        .and_then(|text| find_mount(text, absolute, data_dir.device));
    let location = if data_dir.exists {
        format!("{}", data_dir.path.display())
    } else {
        format!(
            "{} does not exist yet; checked {}",
            data_dir.path.display(),
            data_dir.probed_path.display()
        )
    };
    let filesystem = match &mount {
        Some(mount) => {
            let memory_backed = matches!(mount.fs_type.as_str(), "tmpfs" | "ramfs");
            let current = format!(
                "{} on {} ({})",
                mount.fs_type,
                mount.mount_point.display(),
                mount.source
            );
            if memory_backed {
                Finding::new(
                    "data dir filesystem",
                    current,
                    "xfs or ext4 on NVMe",
                    Status::Warn,
                    "memory-backed: segments vanish on reboot and compete with the shards for RAM",
                )
            } else {
                Finding::new(
                    "data dir filesystem",
                    current,
                    "xfs or ext4 on NVMe",
                    Status::Info,
                    "segments are DMA-written and preallocated in 32 MiB fallocate steps",
                )
            }
        }
        None => Finding::new(
            "data dir filesystem",
            "unknown".into(),
            "xfs or ext4 on NVMe",
            Status::Info,
            "could not find the mount in /proc/self/mountinfo",
        ),
    };
    let mut filesystem = filesystem;
    filesystem.details.push(location);
    findings.push(filesystem);

    findings.push(match &data_dir.o_direct {
        Some(Ok(())) => Finding::new("O_DIRECT in data dir", "works".into(), "works", Status::Ok,
            "segment files are opened O_DIRECT (glommio DmaFile) and written in aligned chunks"),
        Some(Err(error)) => Finding::new("O_DIRECT in data dir", format!("fails: {error}"), "works", Status::Warn,
            "segment files are opened O_DIRECT (glommio DmaFile): the broker cannot open partitions here"),
        None => Finding::new("O_DIRECT in data dir", "not tested".into(), "works", Status::Info,
            "could not create a scratch file in the data dir"),
    });

    let disk = data_dir.disk_name.clone().unwrap_or_else(|| "?".into());
    let rotational = parse_number(data_dir.rotational.as_deref()) == Some(1);
    // virtio-blk and Xen disks report rotational=1 whatever backs them.
    let virtual_disk = disk.starts_with("vd") || disk.starts_with("xvd");
    let spinning = rotational && !virtual_disk;
    if spinning {
        findings.push(Finding::new(
            "disk type",
            format!("{disk}: rotational"),
            "NVMe / SSD",
            Status::Warn,
            "corelog is built for NVMe: many concurrent aligned DMA writes and fsyncs per shard",
        ));
    } else if rotational {
        findings.push(Finding::new(
            "disk type",
            format!("{disk}: virtual, rotational=1"),
            "NVMe / SSD",
            Status::Info,
            "a virtual disk's rotational flag says nothing of its backing; corelog is built for NVMe",
        ));
    }
    let Some(scheduler_text) = data_dir.scheduler.as_deref() else {
        findings.push(Finding::new(
            "I/O scheduler",
            "no block device".to_string(),
            "none",
            Status::Info,
            "no block queue under the data dir (tmpfs, network or virtual filesystem)",
        ));
        return findings;
    };
    let scheduler = selected_choice(scheduler_text).unwrap_or(scheduler_text.trim());
    let current = format!("{disk}: {scheduler}");
    let scheduler_finding = if scheduler == "none" {
        Finding::new(
            "I/O scheduler",
            current,
            "none",
            Status::Ok,
            "NVMe has its own deep queues; shards already batch and order their DMA writes",
        )
    } else if spinning {
        Finding::new(
            "I/O scheduler",
            current,
            "mq-deadline (rotational)",
            Status::Info,
            "a spinning disk benefits from request sorting; `none` is for flash",
        )
    } else {
        let has_none = scheduler_text
            .split_whitespace()
            .any(|name| name.trim_matches(['[', ']']) == "none");
        let finding = Finding::new(
            "I/O scheduler",
            current,
            "none",
            Status::Warn,
            "on flash (or a virtual disk the host schedules) it only adds CPU and latency to each DMA write",
        );
        match (&data_dir.disk_name, has_none) {
            (Some(name), true) => {
                finding.with_fix(format!("/sys/block/{name}/queue/scheduler"), "none")
            }
            _ => finding,
        }
    };
    findings.push(scheduler_finding);

    if let Some(nr_requests) = parse_number(data_dir.nr_requests.as_deref()) {
        let status = if nr_requests >= NR_REQUESTS_MIN {
            Status::Ok
        } else {
            Status::Info
        };
        findings.push(Finding::new(
            "disk nr_requests",
            format!("{disk}: {nr_requests}"),
            &format!(">= {NR_REQUESTS_MIN}"),
            status,
            "queue depth the kernel accepts; every shard keeps many DMA writes and reads in flight",
        ));
    }
    findings
}

struct SysctlMinimum {
    name: &'static str,
    minimum: u64,
    why: &'static str,
}

const SYSCTL_MINIMUMS: &[SysctlMinimum] = &[
    SysctlMinimum {
        name: "net.core.somaxconn",
        minimum: LISTEN_BACKLOG,
        why: "caps each listen backlog; every shard listens with 1024, so connection bursts past the cap are dropped",
    },
    SysctlMinimum {
        name: "net.core.rmem_max",
        minimum: SOCKET_BUFFER_BYTES_MIN,
        why: "ceiling for SO_RCVBUF set by clients and tools on this host; large produce requests need a wide window",
    },
    SysctlMinimum {
        name: "net.core.wmem_max",
        minimum: SOCKET_BUFFER_BYTES_MIN,
        why: "ceiling for SO_SNDBUF; multi-MiB fetch responses leave without the shard waiting on the window",
    },
    SysctlMinimum {
        name: "net.core.netdev_max_backlog",
        minimum: NETDEV_BACKLOG_MIN,
        why: "per-CPU queue of received packets; at 10 Gb/s+ the default 1000 drops bursts, and retransmits hit p99",
    },
    SysctlMinimum {
        name: "fs.file-max",
        minimum: OPEN_FILES_MIN,
        why: "system-wide open files: every connection, segment and index file of every partition",
    },
];

/// Every sysctl check, from dotted name -> value text.
pub fn check_sysctls(sysctls: &BTreeMap<String, String>) -> Vec<Finding> {
    let value = |name: &str| sysctls.get(name).map(String::as_str);
    let mut findings: Vec<Finding> = SYSCTL_MINIMUMS
        .iter()
        .map(|sysctl| check_sysctl_minimum(sysctl, value(sysctl.name)))
        .collect();
    findings.push(check_tcp_buffer("net.ipv4.tcp_rmem", value("net.ipv4.tcp_rmem"),
        "TCP receive autotuning stops at this max: it bounds how fast one producer connection can push"));
    findings.push(check_tcp_buffer("net.ipv4.tcp_wmem", value("net.ipv4.tcp_wmem"),
        "TCP send autotuning stops at this max: it bounds how fast one consumer connection can fetch"));
    findings.push(check_swappiness(value("vm.swappiness")));
    findings.push(check_overcommit(value("vm.overcommit_memory")));
    findings.push(check_aio_max_nr(value("fs.aio-max-nr")));
    findings
}

fn check_sysctl_minimum(sysctl: &SysctlMinimum, text: Option<&str>) -> Finding {
    let recommended = format!(">= {}", sysctl.minimum);
    match parse_number(text) {
        Some(current) if current >= sysctl.minimum => Finding::new(
            sysctl.name,
            current.to_string(),
            &recommended,
            Status::Ok,
            sysctl.why,
        ),
        Some(current) => Finding::new(
            sysctl.name,
            current.to_string(),
            &recommended,
            Status::Warn,
            sysctl.why,
        )
        .with_fix(sysctl_path(sysctl.name), sysctl.minimum.to_string()),
        None => Finding::new(
            sysctl.name,
            "unknown".into(),
            &recommended,
            Status::Info,
            sysctl.why,
        ),
    }
}

/// `tcp_rmem`/`tcp_wmem` are `min default max`; only max is raised.
pub fn check_tcp_buffer(name: &str, text: Option<&str>, why: &str) -> Finding {
    let recommended = format!("max >= {}", SOCKET_BUFFER_BYTES_MIN);
    let values: Option<Vec<u64>> = text.and_then(|text| {
        text.split_whitespace()
            .map(|value| value.parse().ok())
            .collect()
    });
    let Some([min, default, max]) = values.and_then(|values| <[u64; 3]>::try_from(values).ok())
    else {
        return Finding::new(name, "unknown".into(), &recommended, Status::Info, why);
    };
    let current = format!("{min} {default} {max}");
    if max >= SOCKET_BUFFER_BYTES_MIN {
        Finding::new(name, current, &recommended, Status::Ok, why)
    } else {
        Finding::new(name, current, &recommended, Status::Warn, why).with_fix(
            sysctl_path(name),
            format!("{min} {default} {SOCKET_BUFFER_BYTES_MIN}"),
        )
    }
}

/// A broker's memory is its page cache and tail caches; swapping them out stalls shards.
pub fn check_swappiness(text: Option<&str>) -> Finding {
    const WHY: &str =
        "a swapped-out shard page turns a memory access into a disk read on the reactor thread";
    match parse_number(text) {
        Some(value) if value <= 1 => {
            Finding::new("vm.swappiness", value.to_string(), "<= 1", Status::Ok, WHY)
        }
        Some(value) => Finding::new(
            "vm.swappiness",
            value.to_string(),
            "<= 1",
            Status::Warn,
            WHY,
        )
        .with_fix(sysctl_path("vm.swappiness"), "1"),
        None => Finding::new("vm.swappiness", "unknown".into(), "<= 1", Status::Info, WHY),
    }
}

/// Mode 2 (strict) ignores MAP_NORESERVE, which the allocation guard relies on.
pub fn check_overcommit(text: Option<&str>) -> Finding {
    match parse_number(text) {
        Some(value @ (0 | 1)) => Finding::new("vm.overcommit_memory", value.to_string(), "0 or 1", Status::Ok,
            "the allocation guard reserves hostile Vec capacities with MAP_NORESERVE, costing only address space"),
        // Not applied automatically: strict accounting is a deliberate admin choice.
        Some(value) => Finding::new("vm.overcommit_memory", value.to_string(), "0 or 1", Status::Warn,
            "strict mode ignores MAP_NORESERVE: a hostile array length fails the allocation and aborts the broker"),
        None => Finding::new("vm.overcommit_memory", "unknown".into(), "0 or 1", Status::Info,
            "the allocation guard (runtime/allocator.rs) relies on lazy MAP_NORESERVE mappings"),
    }
}

/// Linux AIO contexts: glommio uses io_uring, not AIO, so this is information.
pub fn check_aio_max_nr(text: Option<&str>) -> Finding {
    let current = parse_number(text).map_or("unknown".into(), |value| value.to_string());
    Finding::new("fs.aio-max-nr", current, "n/a (io_uring)", Status::Info,
        "corelog uses io_uring, no Linux AIO contexts; raise it (1048576) only for AIO users such as Seastar/ScyllaDB")
}

/// RLIMIT_NOFILE: corelog does not raise it, so the soft limit is what it gets.
pub fn check_nofile(limit: Option<Limit>) -> Finding {
    const WHY: &str =
        "one descriptor per client connection plus each partition's segment and index files";
    let recommended = format!(">= {OPEN_FILES_MIN}");
    let Some(limit) = limit else {
        return Finding::new(
            "RLIMIT_NOFILE",
            "unknown".into(),
            &recommended,
            Status::Info,
            WHY,
        );
    };
    let current = format!(
        "soft {} / hard {}",
        format_count(limit.soft),
        format_count(limit.hard)
    );
    let status = if limit.soft >= OPEN_FILES_MIN {
        Status::Ok
    } else {
        Status::Warn
    };
    Finding::new("RLIMIT_NOFILE", current, &recommended, status, WHY)
}

// ---- reading the real host -----------------------------------------------

/// Name of the scratch file the O_DIRECT probe creates (and removes).
const O_DIRECT_PROBE_FILE: &str = ".corelog-tune-odirect-probe";
/// Bytes written by the O_DIRECT probe: one block at the largest common alignment.
const O_DIRECT_PROBE_BYTES: usize = 4096;

fn read_text(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl HostSnapshot {
    /// Reads everything the checks need from /proc and /sys. Changes nothing,
    /// except a scratch file created and removed in the data dir to test O_DIRECT.
    pub fn read(data_dir: &Path, shards: usize) -> HostSnapshot {
        let allowed_cpus = allowed_cpus();
        let governors = broker_cpus(&allowed_cpus, shards)
            .into_iter()
            .map(|cpu| {
                let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
                (cpu, read_text(path))
            })
            .collect();
        let interrupts = read_text("/proc/interrupts");
        let nic_names = nic_names();
        let irq_affinity = interrupts
            .as_deref()
            .map(|text| nic_irqs(text, &nic_names))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|irq| {
                let directory = format!("/proc/irq/{}", irq.irq);
                let affinity = IrqAffinity {
                    allowed: read_text(format!("{directory}/smp_affinity_list"))?,
                    effective: read_text(format!("{directory}/effective_affinity_list")),
                };
                Some((irq.irq, affinity))
            })
            .collect();
        let sysctls = SYSCTLS
            .iter()
            .filter_map(|name| Some((name.to_string(), read_text(sysctl_path(name))?)))
            .collect();
        HostSnapshot {
            kernel_release: read_text("/proc/sys/kernel/osrelease"),
            io_uring_disabled: read_text("/proc/sys/kernel/io_uring_disabled"),
            io_uring_probe: Some(probe_io_uring()),
            memlock: resource_limit(libc::RLIMIT_MEMLOCK),
            nofile: resource_limit(libc::RLIMIT_NOFILE),
            process_status: read_text("/proc/self/status"),
            allowed_cpus,
            online_cpus: read_text("/sys/devices/system/cpu/online"),
            isolated_cpus: read_text("/sys/devices/system/cpu/isolated"),
            cmdline: read_text("/proc/cmdline"),
            governors,
            transparent_hugepage: read_text("/sys/kernel/mm/transparent_hugepage/enabled"),
            interrupts,
            nic_names,
            irq_affinity,
            sysctls,
            data_dir: Some(DataDirSnapshot::read(data_dir)),
        }
    }
}

impl DataDirSnapshot {
    /// Reads the mount, disk queue and O_DIRECT support under `path` (or its
    /// nearest existing ancestor; the data dir itself is not created).
    pub fn read(path: &Path) -> DataDirSnapshot {
        use std::os::unix::fs::MetadataExt;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut existing = absolute.as_path();
        while !existing.exists() {
            match existing.parent() {
                Some(parent) => existing = parent,
                None => break,
            }
        }
        let probed_path = existing
            .canonicalize()
            .unwrap_or_else(|_| existing.to_path_buf());
        let device = std::fs::metadata(&probed_path)
            .ok()
            .map(|metadata| split_device_number(metadata.dev()));
        let mountinfo = read_text("/proc/self/mountinfo");
        let mount = mountinfo
            .as_deref()
            .and_then(|text| find_mount(text, &probed_path, device));
        let disk = disk_sysfs_dir(device, mount.as_ref());
        let queue_file = |name: &str| read_text(disk.as_ref()?.join("queue").join(name));
        DataDirSnapshot {
            exists: absolute.exists(),
            path: absolute,
            disk_name: disk
                .as_ref()
                .and_then(|dir| Some(dir.file_name()?.to_string_lossy().into_owned())),
            scheduler: queue_file("scheduler"),
            nr_requests: queue_file("nr_requests"),
            rotational: queue_file("rotational"),
            o_direct: Some(probe_o_direct(&probed_path)),
            probed_path,
            device,
            mountinfo,
        }
    }
}

/// Linux `dev_t` -> (major, minor), as glibc's `major()`/`minor()`.
fn split_device_number(device: u64) -> (u32, u32) {
    let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
    let minor = (device & 0xff) | ((device >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The /sys directory of the whole disk holding the data dir: via
/// /sys/dev/block/MAJ:MIN, or the mount source (btrfs reports anonymous
/// device numbers); a partition's queue lives in its parent disk.
fn disk_sysfs_dir(device: Option<(u32, u32)>, mount: Option<&MountEntry>) -> Option<PathBuf> {
    let by_number = device.and_then(|(major, minor)| {
        Path::new(&format!("/sys/dev/block/{major}:{minor}"))
            .canonicalize()
            .ok()
    });
    let by_source = || {
        let source = mount?.source.as_str();
        let node = Path::new(source)
            .strip_prefix("/dev")
            .ok()
            .map(|_| Path::new(source).canonicalize().ok())??;
        Path::new("/sys/class/block")
            .join(node.file_name()?)
            .canonicalize()
            .ok()
    };
    let dir = by_number.or_else(by_source)?;
    if dir.join("partition").exists() {
        return dir.parent().map(Path::to_path_buf);
    }
    Some(dir)
}

/// Creates a scratch file with O_DIRECT, writes one aligned block, removes it.
fn probe_o_direct(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!("{O_DIRECT_PROBE_FILE}-{}", std::process::id()));
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) => return Err(error.to_string()),
    };
    // O_DIRECT needs a buffer aligned like the block size: take an aligned
    // window out of a buffer twice the size.
    let buffer = vec![0u8; 2 * O_DIRECT_PROBE_BYTES];
    let start = buffer.as_ptr().align_offset(O_DIRECT_PROBE_BYTES);
    let written = file
        .write_all(&buffer[start..start + O_DIRECT_PROBE_BYTES])
        .map_err(|error| format!("aligned write: {error}"));
    drop(file);
    let _ = std::fs::remove_file(&path);
    written
}

/// Asks the kernel for a one-entry io_uring, as glommio would, and closes it.
fn probe_io_uring() -> Result<(), i32> {
    // struct io_uring_params is 120 bytes; all zero asks for defaults.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup writes only into the params struct we pass.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: `fd` is the ring descriptor just returned to us.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn resource_limit(resource: libc::__rlimit_resource_t) -> Option<Limit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0).then_some(Limit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// CPUs this process may run on, as `server::broker` chooses shard cores.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes into the set we pass.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        let count = std::thread::available_parallelism().map_or(1, |count| count.get());
        return (0..count).collect();
    }
    // SAFETY: CPU_ISSET reads the set sched_getaffinity filled.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) })
        .collect()
}

/// Names of physical NICs and their devices, as they appear in /proc/interrupts.
fn nic_names() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        // Virtual interfaces (lo, bridges, veth, ifb) have no device and no IRQs.
        let Ok(device) = entry.path().join("device").canonicalize() else {
            continue;
        };
        names.push(entry.file_name().to_string_lossy().into_owned());
        let Some(device_name) = device.file_name() else {
            continue;
        };
        let device_name = device_name.to_string_lossy().into_owned();
        // A PCI NIC's IRQs name its address (mlx5_comp0@pci:0000:3b:00.0); a
        // virtio NIC's name the virtio device (virtio2-input.0) and sit on
        // its PCI parent's MSI-X vectors. A PCI device's parent is a bridge,
        // whose own IRQs are not the NIC's.
        let is_pci_address = device_name.contains(':') && device_name.contains('.');
        let parent = device
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned());
        names.push(device_name);
        if let Some(parent) = parent.filter(|parent| !is_pci_address && !parent.starts_with("pci"))
        {
            names.push(parent);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn fix_values(finding: &Finding) -> Vec<(String, String)> {
        finding
            .fixes
            .iter()
            .map(|fix| (fix.path.display().to_string(), fix.value.clone()))
            .collect()
    }

    #[test]
    fn selected_choice_reads_the_bracketed_mode() {
        assert_eq!(selected_choice("always [madvise] never\n"), Some("madvise"));
        assert_eq!(
            selected_choice("[none] mq-deadline kyber bfq"),
            Some("none")
        );
        assert_eq!(selected_choice("none"), None);
    }

    #[test]
    fn transparent_hugepage_always_warns_and_offers_madvise() {
        let finding = check_transparent_hugepage(Some("[always] madvise never\n"));
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(finding.current, "always");
        assert_eq!(
            fix_values(&finding),
            [(
                "/sys/kernel/mm/transparent_hugepage/enabled".into(),
                "madvise".into()
            )]
        );
        for mode in ["always [madvise] never", "always madvise [never]"] {
            let finding = check_transparent_hugepage(Some(mode));
            assert_eq!(finding.status, Status::Ok, "{mode}");
            assert!(finding.fixes.is_empty());
        }
        assert_eq!(check_transparent_hugepage(None).status, Status::Info);
    }

    #[test]
    fn cpu_lists_parse_and_format() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("\n"), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(format_cpu_list(&[5, 0, 1, 2, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn broker_cpus_take_the_first_allowed_cpus_and_wrap() {
        assert_eq!(broker_cpus(&[2, 3, 6, 7], 2), [2, 3]);
        assert_eq!(broker_cpus(&[2, 3], 5), [2, 3]);
        assert!(broker_cpus(&[], 4).is_empty());
    }

    #[test]
    fn kernel_version_and_cmdline() {
        assert_eq!(parse_kernel_version("6.8.0-45-generic\n"), Some((6, 8)));
        assert_eq!(parse_kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(parse_kernel_version("x"), None);
        let cmdline = "BOOT_IMAGE=/vmlinuz quiet isolcpus=2-7 nohz_full=2-7 splash -- nohz_full=9";
        assert_eq!(cmdline_param(cmdline, "nohz_full"), Some("2-7"));
        assert_eq!(cmdline_param(cmdline, "quiet"), Some(""));
        assert_eq!(cmdline_param(cmdline, "irqaffinity"), None);
    }

    #[test]
    fn io_uring_needs_5_8_and_not_disabled() {
        assert_eq!(
            check_io_uring(Some("6.1.0"), Some("0"), Some(Ok(()))).status,
            Status::Ok
        );
        assert_eq!(
            check_io_uring(Some("5.4.0-99"), None, None).status,
            Status::Warn
        );
        assert_eq!(
            check_io_uring(Some("6.6.0"), Some("2\n"), None).status,
            Status::Warn
        );
        assert_eq!(
            check_io_uring(Some("6.6.0"), Some("1"), Some(Ok(()))).status,
            Status::Info
        );
        let refused = check_io_uring(Some("6.6.0"), Some("0"), Some(Err(libc::EPERM)));
        assert_eq!(refused.status, Status::Warn);
        assert!(refused.current.contains("io_uring_setup failed"));
    }

    #[test]
    fn memlock_counts_what_corelog_can_raise_itself() {
        let shards = 4;
        let wanted = memlock_wanted_bytes(shards);
        assert_eq!(wanted, 512 * 1024 + 4 * 3 * 2 * MIB);
        let low = Limit {
            soft: 8 * MIB,
            hard: 8 * MIB,
        };
        assert_eq!(check_memlock(Some(low), false, shards).status, Status::Warn);
        // With CAP_SYS_RESOURCE corelog raises the hard limit too.
        assert_eq!(check_memlock(Some(low), true, shards).status, Status::Ok);
        // A high hard limit lets it raise the soft one without privileges.
        let raisable = Limit {
            soft: 64 * 1024,
            hard: u64::MAX,
        };
        assert_eq!(
            check_memlock(Some(raisable), false, shards).status,
            Status::Ok
        );
        let tiny = Limit {
            soft: 64 * 1024,
            hard: 64 * 1024,
        };
        let finding = check_memlock(Some(tiny), false, shards);
        assert_eq!(finding.status, Status::Warn);
        assert!(finding.why.contains("refuses to start"));
        assert_eq!(finding.current, "soft 64 KiB / hard 64 KiB");
    }

    #[test]
    fn capabilities_come_from_cap_eff() {
        let status = "Name:\tcorelog\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert_eq!(has_capability(status, CAP_SYS_RESOURCE_BIT), Some(false));
        assert_eq!(has_capability(status, 21), Some(true)); // CAP_SYS_ADMIN
        assert_eq!(
            has_capability("CapEff:\t000001ffffffffff\n", 24),
            Some(true)
        );
        assert_eq!(has_capability("Name: x\n", 24), None);
    }

    #[test]
    fn nofile_wants_a_hundred_thousand() {
        let low = Limit {
            soft: 1024,
            hard: 524_288,
        };
        assert_eq!(check_nofile(Some(low)).status, Status::Warn);
        let high = Limit {
            soft: 1_048_576,
            hard: u64::MAX,
        };
        let finding = check_nofile(Some(high));
        assert_eq!(finding.status, Status::Ok);
        assert_eq!(finding.current, "soft 1048576 / hard unlimited");
    }

    #[test]
    fn cpu_checks_compare_shards_with_cores() {
        assert_eq!(
            check_cpu_count(&[0, 1], Some("0-1"), 4).status,
            Status::Warn
        );
        assert_eq!(
            check_cpu_count(&[0, 1, 2, 3], Some("0-3"), 3).status,
            Status::Ok
        );
        assert_eq!(
            check_cpu_count(&[0, 1, 2, 3], Some("0-3"), 4).status,
            Status::Info
        );
        assert_eq!(check_isolation(&[2, 3], Some("2-7\n")).status, Status::Ok);
        assert_eq!(check_isolation(&[0, 1], Some("2-7\n")).status, Status::Info);
        let none = check_isolation(&[0, 1], Some("\n"));
        assert_eq!(
            (none.status, none.current.as_str()),
            (Status::Info, "none isolated")
        );
        assert_eq!(none.recommended, "isolcpus=0-1");
        let cmdline = "quiet nohz_full=1-3 rcu_nocbs=1-3";
        assert_eq!(check_nohz_full(&[1, 2], Some(cmdline)).status, Status::Ok);
        assert_eq!(check_nohz_full(&[0, 1], Some(cmdline)).status, Status::Info);
    }

    #[test]
    fn governor_warns_per_cpu_not_at_performance() {
        let governors = vec![
            (0, Some("performance\n".to_string())),
            (1, Some("powersave\n".to_string())),
        ];
        let finding = check_governor(&governors);
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(finding.current, "performance,powersave");
        assert_eq!(
            fix_values(&finding),
            [(
                "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor".into(),
                "performance".into()
            )]
        );
        assert_eq!(check_governor(&[(0, None)]).status, Status::Info);
        assert_eq!(
            check_governor(&[(0, Some("performance".into()))]).status,
            Status::Ok
        );
    }

    const INTERRUPTS: &str = "\
           CPU0       CPU1       CPU2       CPU3
  24:          1          0          0          0  IO-APIC   5-edge      ACPI:Ged
  36:          0     299434          0          0  PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
  38:          0       4167          0          0  PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0
  39:       3394          0          0          0  PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0
 120:          0          0      91234          0  IR-PCI-MSIX-0000:3b:00.0   0-edge      mlx5_comp0@pci:0000:3b:00.0
 121:          0          0          0      88001  IR-PCI-MSIX-0000:3b:00.0   1-edge      mlx5_comp1@pci:0000:3b:00.0
 130:          5          0          0          0  IR-PCI-MSI-0000:00:1f.6   0-edge      eth0-TxRx-0
 131:          5          0          0          0  IR-PCI-MSI-0000:00:1f.7   0-edge      eth01
NMI:          0          0          0          0   Non-maskable interrupts
LOC:     689885     746021     123456     654321   Local timer interrupts
";

    #[test]
    fn nic_irqs_are_found_by_interface_and_device_names() {
        let names: Vec<String> = ["virtio2", "eth0", "0000:3b:00.0"]
            .map(String::from)
            .to_vec();
        let irqs = nic_irqs(INTERRUPTS, &names);
        let numbers: Vec<u32> = irqs.iter().map(|irq| irq.irq).collect();
        // virtio1 (the disk) and eth01 (another word) are not the NIC.
        assert_eq!(numbers, [38, 39, 120, 121, 130]);
        assert_eq!(irqs[0].counts, [0, 4167, 0, 0]);
        assert_eq!(irqs[0].name, "virtio2-input.0");
        assert_eq!(irqs[2].name, "mlx5_comp0@pci:0000:3b:00.0");
        assert!(nic_irqs(INTERRUPTS, &[]).is_empty());
    }

    #[test]
    fn nic_irq_check_marks_queues_on_shard_cores() {
        let names = vec!["0000:3b:00.0".to_string()];
        let affinity = BTreeMap::from([
            (
                120,
                IrqAffinity {
                    allowed: "0-3\n".into(),
                    effective: Some("2\n".into()),
                },
            ),
            (
                121,
                IrqAffinity {
                    allowed: "0\n".into(),
                    effective: None,
                },
            ),
        ]);
        let finding = check_nic_irqs(Some(INTERRUPTS), &names, &affinity, &[1, 2]);
        assert_eq!(finding.status, Status::Info);
        assert_eq!(finding.current, "2 NIC IRQs, 1 may hit shard cores");
        assert!(finding.details[0].contains("(effective 2)"));
        assert!(finding.details[0].ends_with("<- on shard cores"));
        assert!(!finding.details[1].contains("<-"));
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 259:2 / /var/lib/corelog rw,noatime shared:5 - xfs /dev/nvme0n1p2 rw,attr2
31 27 0:44 / /mnt/my\\040disk rw - ext4 /dev/sdb1 rw
32 27 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
";

    #[test]
    fn mountinfo_lines_parse_with_optional_fields_and_escapes() {
        let entry = parse_mountinfo_line(MOUNTINFO.lines().nth(2).unwrap()).unwrap();
        assert_eq!(
            entry,
            MountEntry {
                device: (259, 2),
                mount_point: PathBuf::from("/var/lib/corelog"),
                fs_type: "xfs".into(),
                source: "/dev/nvme0n1p2".into(),
            }
        );
        let spaced = parse_mountinfo_line(MOUNTINFO.lines().nth(3).unwrap()).unwrap();
        assert_eq!(spaced.mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(parse_mountinfo_line("garbage"), None);
    }

    #[test]
    fn find_mount_picks_the_longest_matching_mount_point() {
        let data = Path::new("/var/lib/corelog/data");
        let mount = find_mount(MOUNTINFO, data, Some((259, 2))).unwrap();
        assert_eq!(mount.fs_type, "xfs");
        // Without a device the longest prefix still wins.
        assert_eq!(find_mount(MOUNTINFO, data, None).unwrap().fs_type, "xfs");
        let home = find_mount(MOUNTINFO, Path::new("/home/me"), Some((254, 0))).unwrap();
        assert_eq!(home.mount_point, PathBuf::from("/"));
        // `/var/lib/corelogx` is not under `/var/lib/corelog`.
        let sibling = find_mount(MOUNTINFO, Path::new("/var/lib/corelogx"), None).unwrap();
        assert_eq!(sibling.mount_point, PathBuf::from("/"));
    }

    fn nvme_data_dir() -> DataDirSnapshot {
        DataDirSnapshot {
            path: PathBuf::from("/var/lib/corelog/data"),
            exists: true,
            probed_path: PathBuf::from("/var/lib/corelog/data"),
            device: Some((259, 2)),
            mountinfo: Some(MOUNTINFO.into()),
            disk_name: Some("nvme0n1".into()),
            scheduler: Some("[none] mq-deadline kyber bfq\n".into()),
            nr_requests: Some("1023\n".into()),
            rotational: Some("0\n".into()),
            o_direct: Some(Ok(())),
        }
    }

    fn find<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
        findings
            .iter()
            .find(|finding| finding.check == check)
            .unwrap_or_else(|| panic!("no {check} finding"))
    }

    #[test]
    fn nvme_with_scheduler_none_passes() {
        let findings = check_data_dir(&nvme_data_dir());
        assert!(findings
            .iter()
            .all(|finding| finding.status != Status::Warn));
        assert_eq!(find(&findings, "I/O scheduler").current, "nvme0n1: none");
        assert!(find(&findings, "data dir filesystem")
            .current
            .starts_with("xfs on /var/lib/corelog"));
        assert_eq!(find(&findings, "disk nr_requests").status, Status::Ok);
    }

    #[test]
    fn flash_with_a_scheduler_warns_and_offers_none() {
        let data_dir = DataDirSnapshot {
            scheduler: Some("none [mq-deadline] kyber\n".into()),
            ..nvme_data_dir()
        };
        let findings = check_data_dir(&data_dir);
        let scheduler = find(&findings, "I/O scheduler");
        assert_eq!(scheduler.status, Status::Warn);
        assert_eq!(
            fix_values(scheduler),
            [("/sys/block/nvme0n1/queue/scheduler".into(), "none".into())]
        );
    }

    #[test]
    fn spinning_disk_keeps_mq_deadline_but_warns_about_the_disk() {
        let data_dir = DataDirSnapshot {
            disk_name: Some("sda".into()),
            scheduler: Some("none [mq-deadline]".into()),
            rotational: Some("1".into()),
            nr_requests: Some("64".into()),
            ..nvme_data_dir()
        };
        let findings = check_data_dir(&data_dir);
        assert_eq!(find(&findings, "disk type").status, Status::Warn);
        let scheduler = find(&findings, "I/O scheduler");
        assert_eq!(scheduler.status, Status::Info);
        assert!(scheduler.fixes.is_empty());
        assert_eq!(find(&findings, "disk nr_requests").status, Status::Info);
        // A virtio disk's rotational flag is not trusted.
        let virtio = DataDirSnapshot {
            disk_name: Some("vda".into()),
            ..data_dir
        };
        let findings = check_data_dir(&virtio);
        assert_eq!(find(&findings, "disk type").status, Status::Info);
        assert_eq!(find(&findings, "I/O scheduler").status, Status::Warn);
    }

    #[test]
    fn tmpfs_and_failed_o_direct_warn() {
        let data_dir = DataDirSnapshot {
            path: PathBuf::from("/dev/shm/corelog"),
            exists: false,
            probed_path: PathBuf::from("/dev/shm"),
            device: Some((0, 27)),
            disk_name: None,
            scheduler: None,
            nr_requests: None,
            rotational: None,
            o_direct: Some(Err("Invalid argument (os error 22)".into())),
            ..nvme_data_dir()
        };
        let findings = check_data_dir(&data_dir);
        let filesystem = find(&findings, "data dir filesystem");
        assert_eq!(filesystem.status, Status::Warn);
        assert!(filesystem.details[0].contains("does not exist yet; checked /dev/shm"));
        let o_direct = find(&findings, "O_DIRECT in data dir");
        assert_eq!(o_direct.status, Status::Warn);
        assert!(o_direct.current.contains("os error 22"));
        assert_eq!(find(&findings, "I/O scheduler").status, Status::Info);
    }

    fn sysctls(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), format!("{value}\n")))
            .collect()
    }

    #[test]
    fn sysctls_below_minimum_warn_with_a_runtime_fix() {
        let findings = check_sysctls(&sysctls(&[
            ("net.core.somaxconn", "128"),
            ("net.core.rmem_max", "212992"),
            ("net.core.wmem_max", "16777216"),
            ("net.ipv4.tcp_rmem", "4096\t131072\t6291456"),
            ("net.ipv4.tcp_wmem", "4096\t16384\t33554432"),
            ("net.core.netdev_max_backlog", "1000"),
            ("vm.swappiness", "60"),
            ("vm.overcommit_memory", "2"),
            ("fs.file-max", "9223372036854775807"),
            ("fs.aio-max-nr", "65536"),
        ]));
        let somaxconn = find(&findings, "net.core.somaxconn");
        assert_eq!(somaxconn.status, Status::Warn);
        assert_eq!(
            fix_values(somaxconn),
            [("/proc/sys/net/core/somaxconn".into(), "1024".into())]
        );
        assert_eq!(find(&findings, "net.core.wmem_max").status, Status::Ok);
        let tcp_rmem = find(&findings, "net.ipv4.tcp_rmem");
        assert_eq!(tcp_rmem.status, Status::Warn);
        // min and default are kept, only max is raised.
        assert_eq!(
            fix_values(tcp_rmem),
            [(
                "/proc/sys/net/ipv4/tcp_rmem".into(),
                "4096 131072 16777216".into()
            )]
        );
        assert_eq!(find(&findings, "net.ipv4.tcp_wmem").status, Status::Ok);
        assert_eq!(
            fix_values(find(&findings, "vm.swappiness")),
            [("/proc/sys/vm/swappiness".into(), "1".into())]
        );
        // Strict overcommit warns, but is an admin's choice: never applied.
        let overcommit = find(&findings, "vm.overcommit_memory");
        assert_eq!(overcommit.status, Status::Warn);
        assert!(overcommit.fixes.is_empty());
        assert_eq!(find(&findings, "fs.file-max").status, Status::Ok);
        assert_eq!(find(&findings, "fs.aio-max-nr").status, Status::Info);
    }

    #[test]
    fn missing_or_garbled_sysctls_are_info_not_errors() {
        let findings = check_sysctls(&sysctls(&[("net.ipv4.tcp_rmem", "4096 x")]));
        assert!(findings
            .iter()
            .all(|finding| finding.status == Status::Info));
        assert!(findings.iter().all(|finding| finding.fixes.is_empty()));
    }

    #[test]
    fn format_bytes_is_short() {
        assert_eq!(format_bytes(16 * MIB), "16 MiB");
        assert_eq!(format_bytes(512 * 1024), "512 KiB");
        assert_eq!(format_bytes(memlock_wanted_bytes(2)), "12.5 MiB");
        assert_eq!(format_bytes(u64::MAX), "unlimited");
        assert_eq!(format_bytes(100), "100 B");
    }

    #[test]
    fn check_all_covers_every_topic_on_an_empty_snapshot() {
        let findings = check_all(&HostSnapshot::default(), 2);
        for check in [
            "RLIMIT_MEMLOCK",
            "io_uring",
            "CPUs vs shards",
            "CPU isolation",
            "nohz_full",
            "CPU governor",
            "NIC IRQ affinity",
            "transparent hugepages",
            "net.core.somaxconn",
            "vm.swappiness",
            "vm.overcommit_memory",
            "fs.aio-max-nr",
            "RLIMIT_NOFILE",
        ] {
            find(&findings, check);
        }
    }

    #[test]
    fn reading_this_host_does_not_fail() {
        let directory = tempfile::tempdir().expect("temp dir");
        let host = HostSnapshot::read(directory.path(), 1);
        let data_dir = host.data_dir.as_ref().expect("data dir read");
        assert!(data_dir.exists);
        assert!(data_dir.o_direct.is_some());
        // The O_DIRECT probe cleans up after itself.
        let left: Vec<_> = std::fs::read_dir(directory.path()).unwrap().collect();
        assert!(left.is_empty());
        assert!(!check_all(&host, 1).is_empty());
    }
}
