//! What both benchmarks measure about their own process, and the store requests it makes.

use std::sync::Arc;
use std::time::Duration;

use weir_engine::Storage;
use weir_engine::store::{CountingStore, RequestCounts};

/// User plus system CPU time of this process so far (all threads), from `/proc/self/stat`
/// (Linux; 10 ms resolution). Child processes are not included.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may contain spaces: utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

/// The most resident memory this process has used (`VmHWM`), in MiB.
pub fn peak_memory_mb() -> f64 {
    status_mb("VmHWM:")
}

/// The memory this process has resident now (`VmRSS`), in MiB.
pub fn resident_memory_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A `/proc/self/status` field given in kB, in MiB; zero where there is none.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Resets this process's `VmHWM` to its current resident memory (Linux 4.0 and later), so
/// that [`peak_memory_mb`] measures from here; elsewhere it does nothing.
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The `p` quantile (0 to 1) of sorted durations; zero if there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `count` per 1,000 of `events`.
pub fn per_thousand(count: u64, events: usize) -> f64 {
    count as f64 * 1000.0 / events.max(1) as f64
}

/// `storage` with every request counted.
pub fn counted(storage: &Storage) -> (Storage, Arc<RequestCounts>) {
    let counting = CountingStore::new(storage.store().clone());
    let counts = counting.counts();
    (storage.with_store(Arc::new(counting)), counts)
}
