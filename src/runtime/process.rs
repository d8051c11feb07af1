//! Process and container facts read from the kernel: resident and virtual
//! memory, CPU time, file descriptors, threads, start time, the cgroup v2
//! memory limit and, with the `jemalloc` feature, the allocator's own
//! statistics.
//!
//! Everything is read on demand (a scrape or a stats call), so an idle agent
//! does no work for it. On systems without `/proc` the values are absent.

use std::fs;
use std::path::Path;

/// One reading of the process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSnapshot {
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on file descriptors.
    pub max_fds: Option<u64>,
    /// OS threads.
    pub threads: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// The cgroup v2 memory limit, when one is set.
    pub memory_limit_bytes: Option<u64>,
    /// Allocator statistics, when jemalloc is compiled in and is the
    /// global allocator (see `jemalloc_is_global`).
    pub allocator: Option<AllocatorStats>,
}

/// jemalloc's view of the heap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes allocated by the application.
    pub allocated: u64,
    /// Bytes in active pages (allocated plus fragmentation).
    pub active: u64,
    /// Bytes in physically resident pages mapped by the allocator.
    pub resident: u64,
    /// Bytes in extents mapped by the allocator.
    pub mapped: u64,
    /// Bytes of allocator metadata.
    pub metadata: u64,
    /// Bytes retained (unmapped but kept virtual).
    pub retained: u64,
}

impl ProcessSnapshot {
    /// Reads the current process. Missing sources leave zeros or `None`.
    pub fn read() -> Self {
        let mut snapshot = Self::default();
        if let Ok(status) = fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmRSS:") {
                    snapshot.resident_bytes = kib(v);
                } else if let Some(v) = line.strip_prefix("VmSize:") {
                    snapshot.virtual_bytes = kib(v);
                } else if let Some(v) = line.strip_prefix("Threads:") {
                    snapshot.threads = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let ticks = clock_ticks_per_second();
        if let Ok(stat) = fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which may contain spaces.
            if let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                // utime, stime and starttime are fields 14, 15 and 22 of the
                // whole line, i.e. 11, 12 and 19 after the state field's index 0.
                let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
                if let (Some(utime), Some(stime)) = (field(11), field(12)) {
                    snapshot.cpu_seconds = (utime + stime) as f64 / ticks;
                }
                if let (Some(start), Some(boot)) = (field(19), boot_time_seconds()) {
                    snapshot.start_time_seconds = Some(boot + start as f64 / ticks);
                }
            }
        }
        snapshot.open_fds = fs::read_dir("/proc/self/fd")
            .map(|dir| dir.count() as u64)
            .unwrap_or(0);
        snapshot.max_fds = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| {
                limits
                    .lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        snapshot.memory_limit_bytes = cgroup_memory_limit(Path::new("/sys/fs/cgroup"));
        snapshot.allocator = allocator_stats();
        snapshot
    }

    /// Resident memory over the container limit, when there is one.
    pub fn memory_utilization(&self) -> Option<f64> {
        self.memory_limit_bytes
            .filter(|limit| *limit > 0)
            .map(|limit| self.resident_bytes as f64 / limit as f64)
    }
}

fn kib(value: &str) -> u64 {
    value
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n * 1024)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn boot_time_seconds() -> Option<f64> {
    fs::read_to_string("/proc/stat").ok().and_then(|stat| {
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })
}

/// The cgroup v2 `memory.max` of this process's cgroup; `None` when the
/// file is absent or says `max` (no limit).
pub fn cgroup_memory_limit(cgroup_root: &Path) -> Option<u64> {
    let relative = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(|p| p.trim().trim_start_matches('/').to_owned())
        })
        .unwrap_or_default();
    let candidates = [cgroup_root.join(&relative), cgroup_root.to_path_buf()];
    candidates
        .iter()
        .find_map(|dir| fs::read_to_string(dir.join("memory.max")).ok())
        .and_then(|v| parse_memory_max(&v))
}

/// Parses a `memory.max` file: a byte count, or `max` for none.
pub fn parse_memory_max(text: &str) -> Option<u64> {
    match text.trim() {
        "max" | "" => None,
        n => n.parse().ok(),
    }
}

/// Whether jemalloc is the process's global allocator. The feature only
/// compiles it in: a host app that does not install it
/// (`#[global_allocator]`) has a jemalloc that sees almost nothing, and
/// its figures beside the resident size would mislead — so they are not
/// shown. Checked once, on this thread's own counter (other threads'
/// frees cannot disturb it): a 4 MiB allocation either moves jemalloc's
/// `thread.allocated` or it does not.
#[cfg(feature = "jemalloc")]
pub fn jemalloc_is_global() -> bool {
    static GLOBAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GLOBAL.get_or_init(|| {
        const PROBE: u64 = 4 << 20;
        let Ok(allocated) = tikv_jemalloc_ctl::thread::allocatedp::read() else {
            return false;
        };
        let before = allocated.get();
        let probe = std::hint::black_box(Vec::<u8>::with_capacity(PROBE as usize));
        let after = allocated.get();
        drop(probe);
        after >= before + PROBE / 2
    })
}

#[cfg(feature = "jemalloc")]
fn allocator_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if !jemalloc_is_global() {
        return None;
    }
    // The statistics are cached until the epoch advances.
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        mapped: stats::mapped::read().ok()? as u64,
        metadata: stats::metadata::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

#[cfg(not(feature = "jemalloc"))]
fn allocator_stats() -> Option<AllocatorStats> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary does not install jemalloc, so its (near empty)
    /// figures are not shown; the agent binary and the bench server do,
    /// and `tests/external.rs` reads them there.
    #[cfg(feature = "jemalloc")]
    #[test]
    fn jemalloc_figures_are_shown_only_when_it_is_the_global_allocator() {
        assert!(!jemalloc_is_global());
        assert_eq!(ProcessSnapshot::read().allocator, None);
    }

    #[test]
    fn reads_this_process() {
        let snapshot = ProcessSnapshot::read();
        assert!(snapshot.resident_bytes > 1024 * 1024, "{snapshot:?}");
        assert!(snapshot.virtual_bytes >= snapshot.resident_bytes);
        assert!(snapshot.threads >= 1);
        assert!(snapshot.open_fds >= 3);
        let start = snapshot.start_time_seconds.expect("start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after epoch")
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
    }

    #[test]
    fn memory_max_parsing() {
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("536870912\n"), Some(536_870_912));
        assert_eq!(parse_memory_max("garbage"), None);
    }

    #[test]
    fn reads_a_cgroup_limit_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("perfscope-cgroup-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        fs::write(dir.join("memory.max"), "1048576\n").expect("write");
        // The process's own cgroup path will not exist under `dir`, so the
        // root's file is used.
        assert_eq!(cgroup_memory_limit(&dir), Some(1_048_576));
        fs::remove_dir_all(&dir).ok();
    }
}
