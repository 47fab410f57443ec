//! `weir run`: processes every partition until the log is drained, in this process.

use weir_engine::{Engine, EngineSettings, UsageMeter};

use crate::agents::AgentChoice;
use crate::error::{CliError, Result};
use crate::store::Store;

/// Options of `weir run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Engine settings over the defaults, a JSON object (`{"max_batch_events": 50}`), as
    /// `WEIR_ENGINE_SETTINGS`.
    #[arg(long, env = "WEIR_ENGINE_SETTINGS")]
    engine_settings: Option<String>,
}

/// Drains the log, sending the committed spans over OTLP when `OTEL_EXPORTER_OTLP_*` says
/// where (`docs/observability.md`), and records what it spent in requests and time as the
/// usage record of a `run` (`weir cost`). Killed at any moment, it leaves only committed
/// batches behind: run it again and it carries on from them, repeating no journaled call.
pub async fn run(args: RunArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let settings = match &args.engine_settings {
        Some(json) => serde_json::from_str::<EngineSettings>(json)
            .map_err(|e| CliError::Input(format!("--engine-settings: {e}")))?,
        None => EngineSettings::default(),
    };
    store.log().await?;
    let agent = agent.load().await?;
    let meter = UsageMeter::new(&store.storage, &agent.name)?;
    let invocation = meter.start("run");
    let mut engine = Engine::builder(meter.storage().clone(), &agent.name, agent.agent).settings(settings);
    let export = weir_telemetry::OtlpExport::from_env().map_err(|e| CliError::Input(e.to_string()))?;
    if let Some(export) = &export {
        export.begin_invocation("run", crate::ingest::caller_trace_parent()?);
        engine = engine.trace_sink(export.clone());
    }
    let drained = engine.build()?.drain().await;
    if let Some(export) = &export
        && let Err(error) = export.flush().await
    {
        // The committed trace stays the record: a receiver that is down fails nothing.
        tracing::warn!(%error, "spans not exported");
    }
    let events = drained.as_ref().map_or(0, |report| report.events as u64);
    if let Err(error) = invocation.finish(events, None).await {
        tracing::warn!(%error, "could not write the run's usage record");
    }
    let report = drained.inspect_err(|e| {
        if e.kind() == weir_engine::ErrorKind::Unavailable {
            say!("{}: waiting, nothing lost; run again later (a schedule does)", agent.name);
        }
    })?;
    say!(
        "{}: {} events in {} batches, {} outputs, {} dead letters",
        agent.name,
        report.events,
        report.batches,
        report.outputs,
        report.dead_letters
    );
    Ok(())
}
