//! The engine: claims partitions and runs an agent over their micro-batches.

mod agent;
mod batch;
mod context;
mod fence;
mod processor;
mod settings;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

pub use agent::{ActionError, Agent, LogInput, Rejected, Unavailable};
pub use context::{Branch, CallCounts, CallMode, Calls, Durable, DurableError, EventContext};
pub use processor::{BatchReport, PartitionProcessor};
pub use settings::EngineSettings;
pub(crate) use settings::MIN_LOG_RETENTION_MS;
pub(crate) use tasks::Tasks;

pub(crate) use fence::Fence;

use crate::clock::{Clock, SystemClock};
use crate::committed::Commit;
use crate::error::{ErrorKind, Result};
use crate::log::EventLog;
use crate::manifest::{Manifest, PartitionDir};
use crate::shadow::Shadow;
use crate::state::RunCache;
use crate::storage::Storage;
use crate::trace::TraceSink;

/// What an engine shares with its partition processors.
#[derive(Debug)]
pub(crate) struct Shared {
    storage: Storage,
    /// Read by the first claim, together with that partition's head: one round trip less
    /// before a cold invocation's first commit. Opening it also checks the store.
    log: tokio::sync::OnceCell<EventLog>,
    agent_name: String,
    agent: Arc<dyn Agent>,
    settings: Arc<EngineSettings>,
    clock: Arc<dyn Clock>,
    cache: Arc<RunCache>,
    counts: Arc<CallCounts>,
    /// Draws the invocations' nonces: seeded, so that a simulation replays exactly.
    rng: std::sync::Mutex<fastrand::Rng>,
    trace_sink: Option<Arc<dyn TraceSink>>,
    shadow: Option<Arc<Shadow>>,
}

impl Shared {
    /// Opens the log, once, and checks that the store honours create-if-absent, with a probe
    /// object in the agent's directory (where the process role may write).
    async fn log(&self) -> Result<&EventLog> {
        let open = async {
            let log_root = self.shadow.as_ref().map_or(&self.storage, |shadow| shadow.production());
            let log = EventLog::open(log_root.clone()).await?;
            let probe = crate::layout::agent_probe(&self.agent_name);
            self.storage.check_create_if_absent(&probe).await?;
            Ok::<_, crate::Error>(log.with_clock(self.clock.clone()))
        };
        self.log.get_or_try_init(|| open).await
    }

    /// A fresh invocation nonce: 16 hex digits.
    fn nonce(&self) -> String {
        format!("{:016x}", self.rng.lock().expect("rng").u64(..))
    }
}

impl std::fmt::Debug for dyn Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agent")
    }
}

/// Runs one agent over an event log, durably.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use weir_engine::{ActionError, Agent, Engine, EventContext, EventLog, LogInput, LogEvent, Storage};
///
/// struct Echo;
/// #[async_trait::async_trait]
/// impl Agent for Echo {
///     async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
///         ctx.emit(&event.payload)?;
///         Ok(())
///     }
/// }
///
/// let storage = Storage::from_url("memory://").unwrap();
/// let log = EventLog::create(storage.clone(), 2).await.unwrap();
/// log.append("b1", &[LogEvent::json("k", &serde_json::json!({"hello": 1}))]).await.unwrap();
/// let engine = Engine::builder(storage, "echo", Arc::new(Echo)).build().unwrap();
/// let report = engine.drain().await.unwrap();
/// assert_eq!((report.events, report.outputs), (1, 1));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

/// Builds an [`Engine`]: settings are data, clock and cache are components.
#[derive(Debug)]
pub struct EngineBuilder {
    storage: Storage,
    agent_name: String,
    agent: Arc<dyn Agent>,
    settings: EngineSettings,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<RunCache>>,
    seed: Option<u64>,
    trace_sink: Option<Arc<dyn TraceSink>>,
    shadow: Option<Shadow>,
}

impl EngineBuilder {
    /// Replaces the settings.
    pub fn settings(mut self, settings: EngineSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Replaces the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds the engine's randomness (invocation nonces), so that a run under a simulated
    /// clock and store repeats exactly. Unseeded, it is seeded from the operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares a run cache, e.g. between engines of one warm process.
    pub fn run_cache(mut self, cache: Arc<RunCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Hands each commit's traces to `sink` once the commit stands.
    pub fn trace_sink(mut self, sink: Arc<dyn TraceSink>) -> Self {
        self.trace_sink = Some(sink);
        self
    }

    /// Runs the engine as a shadow (`docs/replay.md`): its storage is the shadow's root
    /// ([`shadow_storage`](crate::shadow_storage)), the log is read under the production
    /// root, only the events of the shadow's ranges are handled, and each event's context
    /// carries production's [`Record`](crate::Record) of it.
    pub fn shadow(mut self, shadow: Shadow) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// Returns the engine. The log is opened on first use: by the first claim, while it
    /// reads its partition's head.
    pub fn build(self) -> Result<Engine> {
        crate::manifest::validate_agent_name(&self.agent_name)?;
        self.settings.validate()?;
        #[allow(clippy::disallowed_methods, reason = "the one seed drawn from the OS, unless a caller gave one")]
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..));
        let cache = self.cache.unwrap_or_else(|| RunCache::new(self.settings.run_cache_bytes));
        Ok(Engine {
            shared: Arc::new(Shared {
                storage: self.storage,
                log: tokio::sync::OnceCell::new(),
                agent_name: self.agent_name,
                agent: self.agent,
                settings: Arc::new(self.settings),
                clock: self.clock,
                cache,
                counts: Arc::default(),
                rng: std::sync::Mutex::new(fastrand::Rng::with_seed(seed)),
                trace_sink: self.trace_sink,
                shadow: self.shadow.map(Arc::new),
            }),
        })
    }
}

/// How to claim a partition ([`Engine::claim_with`]).
#[derive(Debug, Clone, Default)]
pub struct ClaimOptions {
    /// The head of the chain as the caller just read it; `None`: read it now. A head that
    /// is no longer the head makes the claim fenced.
    pub head: Option<Commit>,
    /// Until when the claiming invocation may run, in milliseconds since the epoch (its
    /// Lambda deadline): no claim takes the partition over before then, unless the holder
    /// [releases](PartitionProcessor::release) it. `None`: no lease.
    pub lease_until_ms: Option<u64>,
}

/// An invocation's time on a partition ([`Engine::drain_until`]), in milliseconds since the
/// epoch by the engine's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// When no further batch may start: the deadline less a margin for the work in flight.
    pub stop_at_ms: u64,
    /// The invocation's deadline: the lease its claim takes.
    pub lease_until_ms: u64,
}

/// Why [`Engine::drain_until`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The partition has no backlog left.
    CaughtUp,
    /// Backlog remains; the shift's stop time came first.
    Deadline,
}

/// Partitions whose backlog [`Engine::backlog`] checks at once.
const PARTITIONS_AT_ONCE: usize = 8;

/// What a drain did, summed over its batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrainReport {
    /// Batches committed.
    pub batches: usize,
    /// Input events processed.
    pub events: usize,
    /// Outputs committed.
    pub outputs: usize,
    /// Dead letters committed.
    pub dead_letters: usize,
    /// Commit latency of each batch.
    pub commit_latencies: Vec<Duration>,
}

impl DrainReport {
    fn add(&mut self, batch: &BatchReport) {
        self.batches += 1;
        self.events += batch.events;
        self.outputs += batch.outputs;
        self.dead_letters += batch.dead_letters;
        self.commit_latencies.push(batch.commit_latency);
    }

    fn merge(&mut self, other: DrainReport) {
        self.batches += other.batches;
        self.events += other.events;
        self.outputs += other.outputs;
        self.dead_letters += other.dead_letters;
        self.commit_latencies.extend(other.commit_latencies);
    }
}

impl Engine {
    /// Starts building an engine for the agent `agent_name` over the log in `storage`.
    pub fn builder(storage: Storage, agent_name: &str, agent: Arc<dyn Agent>) -> EngineBuilder {
        EngineBuilder {
            storage,
            agent_name: agent_name.to_string(),
            agent,
            settings: EngineSettings::default(),
            clock: Arc::new(SystemClock),
            cache: None,
            seed: None,
            trace_sink: None,
            shadow: None,
        }
    }

    /// The event log the engine reads, opened on first use.
    pub async fn log(&self) -> Result<&EventLog> {
        self.shared.log().await
    }

    /// The agent's name: its directory under `agents/`.
    pub fn agent_name(&self) -> &str {
        &self.shared.agent_name
    }

    /// The agent's work for its waiting keys outside any batch ([`Agent::tend`]): run it
    /// after draining; returns how many signals it appended to the log, which a drain reads.
    pub async fn tend(&self) -> std::result::Result<u64, ActionError> {
        self.shared.agent.tend(self).await
    }

    /// Counts of durable calls made and replayed by this engine.
    pub fn call_counts(&self) -> &CallCounts {
        &self.shared.counts
    }

    /// Claims `partition` for this invocation, fencing every older one.
    pub async fn claim(&self, partition: u32) -> Result<PartitionProcessor> {
        self.claim_with(partition, ClaimOptions::default()).await
    }

    /// Claims `partition` from `head`, the head of its chain as the caller just read it
    /// ([`CommittedReader::head`](crate::CommittedReader::head), [`Commit::genesis`] for an
    /// empty chain), without reading it again. If the chain has moved on since, the claim is
    /// fenced, as any claim is when another commit comes between its read and its claim.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use weir_engine::{Commit, CommittedReader, Engine, EventLog, Storage};
    /// # struct Idle;
    /// # #[async_trait::async_trait]
    /// # impl weir_engine::Agent for Idle {
    /// #     async fn on_event(&self, _: &weir_engine::LogInput, _: &mut weir_engine::EventContext) -> Result<(), weir_engine::ActionError> { Ok(()) }
    /// # }
    /// let storage = Storage::from_url("memory://").unwrap();
    /// EventLog::create(storage.clone(), 1).await.unwrap();
    /// let engine = Engine::builder(storage.clone(), "idle", Arc::new(Idle)).build().unwrap();
    /// let reader = CommittedReader::new(storage, "idle", 0).unwrap();
    /// let head = reader.head().await.unwrap().unwrap_or_else(Commit::genesis);
    /// let processor = engine.claim_from(0, head.clone()).await.unwrap();
    /// assert_eq!(processor.head().seq(), 1);
    /// assert!(engine.claim_from(0, head).await.is_err(), "the chain moved on: fenced");
    /// # });
    /// ```
    pub async fn claim_from(&self, partition: u32, head: Commit) -> Result<PartitionProcessor> {
        self.claim_with(partition, ClaimOptions { head: Some(head), ..Default::default() }).await
    }

    /// Claims `partition` as `options` say. A head under another invocation's live lease is
    /// not claimed: that is [`ErrorKind::Leased`], and nothing is written.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use weir_engine::{ClaimOptions, Clock, Engine, ErrorKind, EventLog, Storage, SystemClock};
    /// # struct Idle;
    /// # #[async_trait::async_trait]
    /// # impl weir_engine::Agent for Idle {
    /// #     async fn on_event(&self, _: &weir_engine::LogInput, _: &mut weir_engine::EventContext) -> Result<(), weir_engine::ActionError> { Ok(()) }
    /// # }
    /// let storage = Storage::from_url("memory://").unwrap();
    /// EventLog::create(storage.clone(), 1).await.unwrap();
    /// let engine = Engine::builder(storage, "idle", Arc::new(Idle)).build().unwrap();
    /// let lease = ClaimOptions { lease_until_ms: Some(SystemClock.now_ms() + 60_000), ..Default::default() };
    /// let holder = engine.claim_with(0, lease).await.unwrap();
    /// assert_eq!(engine.claim(0).await.unwrap_err().kind(), ErrorKind::Leased);
    /// holder.release().await.unwrap();
    /// assert!(engine.claim(0).await.is_ok(), "released: claimed at once");
    /// # });
    /// ```
    pub async fn claim_with(&self, partition: u32, options: ClaimOptions) -> Result<PartitionProcessor> {
        PartitionProcessor::claim(self.shared.clone(), partition, options).await
    }

    /// The partitions whose committed position is behind the log's tail, or that have a
    /// wait due (docs/waits.md), and that no live lease holds, each with the head its chain had: a claim can start from it
    /// ([`drain_until`](Self::drain_until)).
    pub async fn backlog(&self) -> Result<Vec<(u32, Commit)>> {
        use futures::{StreamExt, TryStreamExt};
        let log = self.log().await?;
        let now = self.shared.clock.now_ms();
        let checks = futures::stream::iter(0..log.partitions())
            .map(|p| async move {
                let dir = PartitionDir::new(self.shared.storage.clone(), &self.shared.agent_name, p)?;
                let head = dir.latest().await?.unwrap_or_else(Manifest::genesis);
                let backlog = log.has_events_from(p, head.position).await?;
                let leased = head.lease_until_ms.is_some_and(|until| until > now);
                // A due wait is work too, though the log may have nothing new.
                let due = head.waits.as_ref().is_some_and(|waits| waits.due(now));
                Ok::<_, crate::Error>(((backlog || due) && !leased).then_some((p, Commit::new(head))))
            })
            .buffered(PARTITIONS_AT_ONCE);
        let found: Vec<Option<(u32, Commit)>> = checks.try_collect().await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Claims `partition` for one invocation's `shift` (from `head` if its chain's head was
    /// just read) and commits batches until it is caught up or the shift's stop time has
    /// come; then releases it. Every claim commits at least one batch when there is
    /// backlog, so that an invocation makes progress however short its time. Returns what
    /// was committed with how the drain ended, also when it ended in an error.
    pub async fn drain_until(
        &self,
        partition: u32,
        head: Option<Commit>,
        shift: Shift,
    ) -> (DrainReport, Result<Ending>) {
        let lease = |head| ClaimOptions { head, lease_until_ms: Some(shift.lease_until_ms) };
        let claimed = match head {
            // A head read before other partitions were drained may be stale by now: a claim
            // fenced for that reads the chain again, as it would have without the head.
            Some(head) => match self.claim_with(partition, lease(Some(head))).await {
                Err(e) if e.kind() == ErrorKind::Fenced => self.claim_with(partition, lease(None)).await,
                claimed => claimed,
            },
            None => self.claim_with(partition, lease(None)).await,
        };
        let mut processor = match claimed {
            Ok(processor) => processor,
            Err(e) => return (DrainReport::default(), Err(e)),
        };
        let mut report = DrainReport::default();
        let ending = self.run_batches(&mut processor, &mut report, Some(shift.stop_at_ms)).await;
        // A partition that waits for something its events need is let go too, so that the
        // next scheduled invocation, not only the end of this one's lease, tries again.
        if ending.as_ref().is_ok() || ending.as_ref().is_err_and(|e| e.kind() == ErrorKind::Unavailable) {
            // The batches are committed whatever becomes of the release: a lease that could
            // not be let go only runs out at the shift's end.
            if let Err(e) = processor.release().await {
                tracing::warn!(partition, error = %e, "could not release the partition's lease");
            }
        }
        (report, ending)
    }

    /// Claims `partition` and processes batches until it is caught up.
    pub async fn drain_partition(&self, partition: u32) -> Result<DrainReport> {
        let mut processor = self.claim(partition).await?;
        let mut report = DrainReport::default();
        self.run_batches(&mut processor, &mut report, None).await?;
        processor.release().await?;
        Ok(report)
    }

    /// Commits batches into `report` until the partition is caught up or, past the first
    /// batch, `stop_at_ms` has come.
    async fn run_batches(
        &self,
        processor: &mut PartitionProcessor,
        report: &mut DrainReport,
        stop_at_ms: Option<u64>,
    ) -> Result<Ending> {
        loop {
            let batch = processor.process_batch().await?;
            if batch.seq.is_none() {
                return Ok(Ending::CaughtUp);
            }
            report.add(&batch);
            if stop_at_ms.is_some_and(|stop| self.shared.clock.now_ms() >= stop) {
                return Ok(Ending::Deadline);
            }
        }
    }

    /// Drains every partition, concurrently. A partition another invocation holds is
    /// left to it (its fencing error is not an error of the drain).
    pub async fn drain(&self) -> Result<DrainReport> {
        let drains = (0..self.log().await?.partitions()).map(|p| self.drain_partition(p));
        let mut report = DrainReport::default();
        for result in futures::future::join_all(drains).await {
            match result {
                Ok(partition) => report.merge(partition),
                Err(e) if matches!(e.kind(), ErrorKind::Fenced | ErrorKind::Leased) => {
                    tracing::info!(error = %e, "partition held by another invocation")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}
