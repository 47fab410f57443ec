//! What invokes functions without a caller: new segments in the event log, and a schedule.
//! Both invoke asynchronously (`Event`), as S3 notifications and EventBridge do on AWS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use weir_engine::{ErrorKind, EventLog, Storage};

use crate::switchboard::Switchboard;

/// A source of asynchronous invocations. The payload shapes are documented in
/// `docs/configuration.md`, "Invocation payloads".
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Trigger {
    /// Invokes `function` with `{"partitions": [p, …]}`, the partitions whose tail moved,
    /// whenever a poll of the weir event log in `storage` finds new segments. Partitions
    /// that already hold segments when the emulator starts count as moved on the first poll.
    /// A store with no log yet is polled until one appears.
    LogSegments {
        /// The function to invoke.
        function: String,
        /// The store holding the log.
        storage: Storage,
        /// How often the log's tails are read.
        poll_every: Duration,
    },
    /// Invokes `function` with `payload` every `every`, the first time one interval after start.
    Schedule {
        /// The function to invoke.
        function: String,
        /// The interval.
        every: Duration,
        /// The payload of every invocation.
        payload: Value,
    },
}

impl Trigger {
    /// A log-segments trigger that polls every second.
    pub fn log_segments(function: impl Into<String>, storage: Storage) -> Self {
        Trigger::LogSegments { function: function.into(), storage, poll_every: Duration::from_secs(1) }
    }

    /// A schedule invoking `function` with `{}` every `every`.
    pub fn schedule(function: impl Into<String>, every: Duration) -> Self {
        Trigger::Schedule { function: function.into(), every, payload: json!({}) }
    }

    /// The function it invokes.
    pub fn function(&self) -> &str {
        match self {
            Trigger::LogSegments { function, .. } | Trigger::Schedule { function, .. } => function,
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        match self {
            Trigger::LogSegments { poll_every, .. } => *poll_every,
            Trigger::Schedule { every, .. } => *every,
        }
    }

    /// Invokes through `switchboard` until shutdown begins.
    pub(crate) async fn run(self, switchboard: Arc<Switchboard>) {
        let stopping = switchboard.stopping.clone();
        match self {
            Trigger::LogSegments { function, storage, poll_every } => {
                let mut watcher = LogWatcher { storage, log: None, seen: BTreeMap::new() };
                loop {
                    let moved = watcher.moved_partitions().await;
                    if !moved.is_empty() {
                        invoke(&switchboard, &function, &json!({ "partitions": moved }));
                    }
                    if stopping.run_until_cancelled(tokio::time::sleep(poll_every)).await.is_none() {
                        return;
                    }
                }
            }
            Trigger::Schedule { function, every, payload } => {
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while stopping.run_until_cancelled(ticks.tick()).await.is_some() {
                    invoke(&switchboard, &function, &payload);
                }
            }
        }
    }
}

fn invoke(switchboard: &Arc<Switchboard>, function: &str, payload: &Value) {
    let payload = Bytes::from(serde_json::to_vec(payload).expect("JSON serializes"));
    match switchboard.invoke_in_background(function, payload, None) {
        Ok(request_id) => tracing::debug!(%function, %request_id, "trigger invoked"),
        Err(e) => tracing::warn!(%function, error = %e, "trigger could not invoke"),
    }
}

/// The event log's tails as last seen.
struct LogWatcher {
    storage: Storage,
    log: Option<EventLog>,
    /// The next segment number of each partition at the last poll.
    seen: BTreeMap<u32, u64>,
}

impl LogWatcher {
    /// The partitions whose tail moved since the last poll; none while there is no log.
    async fn moved_partitions(&mut self) -> Vec<u32> {
        if self.log.is_none() {
            match EventLog::open(self.storage.clone()).await {
                Ok(log) => self.log = Some(log),
                // No log yet: nothing has been ingested.
                Err(e) if e.kind() == ErrorKind::InvalidInput => return Vec::new(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the event log");
                    return Vec::new();
                }
            }
        }
        let log = self.log.as_ref().expect("opened above");
        let mut moved = Vec::new();
        for partition in 0..log.partitions() {
            match log.tail(partition).await {
                Ok(tail) if tail > self.seen.get(&partition).copied().unwrap_or(0) => {
                    self.seen.insert(partition, tail);
                    moved.push(partition);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(partition, error = %e, "cannot read the event log's tail"),
            }
        }
        moved
    }
}
