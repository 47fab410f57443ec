//! The engine: claims partitions and runs an agent over their micro-batches.

mod agent;
mod batch;
mod context;
mod processor;
mod settings;

use std::sync::Arc;
use std::time::Duration;

pub use agent::{ActionError, Agent, InputEvent, Rejected};
pub use context::{Branch, CallCounts, CallMode, DurableError, EventContext};
pub use processor::{BatchReport, PartitionProcessor};
pub use settings::EngineSettings;

use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorKind, Result};
use crate::log::EventLog;
use crate::manifest::Manifest;
use crate::state::RunCache;
use crate::storage::Storage;

/// What an engine shares with its partition processors.
#[derive(Debug)]
pub(crate) struct Shared {
    storage: Storage,
    /// Read by the first claim, together with that partition's head: one round trip less
    /// before a cold invocation's first commit.
    log: tokio::sync::OnceCell<EventLog>,
    agent_name: String,
    agent: Arc<dyn Agent>,
    settings: Arc<EngineSettings>,
    clock: Arc<dyn Clock>,
    cache: Arc<RunCache>,
    counts: Arc<CallCounts>,
}

impl Shared {
    async fn log(&self) -> Result<&EventLog> {
        self.log.get_or_try_init(|| EventLog::open(self.storage.clone())).await
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
/// use weir_engine::{ActionError, Agent, Engine, EventContext, EventLog, InputEvent, LogEvent, Storage};
///
/// struct Echo;
/// #[async_trait::async_trait]
/// impl Agent for Echo {
///     async fn on_event(&self, event: &InputEvent, ctx: &mut EventContext) -> Result<(), ActionError> {
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

    /// Shares a run cache, e.g. between engines of one warm process.
    pub fn run_cache(mut self, cache: Arc<RunCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Returns the engine. The log is opened on first use: by the first claim, while it
    /// reads its partition's head.
    pub fn build(self) -> Result<Engine> {
        crate::manifest::validate_agent_name(&self.agent_name)?;
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
            }),
        })
    }
}

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

    /// Counts of durable calls made and replayed by this engine.
    pub fn call_counts(&self) -> &CallCounts {
        &self.shared.counts
    }

    /// Claims `partition` for this invocation, fencing every older one.
    pub async fn claim(&self, partition: u32) -> Result<PartitionProcessor> {
        PartitionProcessor::claim(self.shared.clone(), partition, None).await
    }

    /// Claims `partition` from `head`, the head of its chain as the caller just read it
    /// ([`PartitionDir::latest`](crate::PartitionDir::latest), [`Manifest::genesis`] for an
    /// empty chain), without reading it again. If the chain has moved on since, the claim is
    /// fenced, as any claim is when another commit comes between its read and its claim.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use weir_engine::{Engine, EventLog, Manifest, PartitionDir, Storage};
    /// # struct Idle;
    /// # #[async_trait::async_trait]
    /// # impl weir_engine::Agent for Idle {
    /// #     async fn on_event(&self, _: &weir_engine::InputEvent, _: &mut weir_engine::EventContext) -> Result<(), weir_engine::ActionError> { Ok(()) }
    /// # }
    /// let storage = Storage::from_url("memory://").unwrap();
    /// EventLog::create(storage.clone(), 1).await.unwrap();
    /// let engine = Engine::builder(storage.clone(), "idle", Arc::new(Idle)).build().unwrap();
    /// let dir = PartitionDir::new(storage, "idle", 0).unwrap();
    /// let head = dir.latest().await.unwrap().unwrap_or_else(Manifest::genesis);
    /// let processor = engine.claim_from(0, head.clone()).await.unwrap();
    /// assert_eq!(processor.head().seq, 1);
    /// assert!(engine.claim_from(0, head).await.is_err(), "the chain moved on: fenced");
    /// # });
    /// ```
    pub async fn claim_from(&self, partition: u32, head: Manifest) -> Result<PartitionProcessor> {
        PartitionProcessor::claim(self.shared.clone(), partition, Some(head)).await
    }

    /// Claims `partition` and processes batches until it is caught up.
    pub async fn drain_partition(&self, partition: u32) -> Result<DrainReport> {
        let mut processor = self.claim(partition).await?;
        let mut report = DrainReport::default();
        loop {
            let batch = processor.process_batch().await?;
            if batch.events == 0 {
                return Ok(report);
            }
            report.add(&batch);
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
                Err(e) if e.kind() == ErrorKind::Fenced => tracing::info!(error = %e, "partition taken over"),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}
