//! The dispatch function: delivers committed outputs to a sink, exactly once in effect.
//!
//! Per partition, a durable cursor (see [`Cursor`]) records what was delivered; each batch
//! is delivered, then the cursor advanced. A crash in between redelivers the batch with the
//! same delivery ids, which the sink (an `Idempotency-Key`, a FIFO deduplication id, the
//! log's batch id) or the receiver recognises. The protocol is in `docs/dispatch.md`.

mod approval_links;
mod cursor;

pub use approval_links::ApprovalLinks;

use futures::TryStreamExt;
use serde::Serialize;
use weir_engine::{CommittedReader, EventLog, UsageMeter};

pub use cursor::{Cursor, CursorLink, OutputPosition};

use crate::approval_env::ApprovalEnvironment;
use crate::aws::AwsClients;
use crate::config::{DispatchConfig, FromVariables};
use crate::emf::Unit;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};
use crate::runtime;
use crate::sink::{Delivery, Sink};
use crate::usage;
use crate::work::{Deadline, PartitionOutcome, PartitionRequest, check_failures, for_each_partition};

/// What one partition's dispatch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub partition: u32,
    /// Outputs delivered (redeliveries included).
    pub delivered: usize,
    /// Batches delivered.
    pub batches: usize,
    /// How it ended.
    pub outcome: PartitionOutcome,
    /// Committed outputs left undelivered after it, when known (metrics on, or the cursor
    /// was read; not when another dispatcher took the partition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<u64>,
}

/// What an invocation did: the answer of the function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Outputs delivered, over all partitions.
    pub delivered: usize,
    /// Each partition looked at, in partition order.
    pub partitions: Vec<PartitionReport>,
}

/// The handler of the dispatch function.
///
/// ```no_run
/// # async fn example() -> weir_functions::Result<()> {
/// use std::time::{Duration, SystemTime};
/// use weir_functions::config::{DispatchConfig, FromVariables};
/// use weir_functions::dispatch::DispatchFunction;
/// use weir_functions::sink::Sink;
/// use weir_functions::work::{Deadline, PartitionRequest};
///
/// let config = DispatchConfig::from_env()?;
/// let sink = Sink::open(&config.sink, config.partitions, weir_functions::AwsClients::from_env).await?;
/// let deadline = Deadline::new(SystemTime::now() + Duration::from_secs(60), config.deadline_margin);
/// let report = DispatchFunction::new(config, sink).handle(PartitionRequest::default(), deadline).await?;
/// println!("delivered {}", report.delivered);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DispatchFunction {
    config: DispatchConfig,
    sink: Sink,
    sink_id: String,
    metrics: Metrics,
    /// Counts the requests of each invocation, for its usage record; `None` for an agent
    /// name the store cannot hold, which the configuration refuses before.
    meter: Option<UsageMeter>,
}

impl DispatchFunction {
    /// A dispatcher of `config.agent`'s outputs to `sink`, which `config.sink` names.
    pub fn new(mut config: DispatchConfig, sink: Sink) -> Self {
        let sink_id = config.sink.id();
        let metrics = Metrics::new(config.metrics, "dispatch", Some(&config.agent));
        let meter = usage::meter(&config.storage, &config.agent).ok();
        if let Some(meter) = &meter {
            config.storage = meter.storage().clone();
        }
        DispatchFunction { config, sink, sink_id, metrics, meter }
    }

    /// Publishes the metrics through `metrics` instead of as `config.metrics` says.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Delivers what the requested partitions (or all) committed and the sink has not
    /// received, until `deadline`; each partition with anything to deliver gets at least
    /// one batch. Partitions that fail are reported as an error after the others are done.
    /// What the invocation spent is recorded for `weir cost`.
    pub async fn handle(&self, request: PartitionRequest, deadline: Deadline) -> Result<DispatchReport> {
        if let Some(shadow) = request.shadow {
            return Err(Error::Event(format!("dispatch delivers production's outputs only, not shadow `{shadow}`'s")));
        }
        usage::metered(self.meter.as_ref(), &self.metrics, "dispatch", |_| 0, self.dispatch(request, deadline)).await
    }

    async fn dispatch(&self, request: PartitionRequest, deadline: Deadline) -> Result<DispatchReport> {
        let partitions = match request.partitions {
            Some(partitions) => partitions,
            None => (0..EventLog::open(self.config.storage.clone()).await?.partitions()).collect(),
        };
        let mut partitions = for_each_partition(partitions, |p| self.dispatch_partition(p, deadline)).await;
        partitions.sort_by_key(|p| p.partition);
        let report = DispatchReport { delivered: partitions.iter().map(|p| p.delivered).sum(), partitions };
        tracing::info!(delivered = report.delivered, "dispatched");
        self.publish_metrics(&report);
        check_failures(report.partitions.iter().map(|p| (p.partition, &p.outcome)))?;
        Ok(report)
    }

    /// The cursor of `partition` toward this function's sink, as stored.
    pub async fn cursor(&self, partition: u32) -> Result<Cursor> {
        Ok(Cursor::read(&self.config.storage, &self.config.agent, &self.sink_id, partition).await?)
    }

    async fn dispatch_partition(&self, partition: u32, deadline: Deadline) -> PartitionReport {
        let mut report =
            PartitionReport { partition, delivered: 0, batches: 0, outcome: PartitionOutcome::Done, undelivered: None };
        let result = self.deliver_backlog(partition, deadline, &mut report).await;
        report.outcome = PartitionOutcome::of(partition, result);
        let taken = matches!(report.outcome, PartitionOutcome::Fenced | PartitionOutcome::Leased);
        if taken {
            report.undelivered = None;
        } else if report.undelivered.is_none() && self.metrics.enabled() {
            // It stopped on an error (the sink is down): what waits is what the alarm is for.
            let measured = self.undelivered(partition).await;
            report.undelivered = measured
                .inspect_err(|error| tracing::warn!(partition, %error, "could not count undelivered outputs"))
                .ok();
        }
        report
    }

    /// Committed outputs of `partition` that the cursor has not passed: two reads.
    async fn undelivered(&self, partition: u32) -> Result<u64> {
        let committed = CommittedReader::new(self.config.storage.clone(), &self.config.agent, partition)?;
        let total = committed.head().await?.map_or(0, |head| head.totals().outputs);
        Ok(total.saturating_sub(self.cursor(partition).await?.head().outputs_before))
    }

    /// Prints the invocation's metrics (`docs/metrics.md`): its totals, and each partition's
    /// undelivered outputs.
    fn publish_metrics(&self, report: &DispatchReport) {
        if !self.metrics.enabled() {
            return;
        }
        let failed = report.partitions.iter().filter(|p| matches!(p.outcome, PartitionOutcome::Failed(_))).count();
        let totals = self
            .metrics
            .document()
            .metric(metrics::DELIVERED, Unit::Count, report.delivered)
            .metric(metrics::BATCHES, Unit::Count, report.partitions.iter().map(|p| p.batches).sum::<usize>())
            .metric(metrics::FAILED_PARTITIONS, Unit::Count, failed);
        let partitions = report.partitions.iter().filter_map(|p| {
            let document = self.metrics.document().dimension(metrics::PARTITION, p.partition.to_string());
            let document = document.also_by(&[metrics::AGENT, metrics::FUNCTION]);
            Some(document.metric(metrics::UNDELIVERED, Unit::Count, p.undelivered?))
        });
        self.metrics.emit(std::iter::once(totals).chain(partitions).collect::<Vec<_>>());
    }

    async fn deliver_backlog(
        &self,
        partition: u32,
        deadline: Deadline,
        report: &mut PartitionReport,
    ) -> Result<PartitionOutcome> {
        let (storage, agent) = (&self.config.storage, &self.config.agent);
        let committed = CommittedReader::new(storage.clone(), agent, partition)?;
        let mut cursor = self.cursor(partition).await?;
        let total = committed.head().await?.map_or(0, |head| head.totals().outputs);
        if total <= cursor.head().outputs_before {
            report.undelivered = Some(0);
            return Ok(PartitionOutcome::Done);
        }
        cursor.claim().await?;
        let from = cursor.head().next;
        let mut commits = std::pin::pin!(committed.outputs_from(from.seq));
        let mut last = None;
        while let Some(commit) = commits.try_next().await? {
            if last.is_none() && commit.seq > from.seq.max(1) {
                tracing::error!(
                    partition,
                    from = from.seq,
                    "commits were collected before their outputs were delivered"
                );
            }
            let outputs = &commit.outputs;
            let mut index = if commit.seq == from.seq { from.index as usize } else { 0 };
            while index < outputs.len() {
                if report.batches > 0 && deadline.reached() {
                    report.undelivered = Some(total.saturating_sub(cursor.head().outputs_before));
                    return Ok(PartitionOutcome::Deadline);
                }
                let end = outputs.len().min(index + self.sink.max_batch());
                let batch: Vec<Delivery> = (index..end)
                    .map(|i| Delivery {
                        id: delivery_id(agent, partition, commit.seq, i as u64),
                        key: outputs[i].key.clone(),
                        payload: match &self.config.approval_links {
                            Some(links) => links.dress(agent, outputs[i].payload.clone()),
                            None => outputs[i].payload.clone(),
                        },
                    })
                    .collect();
                self.sink.deliver(&batch).await?;
                let next = match end == outputs.len() {
                    true => OutputPosition { seq: commit.seq + 1, index: 0 },
                    false => OutputPosition { seq: commit.seq, index: end as u64 },
                };
                cursor.advance(next, commit.outputs_before + end as u64).await?;
                (report.delivered, report.batches, index) = (report.delivered + batch.len(), report.batches + 1, end);
            }
            last = Some((commit.seq, commit.outputs_before + outputs.len() as u64));
        }
        // Step over trailing commits without outputs, so the next dispatch does not read them.
        if let Some((seq, outputs_before)) = last {
            let past = OutputPosition { seq: seq + 1, index: 0 };
            if cursor.head().next < past {
                cursor.advance(past, outputs_before).await?;
            }
        }
        report.undelivered = Some(total.saturating_sub(cursor.head().outputs_before));
        Ok(PartitionOutcome::Done)
    }
}

/// The id of output `index` of commit `seq`: the same at every delivery attempt.
///
/// ```
/// assert_eq!(weir_functions::dispatch::delivery_id("scorer", 3, 42, 7), "scorer-p00003-00000000000000000042-000007");
/// ```
pub fn delivery_id(agent: &str, partition: u32, seq: u64, index: u64) -> String {
    format!("{agent}-p{partition:05}-{seq:020}-{index:06}")
}

/// Runs the dispatch function: reads the configuration and opens the sink (failing the init
/// if either is wrong), then serves invocations (`{}` or `{"partitions": [...]}`).
pub async fn serve() -> Result<()> {
    runtime::init_tracing();
    let function = runtime::init(async {
        let approvals = ApprovalEnvironment::load(|name| std::env::var(name).ok(), AwsClients::from_env).await?;
        let config = DispatchConfig::from_lookup(|name| approvals.get(name))?;
        let sink = Sink::open(&config.sink, config.partitions, AwsClients::from_env).await?;
        Ok(DispatchFunction::new(config, sink))
    })
    .await?;
    let margin = function.config.deadline_margin;
    runtime::serve_partitions(margin, |request, deadline| function.handle(request, deadline)).await
}
