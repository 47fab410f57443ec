//! The collect function: garbage collection of an agent's partitions and of the log's
//! processed segments, invoked on a schedule (`docs/storage-format.md`, "Garbage
//! collection"). Without it, storage on AWS grows with history.
//!
//! It collects with the engine settings the process function runs with
//! (`WEIR_ENGINE_SETTINGS`), so that its grace period is the one every writer of the agent
//! counts on; settings whose grace is below the longest invocation plus five minutes fail
//! the init. Knowledge bases under the store (`docs/search.md`) are collected on the same
//! grace, as `weir kb gc` collects them.

use serde::Serialize;
use weir_engine::{Clock, EventLog, GcReport, SystemClock, UsageMeter, collect_log, collect_partition};

use crate::config::{CollectConfig, FromVariables};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::runtime;
use crate::usage;
use crate::work::{Deadline, PartitionOutcome, PartitionRequest, check_failures, for_each_partition};

/// What one partition's collection did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    /// The partition.
    pub partition: u32,
    /// What was deleted.
    pub deleted: GcReport,
    /// How it ended: `deadline` if the invocation's time ran out before it was started.
    pub outcome: PartitionOutcome,
}

/// What an invocation did: the answer of the function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectReport {
    /// What was deleted, over the partitions and the log.
    pub deleted: GcReport,
    /// Each partition, in partition order.
    pub partitions: Vec<PartitionReport>,
    /// What was deleted of the knowledge bases under the store.
    pub knowledge_bases: weir_search::CollectReport,
}

/// The handler of the collect function.
///
/// ```no_run
/// # async fn example() -> weir_functions::Result<()> {
/// use std::time::{Duration, SystemTime};
/// use weir_functions::collect::CollectFunction;
/// use weir_functions::config::{CollectConfig, FromVariables};
/// use weir_functions::work::{Deadline, PartitionRequest};
///
/// let config = CollectConfig::from_env()?;
/// let deadline = Deadline::new(SystemTime::now() + Duration::from_secs(300), config.deadline_margin);
/// let report = CollectFunction::new(config)?.handle(PartitionRequest::default(), deadline).await?;
/// println!("deleted {:?}", report.deleted);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CollectFunction {
    config: CollectConfig,
    /// Counts the requests of each invocation, for its usage record.
    meter: UsageMeter,
}

impl CollectFunction {
    /// A collector of `config.agent`'s objects; refuses settings whose grace is too short.
    pub fn new(mut config: CollectConfig) -> Result<Self> {
        config.settings.validate().map_err(|e| Error::config(crate::config::ENGINE_SETTINGS, e))?;
        let meter = usage::meter(&config.storage, &config.agent)?;
        config.storage = meter.storage().clone();
        Ok(CollectFunction { config, meter })
    }

    /// Collects the requested partitions (or all), then the log segments every agent has
    /// processed. A partition not started before `deadline` is left for the next invocation;
    /// partitions that fail are reported as an error after the others are done.
    pub async fn handle(&self, request: PartitionRequest, deadline: Deadline) -> Result<CollectReport> {
        usage::metered(Some(&self.meter), &Metrics::off("collect"), "collect", |_| 0, self.collect(request, deadline))
            .await
    }

    async fn collect(&self, request: PartitionRequest, deadline: Deadline) -> Result<CollectReport> {
        let (storage, settings) = (&self.config.storage, &self.config.settings);
        let log = match EventLog::open(storage.clone()).await {
            Ok(log) => log,
            // No log yet: no agent ever wrote, so only knowledge bases may need collecting.
            Err(weir_engine::Error::NoLog { .. }) => {
                let knowledge_bases =
                    weir_search::collect_all(storage, settings.gc_grace_ms, SystemClock.now_ms()).await?;
                return Ok(CollectReport { knowledge_bases, ..CollectReport::default() });
            }
            Err(e) => return Err(e.into()),
        };
        let partitions = request.partitions.unwrap_or_else(|| (0..log.partitions()).collect());
        let collect = |partition: u32| async move {
            if deadline.reached() {
                return (partition, Ok(PartitionOutcome::Deadline), GcReport::default());
            }
            match collect_partition(storage, &self.config.agent, partition, settings, &SystemClock).await {
                Ok(deleted) => (partition, Ok(PartitionOutcome::Done), deleted),
                Err(e) => (partition, Err(e.into()), GcReport::default()),
            }
        };
        let mut report = CollectReport::default();
        for (partition, outcome, deleted) in for_each_partition(partitions, collect).await {
            report.deleted += deleted.clone();
            report.partitions.push(PartitionReport {
                partition,
                deleted,
                outcome: PartitionOutcome::of(partition, outcome),
            });
        }
        report.partitions.sort_by_key(|p| p.partition);
        if !deadline.reached() {
            report.deleted += collect_log(&log, settings, &SystemClock).await?;
        }
        let knowledge_bases = match deadline.reached() {
            true => Ok(weir_search::CollectReport::default()),
            false => weir_search::collect_all(storage, settings.gc_grace_ms, SystemClock.now_ms()).await,
        };
        tracing::info!(deleted = ?report.deleted, "collected");
        check_failures(report.partitions.iter().map(|p| (p.partition, &p.outcome)))?;
        report.knowledge_bases = knowledge_bases?;
        Ok(report)
    }
}

/// Runs the collect function: reads the configuration (failing the init if it, or the grace
/// it implies, is wrong), then serves invocations (`{}` or `{"partitions": [...]}`).
pub async fn run() -> Result<()> {
    runtime::init_tracing();
    let function = runtime::init(async { CollectFunction::new(CollectConfig::from_env()?) }).await?;
    let margin = function.config.deadline_margin;
    runtime::serve_partitions(margin, |request, deadline| function.handle(request, deadline)).await
}
