//! `weir dev`: the functions on the local Lambda emulator, until Ctrl-C.

use std::time::Duration;

use tokio::sync::broadcast;
use weir_emulator::LogLine;
use weir_functions::config::APPROVAL_SECRET;
use weir_functions::dispatch::ApprovalLinks;

use crate::agents::AgentChoice;
use crate::approvals;
use crate::binaries::BinaryArgs;
use crate::error::{CliError, Result};
use crate::functions::{DISPATCH, FunctionsSetup, INGEST, IngestUrl, PROCESS};
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
    /// The port of ingest's function URL on 127.0.0.1, where records are posted and approval
    /// links followed; 0 picks a free one.
    #[arg(long, default_value_t = 9002)]
    url_port: u16,
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
    let ingest_url = IngestUrl { port: free_port(args.url_port)?, approval_secret: approval_secret()? };
    let links = ApprovalLinks::new(&ingest_url.url(), ingest_url.approval_secret.clone().into_bytes())
        .map_err(|e| CliError::Input(e.to_string()))?;
    let setup = FunctionsSetup {
        binaries: args.binaries.locate(process_binary)?,
        agent: agent.name().await?,
        store,
        process_env,
        key_field: args.key_field,
        partitions: args.partitions,
        sink: args.sink,
        schedule: Duration::from_secs(args.schedule_secs),
        ingest_url: Some(ingest_url.clone()),
    };
    let emulator = setup.emulator().port(args.port).start().await?;
    let printer = tokio::spawn(print_logs(emulator.subscribe_logs()));
    let watcher = tokio::spawn(watch_approvals(setup.store.clone(), setup.agent.clone(), links));
    let dispatch = if setup.sink.is_some() { format!(", {DISPATCH}") } else { String::new() };
    say!("weir dev: Invoke API at {} (functions {INGEST}, {PROCESS}{dispatch})", emulator.invoke_url());
    say!("  ingest's function URL {} (POST records; approval links)", ingest_url.url());
    say!("  agent {}, store {}", setup.agent, setup.store.url);
    if setup.sink.is_none() {
        say!("  no --sink: dispatch does not run");
    }
    say!("  Ctrl-C stops");
    tokio::signal::ctrl_c().await.map_err(|e| CliError::file("the Ctrl-C handler", e))?;
    say!("weir dev: stopping (waiting for invocations in flight)");
    watcher.abort();
    emulator.shutdown().await;
    printer.abort();
    say!("weir dev: stopped");
    Ok(())
}

/// `port`, or a free port of 127.0.0.1 if it is 0: dispatch is told the URL before ingest
/// listens on it.
fn free_port(port: u16) -> Result<u16> {
    if port != 0 {
        return Ok(port);
    }
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| CliError::file("a free port on 127.0.0.1", e))?;
    listener.local_addr().map(|address| address.port()).map_err(|e| CliError::file("a free port on 127.0.0.1", e))
}

/// `WEIR_APPROVAL_SECRET` if set, else a random one for this session: links made before a
/// restart are then refused as forged, and `weir approvals` still answers their requests.
fn approval_secret() -> Result<String> {
    if let Ok(secret) = std::env::var(APPROVAL_SECRET) {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Input(format!("no randomness for the approval secret: {e}")))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// How often `weir dev` looks for new approval requests.
const APPROVALS_POLL: Duration = Duration::from_secs(2);

/// Prints each approval request once as it comes: what waits, and its approve and deny links.
async fn watch_approvals(store: Store, agent: String, links: ApprovalLinks) {
    let mut shown = std::collections::HashSet::new();
    // The log's partitions never change: learned once ingest has created the log.
    let mut partitions = None;
    loop {
        if partitions.is_none() {
            partitions = store.log().await.ok().map(|log| log.partitions());
        }
        let Some(partitions) = partitions else {
            tokio::time::sleep(APPROVALS_POLL).await;
            continue;
        };
        match approvals::pending(&store, &agent, partitions).await {
            Ok(pending) => {
                for request in pending.iter().filter(|request| shown.insert(request.id().to_string())) {
                    let (approve, deny) = request.links(&links, &agent);
                    say!("[weir] approval pending: {}", request.describe());
                    say!("[weir]   approve: {approve}\n[weir]   deny:    {deny}");
                }
            }
            Err(e) => tracing::debug!(error = %e, "pending approvals not read"),
        }
        tokio::time::sleep(APPROVALS_POLL).await;
    }
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
