//! Counters of a model client's traffic, for an agent's metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a model client has done since it was built, and whether its circuit breaker is open.
/// Counters only grow; subtract two snapshots for the traffic of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStats {
    /// Calls made (`chat` or `embed`), whatever their outcome.
    pub calls: u64,
    /// HTTP requests sent: one per attempt, so retries included.
    pub requests: u64,
    /// Attempts that were retried (rate limits, overload, server errors, timeouts).
    pub retries: u64,
    /// Calls that ended in an error.
    pub failures: u64,
    /// Sum of the calls' latencies in microseconds, from the first attempt to the outcome,
    /// waits for a concurrency permit and backoff included.
    pub total_latency_us: u64,
    /// The slowest call, in microseconds.
    pub max_latency_us: u64,
    /// Whether the client's circuit breaker is open now: its calls fail at once, without a
    /// request, until the cool-down has passed (always `false` for a client without one).
    #[serde(default)]
    pub breaker_open: bool,
}

/// The live counters behind [`ModelStats`], shared by the clones of one client.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    calls: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    total_latency_us: AtomicU64,
    max_latency_us: AtomicU64,
}

impl StatsRecorder {
    pub(crate) fn request_sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retrying(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn call_ended(&self, latency: Duration, failed: bool) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(u64::from(failed), Ordering::Relaxed);
        self.total_latency_us.fetch_add(micros, Ordering::Relaxed);
        self.max_latency_us.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ModelStats {
        ModelStats {
            calls: self.calls.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            total_latency_us: self.total_latency_us.load(Ordering::Relaxed),
            max_latency_us: self.max_latency_us.load(Ordering::Relaxed),
            breaker_open: false,
        }
    }
}
