//! The process function: claims partitions with backlog and runs the agent over their
//! micro-batches until the invocation's deadline approaches, then hands what remains to a
//! fresh invocation of itself.
//!
//! This is a library: the `weir-process` binary links an agent and calls [`serve`].

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use weir_engine::{Agent, Clock, Commit, CommittedReader, Ending, Engine, ShadowPlan, UsageMeter};
use weir_telemetry::OtlpExport;

use crate::agent_counters::{AgentCounters, CounterDeltas};
use crate::aws::AwsClients;
use crate::config::{FromVariables, ProcessConfig};
use crate::emf::{EmfDocument, Unit};
use crate::error::{Error, Result};
use crate::invoke::LambdaInvoker;
use crate::metrics::{self, Metrics};
use crate::runtime;
use crate::trigger::Trigger;
use crate::usage;
use crate::work::{Deadline, PartitionOutcome, PartitionRequest, check_failures, for_each_partition};

/// What one partition's drain did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub partition: u32,
    /// Batches committed.
    pub batches: usize,
    /// Input events processed.
    pub events: usize,
    /// Outputs committed.
    pub outputs: usize,
    /// Dead letters committed.
    pub dead_letters: usize,
    /// How it ended.
    pub outcome: PartitionOutcome,
    /// Log segments left to process after it, when measured (metrics on, and the partition
    /// is neither caught up, nor another invocation's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// How long the oldest event it left has waited, in milliseconds (from its segment's
    /// append), measured with the backlog: 0 when it caught up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

impl PartitionReport {
    /// `later`, a second drain of the partition in the same invocation, added to this one:
    /// the counts summed, the later outcome.
    fn add(&mut self, later: PartitionReport) {
        self.batches += later.batches;
        self.events += later.events;
        self.outputs += later.outputs;
        self.dead_letters += later.dead_letters;
        self.outcome = later.outcome;
    }
}

/// What an invocation did: the answer of the function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessReport {
    /// Batches committed, over all partitions.
    pub batches: usize,
    /// Input events processed, over all partitions.
    pub events: usize,
    /// Each partition worked on, in partition order.
    pub partitions: Vec<PartitionReport>,
    /// The partitions handed to a continuation invocation (empty: none was needed).
    pub continued: Vec<u32>,
}

impl ProcessReport {
    /// The totals of `partitions`, in partition order, and those the deadline left.
    fn of(mut partitions: Vec<PartitionReport>) -> Self {
        partitions.sort_by_key(|p| p.partition);
        ProcessReport {
            batches: partitions.iter().map(|p| p.batches).sum(),
            events: partitions.iter().map(|p| p.events).sum(),
            continued: partitions
                .iter()
                .filter(|p| p.outcome == PartitionOutcome::Deadline)
                .map(|p| p.partition)
                .collect(),
            partitions,
        }
    }
}

/// The handler of the process function, reusable across the invocations of a warm
/// environment.
///
/// ```no_run
/// # async fn example(agent: std::sync::Arc<dyn weir_engine::Agent>) -> weir_functions::Result<()> {
/// use weir_functions::config::{FromVariables, ProcessConfig};
/// use weir_functions::process::ProcessFunction;
/// use weir_functions::work::{Deadline, PartitionRequest};
/// use weir_functions::{AwsClients, LambdaInvoker};
///
/// let config = ProcessConfig::from_env()?;
/// let margin = config.deadline_margin;
/// let function = ProcessFunction::new(config, agent, LambdaInvoker::new(&AwsClients::from_env().await))?;
/// let deadline = Deadline::new(std::time::SystemTime::now() + std::time::Duration::from_secs(60), margin);
/// let report = function.handle(PartitionRequest::default(), deadline).await?;
/// println!("{} events, continued with {:?}", report.events, report.continued);
/// # Ok(()) }
/// ```
pub struct ProcessFunction {
    config: ProcessConfig,
    invoker: LambdaInvoker,
    /// Dispatch, invoked for the partitions outputs were committed to.
    dispatch: Option<Trigger>,
    /// Opens the log at its first claim: at cold start the log may not exist yet.
    engine: Engine,
    /// Sends the committed spans when `OTEL_EXPORTER_OTLP_*` says where.
    export: Option<Arc<OtlpExport>>,
    metrics: Metrics,
    /// The agent's model counters, if it keeps any.
    counters: Option<Arc<dyn AgentCounters>>,
    deltas: CounterDeltas,
    /// The agent, for the engines of shadows.
    agent: Arc<dyn Agent>,
    /// The engine of each shadow this environment has run, by name, and the meter of its
    /// invocations.
    shadows: tokio::sync::Mutex<HashMap<String, (Engine, UsageMeter)>>,
    /// Counts the requests of each invocation, for its usage record.
    meter: UsageMeter,
}

impl std::fmt::Debug for ProcessFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFunction")
            .field("config", &self.config)
            .field("metrics", &self.metrics)
            .field("counters", &self.counters.is_some())
            .finish_non_exhaustive()
    }
}

impl ProcessFunction {
    /// A handler running `agent` as `config` says, continuing through `invoker`.
    pub fn new(mut config: ProcessConfig, agent: Arc<dyn Agent>, invoker: LambdaInvoker) -> Result<Self> {
        let meter = usage::meter(&config.storage, &config.agent)?;
        config.storage = meter.storage().clone();
        let mut engine =
            Engine::builder(config.storage.clone(), &config.agent, agent.clone()).settings(config.settings.clone());
        let export = OtlpExport::from_env().map_err(|e| Error::config("OTEL_EXPORTER_OTLP_ENDPOINT", e))?;
        if let Some(export) = &export {
            engine = engine.trace_sink(export.clone());
        }
        let dispatch = config.dispatch_function.as_ref().map(|function| Trigger::new(invoker.clone(), function));
        let metrics = Metrics::new(config.metrics, "process", Some(&config.agent));
        Ok(ProcessFunction {
            config,
            invoker,
            dispatch,
            engine: engine.build()?,
            export,
            metrics,
            counters: None,
            deltas: CounterDeltas::default(),
            agent,
            shadows: Default::default(),
            meter,
        })
    }

    /// Publishes the agent's model counters (calls, tokens, retries, breakers) with the
    /// metrics of each invocation.
    pub fn with_counters(mut self, counters: Arc<dyn AgentCounters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Publishes the metrics through `metrics` instead of as `config.metrics` says.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Handles one invocation: drains the requested partitions (or every one with backlog
    /// that no other invocation holds) until `deadline`, then invokes dispatch
    /// (`dispatch_function`) for the partitions it committed outputs to, and the continuation
    /// function with those left over.
    ///
    /// Every claimed partition gets at least one batch, so that an invocation makes
    /// progress however short its time, and each claim holds a lease until the deadline,
    /// released when the partition is left. Partitions that fail are reported as an error
    /// after the continuation is sent. What the invocation spent is recorded for
    /// `weir cost`.
    pub async fn handle(&self, request: PartitionRequest, deadline: Deadline) -> Result<ProcessReport> {
        if let Some(shadow) = &request.shadow {
            return self.handle_shadow(shadow, request.partitions, deadline).await;
        }
        let work = self.process(request, deadline);
        usage::metered(Some(&self.meter), &self.metrics, "process", |report: &ProcessReport| report.events, work).await
    }

    async fn process(&self, request: PartitionRequest, deadline: Deadline) -> Result<ProcessReport> {
        if let Some(export) = &self.export {
            // Lambda's runtime sets it for each invocation: the spans join the invocation's
            // X-Ray trace.
            let xray = std::env::var("_X_AMZN_TRACE_ID").ok().and_then(|h| weir_engine::TraceParent::from_xray(&h));
            export.begin_invocation("process", xray);
        }
        let engine = &self.engine;
        let (partitions, heads) = match request.partitions {
            Some(partitions) => (partitions, HashMap::new()),
            None => {
                let heads: HashMap<u32, Commit> = engine.backlog().await?.into_iter().collect();
                let mut partitions: Vec<u32> = heads.keys().copied().collect();
                partitions.sort_unstable();
                (partitions, heads)
            }
        };
        let drains = for_each_partition(partitions, |p| drain(engine, p, heads.get(&p).cloned(), deadline));
        let mut partitions = drains.await;
        // Calls waiting on providers' batch APIs are submitted and polled (docs/batch-calls.md);
        // results that came in resume their keys at once if the invocation has time, else in
        // the next one, for which they are backlog.
        match engine.tend().await {
            Ok(0) => {}
            Ok(answered) if !deadline.reached() => {
                tracing::info!(answered, "batch results appended: draining them");
                let heads: HashMap<u32, Commit> = engine.backlog().await?.into_iter().collect();
                let resumed = for_each_partition(heads.keys().copied().collect(), |p| {
                    drain(engine, p, heads.get(&p).cloned(), deadline)
                });
                for again in resumed.await {
                    match partitions.iter_mut().find(|p| p.partition == again.partition) {
                        Some(first) => first.add(again),
                        None => partitions.push(again),
                    }
                }
            }
            Ok(answered) => tracing::info!(answered, "batch results appended, for the next invocation"),
            Err(error) => tracing::warn!(%error, "batch calls not tended; the next invocation tries again"),
        }
        // Before the invocation returns: Lambda freezes the process after.
        if let Some(export) = &self.export
            && let Err(error) = export.flush().await
        {
            tracing::warn!(%error, "spans not exported; the committed trace keeps them");
        }
        partitions.sort_by_key(|p| p.partition);
        if self.metrics.enabled() {
            for partition in &mut partitions {
                (partition.backlog, partition.lag_ms) = self.backlog(partition).await.unzip();
            }
        }
        let report = ProcessReport::of(partitions);
        self.publish_metrics(&report);
        let with_outputs = report.partitions.iter().filter(|p| p.outputs > 0).map(|p| p.partition).collect();
        if let Some(dispatch) = &self.dispatch {
            dispatch.fire(with_outputs).await;
        }
        if !report.continued.is_empty() {
            let request = PartitionRequest { partitions: Some(report.continued.clone()), shadow: None };
            let payload = serde_json::to_value(request).expect("a request serializes");
            self.invoker.invoke_async(&self.config.continuation_function, &payload).await?;
        }
        tracing::info!(events = report.events, batches = report.batches, continued = ?report.continued, "processed");
        check_failures(report.partitions.iter().map(|p| (p.partition, &p.outcome)))?;
        Ok(report)
    }

    /// Runs a replay's shadow (`docs/replay.md`): drains `partitions` of its plan (all when
    /// `None`) until each reaches the end of its range or `deadline`, then continues with
    /// those left. A shadow is no production run: nothing is dispatched, exported or counted
    /// in the agent's metrics; its invocations' usage records are kept in its namespace,
    /// apart from production's (`weir cost --shadow`).
    async fn handle_shadow(
        &self,
        shadow: &str,
        partitions: Option<Vec<u32>>,
        deadline: Deadline,
    ) -> Result<ProcessReport> {
        let (engine, planned, meter) = self.shadow_engine(shadow).await?;
        let work = self.replay(shadow, engine, planned, partitions, deadline);
        usage::metered(Some(&meter), &Metrics::off("process"), "process", |r: &ProcessReport| r.events, work).await
    }

    async fn replay(
        &self,
        shadow: &str,
        engine: Engine,
        planned: Vec<u32>,
        partitions: Option<Vec<u32>>,
        deadline: Deadline,
    ) -> Result<ProcessReport> {
        let partitions = partitions.unwrap_or(planned);
        let partitions = for_each_partition(partitions, |p| drain(&engine, p, None, deadline)).await;
        let report = ProcessReport::of(partitions);
        if !report.continued.is_empty() {
            let request = PartitionRequest { partitions: Some(report.continued.clone()), shadow: Some(shadow.into()) };
            let payload = serde_json::to_value(request).expect("a request serializes");
            self.invoker.invoke_async(&self.config.continuation_function, &payload).await?;
        }
        tracing::info!(shadow, events = report.events, continued = ?report.continued, "replayed");
        check_failures(report.partitions.iter().map(|p| (p.partition, &p.outcome)))?;
        Ok(report)
    }

    /// The engine of `shadow`, the partitions its plan replays and the meter of its
    /// invocations (whose records go to the shadow's namespace), made once per environment.
    async fn shadow_engine(&self, shadow: &str) -> Result<(Engine, Vec<u32>, UsageMeter)> {
        let storage = weir_engine::shadow_storage(&self.config.storage, shadow)
            .map_err(|e| Error::Event(format!("shadow `{shadow}`: {e}")))?;
        let plan = ShadowPlan::read(&storage).await?.ok_or_else(|| {
            Error::Event(format!("there is no shadow `{shadow}` in the store: `weir replay` makes one"))
        })?;
        let planned = plan.ranges.keys().copied().collect();
        let mut shadows = self.shadows.lock().await;
        if let Some((engine, meter)) = shadows.get(shadow) {
            return Ok((engine.clone(), planned, meter.clone()));
        }
        let meter = usage::meter(&storage, &plan.production_agent)?;
        // Production's record, read through the shadow's meter too.
        let production = self.config.storage.with_store(meter.storage().store().clone());
        let engine = Engine::builder(meter.storage().clone(), &plan.production_agent, self.agent.clone())
            .settings(self.config.settings.clone())
            .shadow(plan.shadow(production))
            .build()?;
        shadows.insert(shadow.to_string(), (engine.clone(), meter.clone()));
        Ok((engine, planned, meter))
    }

    /// The log segments `partition` has left after its drain, and how long the oldest of
    /// its events has waited: none if it caught up; read from the store if it stopped
    /// short; not measured if another invocation has it.
    async fn backlog(&self, partition: &PartitionReport) -> Option<(u64, u64)> {
        match partition.outcome {
            PartitionOutcome::Done => return Some((0, 0)),
            PartitionOutcome::Fenced | PartitionOutcome::Leased => return None,
            _ => {}
        }
        let p = partition.partition;
        let measured = async {
            let reader = CommittedReader::new(self.config.storage.clone(), &self.config.agent, p)?;
            let position = reader.head().await?.map(|head| head.position()).unwrap_or_default();
            let log = self.engine.log().await?;
            let segments = log.tail(p).await?.saturating_sub(position.segment);
            // The oldest event left is in the segment at the committed position.
            let appended = match segments {
                0 => None,
                _ => log.appended_at_ms(p, position.segment).await?,
            };
            let lag = appended.map_or(0, |at| weir_engine::SystemClock.now_ms().saturating_sub(at));
            Ok::<_, weir_engine::Error>((segments, lag))
        };
        measured.await.inspect_err(|error| tracing::warn!(partition = p, %error, "could not measure the backlog")).ok()
    }

    /// Prints the invocation's metrics (`docs/metrics.md`): its totals, each measured
    /// partition's backlog, and each model's calls, tokens and breaker.
    fn publish_metrics(&self, report: &ProcessReport) {
        if !self.metrics.enabled() {
            return;
        }
        let count =
            |outcome: fn(&PartitionOutcome) -> bool| report.partitions.iter().filter(|p| outcome(&p.outcome)).count();
        let totals = self
            .metrics
            .document()
            .metric(metrics::EVENTS, Unit::Count, report.events)
            .metric(metrics::BATCHES, Unit::Count, report.batches)
            .metric(metrics::OUTPUTS, Unit::Count, report.partitions.iter().map(|p| p.outputs).sum::<usize>())
            .metric(metrics::DEAD_LETTERS, Unit::Count, report.partitions.iter().map(|p| p.dead_letters).sum::<usize>())
            .metric(metrics::WAITING_PARTITIONS, Unit::Count, count(|o| matches!(o, PartitionOutcome::Unavailable(_))))
            .metric(metrics::FAILED_PARTITIONS, Unit::Count, count(|o| matches!(o, PartitionOutcome::Failed(_))));
        let backlogs = report.partitions.iter().filter_map(|p| {
            let document = self.partition_document(p.partition).metric(metrics::BACKLOG, Unit::Count, p.backlog?);
            Some(document.metric(metrics::LAG, Unit::Milliseconds, p.lag_ms?))
        });
        let models = self.counters.iter().flat_map(|counters| self.deltas.since_last(counters.model_counters()));
        let models = models.flat_map(|(model, added)| {
            let of_model = || self.metrics.document().dimension(metrics::MODEL, &model);
            let calls = of_model()
                .metric(metrics::MODEL_CALLS, Unit::Count, added.calls)
                .metric(metrics::MODEL_ERRORS, Unit::Count, added.errors)
                .metric(metrics::INPUT_TOKENS, Unit::Count, added.input_tokens)
                .metric(metrics::OUTPUT_TOKENS, Unit::Count, added.output_tokens)
                .metric(metrics::MODEL_RETRIES, Unit::Count, added.retries);
            // Also without the model: one alarm covers every model, whatever its name.
            let cost = of_model().also_by(&[metrics::AGENT, metrics::FUNCTION]).metric_f64(
                metrics::MODEL_COST,
                Unit::None,
                added.cost,
            );
            let breaker = of_model().also_by(&[metrics::AGENT, metrics::FUNCTION]).metric(
                metrics::BREAKER_OPEN,
                Unit::None,
                u8::from(added.breaker_open),
            );
            [calls, cost, breaker]
        });
        let documents: Vec<EmfDocument> = std::iter::once(totals).chain(backlogs).chain(models).collect();
        self.metrics.emit(documents);
    }

    /// A document about one partition, counted also toward the agent's aggregate.
    fn partition_document(&self, partition: u32) -> EmfDocument {
        let document = self.metrics.document().dimension(metrics::PARTITION, partition.to_string());
        document.also_by(&[metrics::AGENT, metrics::FUNCTION])
    }
}

/// Drains `partition` for this invocation (from `head` if its chain's head was just read)
/// until it is caught up or `deadline` is reached.
async fn drain(engine: &Engine, partition: u32, head: Option<Commit>, deadline: Deadline) -> PartitionReport {
    let (report, ending) = engine.drain_until(partition, head, deadline.shift()).await;
    let outcome = ending.map(|ending| match ending {
        Ending::CaughtUp => PartitionOutcome::Done,
        Ending::Deadline => PartitionOutcome::Deadline,
    });
    PartitionReport {
        partition,
        batches: report.batches,
        events: report.events,
        outputs: report.outputs,
        dead_letters: report.dead_letters,
        outcome: PartitionOutcome::of(partition, outcome.map_err(Into::into)),
        backlog: None,
        lag_ms: None,
    }
}

/// Runs the process function for `agent`: reads the configuration (failing the init with
/// the variable's name if it is wrong), then serves invocations until Lambda stops the
/// environment.
pub async fn serve(agent: Arc<dyn Agent>) -> Result<(), Error> {
    serve_loaded(async { Ok(agent) }).await
}

/// The `main` of an agent crate's process binary: builds the agent with `build` from the
/// model environment (API keys read from the secret `WEIR_MODEL_API_KEY_SECRET` names, see
/// [`ModelEnvironment`](crate::secrets::ModelEnvironment)) during the init, serves it with
/// its model counters in the metrics, and reports how it ended as the exit status (errors
/// are logged where they happen).
pub async fn serve_with_model_env<A: Agent + AgentCounters>(
    build: impl FnOnce(&dyn Fn(&str) -> Option<String>) -> Result<A, weir_agent::AgentError>,
) -> std::process::ExitCode {
    let load = async {
        let env = crate::secrets::ModelEnvironment::load(AwsClients::from_env).await?;
        build(&|name| env.get(name))
            .map_err(|e| Error::Config { variable: "WEIR_MODEL_PROVIDER", reason: e.to_string() })
    };
    crate::runtime::exit_status(serve_counted(load).await)
}

/// Like [`serve`], with the agent loaded during the init (from a file, with MCP servers to
/// connect), so that a failure to load it is the function's init error.
pub async fn serve_loaded(load: impl Future<Output = Result<Arc<dyn Agent>, Error>>) -> Result<(), Error> {
    serve_function(async { Ok((load.await?, None)) }).await
}

/// Like [`serve_loaded`], for an agent that counts its model calls (any agent of the agent
/// API): the metrics publish them.
pub async fn serve_counted<A: Agent + AgentCounters>(
    load: impl Future<Output = Result<A, Error>>,
) -> Result<(), Error> {
    serve_function(async {
        let agent = Arc::new(load.await?);
        Ok((agent.clone() as Arc<dyn Agent>, Some(agent as Arc<dyn AgentCounters>)))
    })
    .await
}

type Loaded = (Arc<dyn Agent>, Option<Arc<dyn AgentCounters>>);

async fn serve_function(load: impl Future<Output = Result<Loaded, Error>>) -> Result<(), Error> {
    runtime::init_tracing();
    let function = runtime::init(async {
        let config = ProcessConfig::from_env()?;
        let (agent, counters) = load.await?;
        let function = ProcessFunction::new(config, agent, LambdaInvoker::new(&AwsClients::from_env().await))?;
        Ok(match counters {
            Some(counters) => function.with_counters(counters),
            None => function,
        })
    })
    .await?;
    let margin = function.config.deadline_margin;
    runtime::serve_partitions(margin, |request, deadline| function.handle(request, deadline)).await
}
