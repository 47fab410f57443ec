//! The process function: claims partitions with backlog and runs the agent over their
//! micro-batches until the invocation's deadline approaches, then hands what remains to a
//! fresh invocation of itself.
//!
//! This is a library: the `weir-process` binary links an agent and calls [`serve`].

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use weir_engine::{Agent, Commit, Ending, Engine};
use weir_telemetry::OtlpExport;

use crate::aws::AwsClients;
use crate::config::{FromVariables, ProcessConfig};
use crate::error::{Error, Result};
use crate::invoke::LambdaInvoker;
use crate::runtime;
use crate::trigger::Trigger;
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
#[derive(Debug)]
pub struct ProcessFunction {
    config: ProcessConfig,
    invoker: LambdaInvoker,
    /// Dispatch, invoked for the partitions outputs were committed to.
    dispatch: Option<Trigger>,
    /// Opens the log at its first claim: at cold start the log may not exist yet.
    engine: Engine,
    /// Sends the committed spans when `OTEL_EXPORTER_OTLP_*` says where.
    export: Option<Arc<OtlpExport>>,
}

impl ProcessFunction {
    /// A handler running `agent` as `config` says, continuing through `invoker`.
    pub fn new(config: ProcessConfig, agent: Arc<dyn Agent>, invoker: LambdaInvoker) -> Result<Self> {
        let mut engine =
            Engine::builder(config.storage.clone(), &config.agent, agent).settings(config.settings.clone());
        let export = OtlpExport::from_env().map_err(|e| Error::config("OTEL_EXPORTER_OTLP_ENDPOINT", e))?;
        if let Some(export) = &export {
            engine = engine.trace_sink(export.clone());
        }
        let dispatch = config.dispatch_function.as_ref().map(|function| Trigger::new(invoker.clone(), function));
        Ok(ProcessFunction { config, invoker, dispatch, engine: engine.build()?, export })
    }

    /// Handles one invocation: drains the requested partitions (or every one with backlog
    /// that no other invocation holds) until `deadline`, then invokes dispatch
    /// (`dispatch_function`) for the partitions it committed outputs to, and the continuation
    /// function with those left over.
    ///
    /// Every claimed partition gets at least one batch, so that an invocation makes
    /// progress however short its time, and each claim holds a lease until the deadline,
    /// released when the partition is left. Partitions that fail are reported as an error
    /// after the continuation is sent.
    pub async fn handle(&self, request: PartitionRequest, deadline: Deadline) -> Result<ProcessReport> {
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
        // Before the invocation returns: Lambda freezes the process after.
        if let Some(export) = &self.export
            && let Err(error) = export.flush().await
        {
            tracing::warn!(%error, "spans not exported; the committed trace keeps them");
        }
        partitions.sort_by_key(|p| p.partition);
        let report = ProcessReport {
            batches: partitions.iter().map(|p| p.batches).sum(),
            events: partitions.iter().map(|p| p.events).sum(),
            continued: partitions
                .iter()
                .filter(|p| p.outcome == PartitionOutcome::Deadline)
                .map(|p| p.partition)
                .collect(),
            partitions,
        };
        let with_outputs = report.partitions.iter().filter(|p| p.outputs > 0).map(|p| p.partition).collect();
        if let Some(dispatch) = &self.dispatch {
            dispatch.fire(with_outputs).await;
        }
        if !report.continued.is_empty() {
            let payload = serde_json::to_value(PartitionRequest { partitions: Some(report.continued.clone()) })
                .expect("a request serializes");
            self.invoker.invoke_async(&self.config.continuation_function, &payload).await?;
        }
        tracing::info!(events = report.events, batches = report.batches, continued = ?report.continued, "processed");
        check_failures(report.partitions.iter().map(|p| (p.partition, &p.outcome)))?;
        Ok(report)
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
/// [`ModelEnvironment`](crate::secrets::ModelEnvironment)) during the init, serves it, and
/// reports how it ended as the exit status (errors are logged where they happen).
pub async fn serve_with_model_env<A: Agent>(
    build: impl FnOnce(&dyn Fn(&str) -> Option<String>) -> Result<A, weir_agent::AgentError>,
) -> std::process::ExitCode {
    let load = async {
        let env = crate::secrets::ModelEnvironment::load(AwsClients::from_env).await?;
        let agent = build(&|name| env.get(name))
            .map_err(|e| Error::Config { variable: "WEIR_MODEL_PROVIDER", reason: e.to_string() })?;
        Ok(Arc::new(agent) as Arc<dyn Agent>)
    };
    crate::runtime::exit_status(serve_loaded(load).await)
}

/// Like [`serve`], with the agent loaded during the init (from a file, with MCP servers to
/// connect), so that a failure to load it is the function's init error.
pub async fn serve_loaded(load: impl Future<Output = Result<Arc<dyn Agent>, Error>>) -> Result<(), Error> {
    runtime::init_tracing();
    let function = runtime::init(async {
        let config = ProcessConfig::from_env()?;
        let agent = load.await?;
        ProcessFunction::new(config, agent, LambdaInvoker::new(&AwsClients::from_env().await))
    })
    .await?;
    let margin = function.config.deadline_margin;
    runtime::serve_partitions(margin, |request, deadline| function.handle(request, deadline)).await
}
