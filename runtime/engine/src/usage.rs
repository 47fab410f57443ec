//! What each invocation of an agent's functions spent on infrastructure: its object-store
//! requests by kind, its duration and its memory, kept as one small record per invocation
//! under the agent's directory (`docs/observability.md`, "Cost").
//!
//! The requests are counted by a [`CountingStore`] around the store the invocation works
//! on, so they are the requests it made, whatever they were for: commits and claims, but
//! also the reads of a claim that lost, the files of a commit that was fenced, retries, a
//! dispatch's cursor, a collection's deletes. A record is written once the invocation's
//! work is done, and counts its own PUT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::validate_agent_name;
use crate::storage::Storage;
use crate::store::{CountingStore, RequestCounts, RequestCountsSnapshot};

/// Records read at once.
const READS_AT_ONCE: usize = 32;

/// What one invocation of a function spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationUsage {
    /// The function: `ingest`, `process`, `dispatch`, `collect`, or `run` for `weir run`.
    pub function: String,
    /// When it started, in milliseconds since the epoch.
    pub started_ms: u64,
    /// How long its work took, in milliseconds: what Lambda bills, less its start-up.
    pub duration_ms: u64,
    /// The memory it was given, in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`); `None` outside
    /// Lambda.
    pub memory_mb: Option<u32>,
    /// Events it appended (ingest) or processed (process, run).
    pub events: u64,
    /// The object-store requests it made, by kind, this record's own PUT included.
    pub requests: RequestCountsSnapshot,
    /// Whether it was the first of its environment (a Lambda cold start, a fresh `weir run`).
    #[serde(default)]
    pub cold_start: bool,
    /// Of a cold start: milliseconds from when the function made its meter, during its
    /// start-up, to the invocation's start. A lower bound of the start-up: what ran before
    /// the meter was made is not in it (Lambda's `Init Duration` has the whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<u64>,
}

/// Counts an agent's functions' requests and keeps a record of each invocation.
///
/// Hand [`UsageMeter::storage`] to whatever the invocation does, [`UsageMeter::start`] it,
/// and [`MeteredInvocation::finish`] it when its work is done:
///
/// ```
/// # tokio_test_block_on(async {
/// use weir_engine::{Storage, UsageMeter, read_usage};
///
/// let storage = Storage::from_url("memory://").unwrap();
/// let meter = UsageMeter::new(&storage, "reviews").unwrap();
/// let invocation = meter.start("dispatch");
/// meter.storage().put(&meter.storage().path("somewhere"), "x".into()).await.unwrap();
/// let usage = invocation.finish(0, Some(1024)).await.unwrap();
/// assert_eq!(usage.requests.put, 2, "the work's PUT and the record's own");
/// assert_eq!(read_usage(&storage, "reviews", None).await.unwrap(), vec![usage]);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UsageMeter {
    /// The store with a counter around it.
    metered: Storage,
    /// The store itself, for the record, whose PUT is added by hand so that it is not
    /// counted again by the next invocation.
    plain: Storage,
    counts: Arc<RequestCounts>,
    agent: String,
    /// Draws the records' nonces.
    rng: Arc<Mutex<fastrand::Rng>>,
    /// When the meter was made: the function's start-up.
    created: Instant,
    /// Whether no invocation has started yet in this environment.
    fresh: Arc<AtomicBool>,
}

impl UsageMeter {
    /// Meters the requests made through [`UsageMeter::storage`] for `agent`.
    pub fn new(storage: &Storage, agent: &str) -> Result<Self> {
        validate_agent_name(agent)?;
        let counting = CountingStore::new(storage.store().clone());
        let counts = counting.counts();
        #[allow(clippy::disallowed_methods, reason = "records are no part of what a simulation replays")]
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(fastrand::u64(..))));
        Ok(UsageMeter {
            metered: storage.with_store(Arc::new(counting)),
            plain: storage.clone(),
            counts,
            agent: agent.into(),
            rng,
            created: Instant::now(),
            fresh: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The store to work on: every request through it is counted.
    pub fn storage(&self) -> &Storage {
        &self.metered
    }

    /// Starts metering one invocation of `function`. Invocations of one environment run
    /// one at a time, as on Lambda: one that overlaps another counts the other's requests
    /// too.
    pub fn start(&self, function: &str) -> MeteredInvocation {
        let cold_start = self.fresh.swap(false, Ordering::SeqCst);
        MeteredInvocation {
            cold_start,
            init_ms: cold_start.then(|| self.created.elapsed().as_millis() as u64),
            meter: self.clone(),
            function: function.into(),
            started_ms: SystemClock.now_ms(),
            started: Instant::now(),
            counts_before: self.counts.snapshot(),
        }
    }
}

/// One invocation being metered, from [`UsageMeter::start`].
#[derive(Debug)]
pub struct MeteredInvocation {
    meter: UsageMeter,
    function: String,
    started_ms: u64,
    started: Instant,
    counts_before: RequestCountsSnapshot,
    cold_start: bool,
    init_ms: Option<u64>,
}

impl MeteredInvocation {
    /// Ends the invocation: writes its record, with the `events` it appended or processed
    /// and the `memory_mb` it ran with, and returns it. A record that cannot be written is
    /// an error the caller may log and ignore: the work it describes is done.
    pub async fn finish(self, events: u64, memory_mb: Option<u32>) -> Result<InvocationUsage> {
        let mut requests = self.meter.counts.snapshot() - self.counts_before;
        requests.put += 1;
        let usage = InvocationUsage {
            function: self.function,
            started_ms: self.started_ms,
            duration_ms: self.started.elapsed().as_millis() as u64,
            memory_mb,
            events,
            requests,
            cold_start: self.cold_start,
            init_ms: self.init_ms,
        };
        let nonce = format!("{:016x}", self.meter.rng.lock().expect("rng").u64(..));
        let path = self.meter.plain.path(&layout::usage_record(&self.meter.agent, usage.started_ms, &nonce));
        let body = serde_json::to_vec(&usage).map_err(|e| Error::InvalidInput(format!("usage record: {e}")))?;
        self.meter.plain.put(&path, Bytes::from(body)).await?;
        Ok(usage)
    }
}

/// The usage records of `agent`'s invocations that started at or after `since_ms` (all
/// when `None`), in the order they started.
pub async fn read_usage(storage: &Storage, agent: &str, since_ms: Option<u64>) -> Result<Vec<InvocationUsage>> {
    validate_agent_name(agent)?;
    let dir = storage.path(&layout::usage_dir(agent));
    // Names sort by start time, so a LIST after the first possible name at `since_ms`
    // reads only the records that follow it.
    let offset = since_ms.map(|ms| dir.clone().join(layout::usage_record_name(ms, "")));
    let objects = storage.list_after(&dir, offset.as_ref()).await?;
    let reads = objects.into_iter().map(|object| async move {
        let bytes = storage.get(&object.location).await?.unwrap_or_default();
        serde_json::from_slice::<InvocationUsage>(&bytes)
            .map_err(|e| Error::corrupt(&object.location, format!("not a usage record: {e}")))
    });
    futures::stream::iter(reads).buffered(READS_AT_ONCE).try_collect().await
}

/// Deletes `agent`'s usage records older than `retention_ms`; returns how many.
pub(crate) async fn collect_usage(storage: &Storage, agent: &str, retention_ms: u64, now_ms: u64) -> Result<usize> {
    let dir = storage.path(&layout::usage_dir(agent));
    let cutoff = now_ms.saturating_sub(retention_ms);
    let expired: Vec<_> = storage
        .list_after(&dir, None)
        .await?
        .into_iter()
        .filter(|o| o.location.filename().and_then(layout::usage_record_started_ms).is_some_and(|ms| ms < cutoff))
        .map(|o| o.location)
        .collect();
    let count = expired.len();
    storage.delete_all(expired).await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_read_back_from_a_time_on_and_expire() {
        let storage = Storage::from_url("memory://").unwrap();
        let meter = UsageMeter::new(&storage, "reviews").unwrap();
        let first = meter.start("process");
        meter.storage().get(&meter.storage().path("absent")).await.unwrap();
        let first = first.finish(3, None).await.unwrap();
        assert_eq!((first.requests.get, first.requests.put, first.events), (1, 1, 3));
        assert!(first.cold_start && first.init_ms.is_some(), "the environment's first: {first:?}");
        let second = meter.start("process").finish(0, Some(512)).await.unwrap();
        assert!(!second.cold_start && second.init_ms.is_none(), "a warm one: {second:?}");
        assert_eq!(
            second.requests,
            RequestCountsSnapshot { put: 1, ..Default::default() },
            "the first's record not counted"
        );

        assert_eq!(read_usage(&storage, "reviews", None).await.unwrap().len(), 2);
        let later = read_usage(&storage, "reviews", Some(first.started_ms + 1)).await.unwrap();
        assert!(later.iter().all(|u| u.started_ms > first.started_ms));
        assert!(read_usage(&storage, "other", None).await.unwrap().is_empty());

        let now = second.started_ms.max(first.started_ms);
        assert_eq!(collect_usage(&storage, "reviews", 0, now + 1).await.unwrap(), 2);
        assert!(read_usage(&storage, "reviews", None).await.unwrap().is_empty());
        assert!(UsageMeter::new(&storage, "no/slash").is_err(), "agent names are checked");
    }

    #[tokio::test]
    async fn a_corrupt_record_is_named() {
        let storage = Storage::from_url("memory://").unwrap();
        storage.put(&storage.path(&layout::usage_record("reviews", 5, "abc")), "{".into()).await.unwrap();
        let error = read_usage(&storage, "reviews", None).await.unwrap_err();
        assert!(error.to_string().contains("not a usage record"), "{error}");
    }
}
