//! `weir dev`: the functions on the local Lambda emulator, until Ctrl-C.

use std::time::Duration;

use tokio::sync::broadcast;
use weir_emulator::LogLine;

use crate::agents::AgentChoice;
use crate::binaries::BinaryArgs;
use crate::error::{CliError, Result};
use crate::functions::{DISPATCH, FunctionsSetup, INGEST, PROCESS};
use crate::store::Store;

/// Options of `weir dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The Invoke API's port on 127.0.0.1 (`aws lambda invoke --endpoint-url http://127.0.0.1:PORT`);
    /// 0 picks a free one.
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Where dispatch delivers outputs (`WEIR_SINK`: `https://…`, `sqs:…`, `sns:…`, `weir:<store-url>`);
    /// without one, dispatch does not run.
    #[arg(long)]
    sink: Option<String>,
    /// JSON pointer to each ingested record's key (`WEIR_KEY_FIELD`).
    #[arg(long, default_value = "/key")]
    key_field: String,
    /// Partitions of the log, if ingest creates it.
    #[arg(long, default_value_t = 16)]
    partitions: u32,
    /// Seconds between the scheduled invocations of process and dispatch.
    #[arg(long, default_value_t = 10)]
    schedule_secs: u64,
    #[command(flatten)]
    binaries: BinaryArgs,
}

/// Runs the emulator, printing every function's lines, until Ctrl-C; then lets the
/// invocations in flight finish and stops every process.
pub async fn run(args: DevArgs, store: Store, agent: AgentChoice) -> Result<()> {
    if args.schedule_secs == 0 {
        return Err(CliError::Input("--schedule-secs must be above 0".into()));
    }
    let (process_binary, process_env) = agent.process_function();
    let setup = FunctionsSetup {
        binaries: args.binaries.locate(process_binary)?,
        agent: agent.name().await?,
        store,
        process_env,
        key_field: args.key_field,
        partitions: args.partitions,
        sink: args.sink,
        schedule: Duration::from_secs(args.schedule_secs),
    };
    let emulator = setup.emulator().port(args.port).start().await?;
    let printer = tokio::spawn(print_logs(emulator.subscribe_logs()));
    let dispatch = if setup.sink.is_some() { format!(", {DISPATCH}") } else { String::new() };
    say!("weir dev: Invoke API at {} (functions {INGEST}, {PROCESS}{dispatch})", emulator.invoke_url());
    say!("  agent {}, store {}", setup.agent, setup.store.url);
    if setup.sink.is_none() {
        say!("  no --sink: dispatch does not run");
    }
    say!("  Ctrl-C stops");
    tokio::signal::ctrl_c().await.map_err(|e| CliError::file("the Ctrl-C handler", e))?;
    say!("weir dev: stopping (waiting for invocations in flight)");
    emulator.shutdown().await;
    printer.abort();
    say!("weir dev: stopped");
    Ok(())
}

/// Prints every line as `[function request-id] text`.
pub async fn print_logs(mut logs: broadcast::Receiver<LogLine>) {
    loop {
        match logs.recv().await {
            Ok(line) => say!("{line}"),
            Err(broadcast::error::RecvError::Lagged(missed)) => say!("[weir] {missed} log lines skipped"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
