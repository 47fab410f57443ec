//! Engine settings: plain data, loadable from a file or the environment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the engine batches, retries, journals, compacts and collects.
///
/// ```
/// let settings: weir_engine::EngineSettings = serde_json::from_str(r#"{"max_batch_events": 500}"#).unwrap();
/// assert_eq!(settings.max_batch_events, 500);
/// assert_eq!(settings.max_attempts, 3, "unnamed fields keep their defaults");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Most events in one micro-batch.
    pub max_batch_events: usize,
    /// Most events in the first micro-batch after a claim; each later batch may take twice
    /// as many as the one before, up to `max_batch_events`. A small first batch commits
    /// soon after an invocation starts, whatever the batch size it reaches later.
    pub first_batch_events: usize,
    /// How long to wait for more events before processing a short batch, in milliseconds.
    pub max_batch_wait_ms: u64,
    /// How often to look for new segments while waiting, in milliseconds.
    pub poll_interval_ms: u64,
    /// Most keys whose events run at once, per batch. More keys than the agent's model can
    /// serve at once only wait, each holding its request and its memory: keep it near the
    /// model's concurrency limit.
    pub max_concurrent_keys: usize,
    /// Most pulled batches running at once: later batches run while the oldest finishes
    /// its slowest keys and commits (commits stay in order); 1: one batch at a time. More
    /// overlap costs a few more PUTs per event (a commit per batch).
    pub max_batches_in_flight: usize,
    /// Attempts at an event's actions before it is dead-lettered.
    pub max_attempts: u32,
    /// Pause before the second attempt, doubled for each further one, in milliseconds.
    pub retry_backoff_ms: u64,
    /// Largest payload accepted; larger events are dead-lettered.
    pub max_event_bytes: usize,
    /// Group-commit window of the action journal, in milliseconds.
    pub journal_flush_window_ms: u64,
    /// How many runs of one level are merged into one of the next.
    pub compaction_fanout: usize,
    /// Bytes of run indexes and blocks cached per process.
    pub run_cache_bytes: usize,
    /// The longest an invocation may run, in milliseconds (15 minutes on Lambda).
    pub max_invocation_ms: u64,
    /// Age below which collection deletes nothing, in milliseconds: the one grace period of
    /// writers and collection (docs/storage-format.md, "One grace period"). At least
    /// `max_invocation_ms` plus 5 minutes.
    pub gc_grace_ms: u64,
    /// Committed outputs, dead letters and their manifests are kept this long, in milliseconds.
    pub output_retention_ms: u64,
    /// Processed log segments are kept this long, in milliseconds; at least an hour.
    pub log_retention_ms: u64,
}

/// What the grace period must exceed the longest invocation by.
const GRACE_MARGIN_MS: u64 = 5 * 60 * 1000;

/// The shortest log retention: appenders trust what they learned of a log's tail for a
/// sixth of it (docs/storage-format.md, "Appends never land below the retained tail").
pub(crate) const MIN_LOG_RETENTION_MS: u64 = 60 * 60 * 1000;

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_batch_events: 1000,
            first_batch_events: 100,
            max_batch_wait_ms: 0,
            poll_interval_ms: 50,
            max_concurrent_keys: 256,
            max_batches_in_flight: 3,
            max_attempts: 3,
            retry_backoff_ms: 50,
            max_event_bytes: 1 << 20,
            journal_flush_window_ms: 50,
            compaction_fanout: 4,
            run_cache_bytes: 64 << 20,
            max_invocation_ms: 15 * 60 * 1000,
            gc_grace_ms: 30 * 60 * 1000,
            output_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

impl EngineSettings {
    pub(crate) fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Refuses settings under which the guarantees would not hold, naming the setting.
    ///
    /// ```
    /// use weir_engine::EngineSettings;
    /// let short = EngineSettings { gc_grace_ms: 60_000, ..Default::default() };
    /// let error = short.validate().unwrap_err().to_string();
    /// assert!(error.contains("gc_grace_ms=60000"), "{error}");
    /// ```
    pub fn validate(&self) -> crate::Result<()> {
        let floor = self.max_invocation_ms.saturating_add(GRACE_MARGIN_MS);
        if self.gc_grace_ms < floor {
            return Err(crate::Error::InvalidInput(format!(
                "gc_grace_ms={} is below max_invocation_ms={} plus {GRACE_MARGIN_MS} ms: collection could delete what a running invocation still writes",
                self.gc_grace_ms, self.max_invocation_ms
            )));
        }
        if self.log_retention_ms < MIN_LOG_RETENTION_MS {
            return Err(crate::Error::InvalidInput(format!(
                "log_retention_ms={} is below {MIN_LOG_RETENTION_MS} ms: a warm appender could write below the retained tail",
                self.log_retention_ms
            )));
        }
        Ok(())
    }
}
