//! `weir`: the command line of weir.
//!
//! Every command works on a store (`--store`, a URL or a directory; `./weir-data` by
//! default) and most on an agent (`--agent`, a built-in agent's name or a declarative agent
//! file). A failure is one line on standard error and a non-zero exit code.
//!
//! Modules: one per command (`demo`, `dev`, `run`, `ingest`, `outputs`, `inspect`,
//! `dead_letters`, `approvals`, `trace`, `stats`, `cost`, `gc`, `functions`, `kb`, `replay`, `diff` with `diff_report`,
//! `eval` with `judge`), and what they share: `shadow` (a replay's namespace), `store` (the `--store` URL), `agents` (the `--agent`
//! choice), `committed` (what an agent committed, read through the engine), `input_file` and
//! `rejects` (ingest's reading and setting aside), `binaries` (building the function
//! binaries), `table` (aligned text tables), `error`.

/// Prints a line (visible to the modules below); a closed stdout (`weir outputs | head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod agents;
mod approvals;
mod binaries;
mod committed;
mod cost;
mod dead_letters;
mod demo;
mod dev;
mod diff;
mod diff_report;
mod error;
mod eval;
mod functions;
mod gc;
mod ingest;
mod input_file;
mod inspect;
mod judge;
mod kb;
mod outputs;
mod rejects;
mod replay;
mod run;
mod shadow;
mod stats;
mod store;
mod table;
mod trace;

use clap::{Parser, Subcommand};

use crate::agents::{AgentChoice, DEFAULT_AGENT};
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(name = "weir", version, about = "Event-driven AI agents on object storage")]
struct Cli {
    /// The store: a URL (file:///dir, s3://bucket/prefix with the AWS_* variables, memory://)
    /// or a directory [default: ./weir-data].
    #[arg(long, global = true, env = "WEIR_STORE")]
    store: Option<String>,
    /// The agent: a built-in agent's name, or a declarative agent file (.yaml, .yml, .toml).
    #[arg(long, global = true, default_value = DEFAULT_AGENT)]
    agent: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the review-analysis agent over the sample reviews shipped with weir, through the
    /// local Lambda emulator, and prints a summary. Needs no keys and no network.
    Demo(demo::DemoArgs),
    /// Runs the functions (ingest, process, dispatch) on a local Lambda emulator, with the
    /// Invoke API on 127.0.0.1 and the triggers of AWS, until Ctrl-C.
    Dev(dev::DevArgs),
    /// Appends the records of a JSON lines, CSV or Parquet file to the event log.
    Ingest(ingest::IngestArgs),
    /// Processes every partition until the log is drained, in this process.
    Run(run::RunArgs),
    /// Prints the agent's committed outputs.
    Outputs(outputs::OutputsArgs),
    /// Shows the log's partitions, the agent's manifests, a key's state and journal, and
    /// dead letters.
    Inspect(inspect::InspectArgs),
    /// Lists the tool calls waiting for approval, and approves or denies one.
    Approvals(approvals::ApprovalsArgs),
    /// Lists the agent's dead letters, or requeues chosen ones into the log (each once).
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Shows what the agent did for an input event: its actions and calls, with timings,
    /// tokens and cost.
    Trace(trace::TraceArgs),
    /// Summarises the agent's committed events: latency percentiles, dead letters, and
    /// calls, tokens and cost per model, action and tool.
    Stats(stats::StatsArgs),
    /// Prints what the agent's committed events cost in model tokens, per model, at the
    /// prices its spans recorded or at a price table; and apart, what its functions'
    /// object-store requests and time cost at AWS's prices.
    Cost(cost::CostArgs),
    /// Deletes what no commit needs any more: superseded state, journals, expired outputs
    /// and processed log segments.
    Gc(gc::GcArgs),
    /// Runs a range of the log through a version of the agent into a shadow namespace, with
    /// its calls answered from production's record: no side effects, production untouched.
    Replay(replay::ReplayArgs),
    /// Compares a shadow's results with production's, event by event: changed outputs and
    /// fields, dead letters, tool calls, numeric drift; as a table, JSON or an HTML report.
    Diff(diff::DiffArgs),
    /// Runs the agent (and a baseline version) over a dataset of cases with expectations,
    /// scores each case, and exits 1 when the agent regresses: a CI gate.
    Eval(eval::EvalArgs),
    /// Knowledge bases under the store: `add` documents, `search`, `list`, `drop`.
    Kb(kb::KbArgs),
}

async fn run(cli: Cli) -> Result<()> {
    let store = Store::open(cli.store.as_deref())?;
    let agent = || AgentChoice::parse(&cli.agent);
    match cli.command {
        Command::Demo(args) => demo::run(args, store).await,
        Command::Dev(args) => dev::run(args, store, agent()?).await,
        Command::Ingest(args) => ingest::run(args, store).await,
        Command::Run(args) => run::run(args, store, agent()?).await,
        Command::Outputs(args) => outputs::run(args, store, agent()?).await,
        Command::Inspect(args) => inspect::run(args, store, agent()?).await,
        Command::Gc(args) => gc::run(args, store, agent()?).await,
        Command::DeadLetters(args) => dead_letters::run(args, store, agent()?).await,
        Command::Approvals(args) => approvals::run(args, store, agent()?).await,
        Command::Trace(args) => trace::run(args, store, agent()?).await,
        Command::Stats(args) => stats::run(args, store, agent()?).await,
        Command::Cost(args) => cost::run(args, store, agent()?).await,
        Command::Replay(args) => replay::run(args, store, agent()?).await,
        Command::Diff(args) => diff::run(args, store).await,
        Command::Eval(args) => eval::run(args, agent()?).await,
        Command::Kb(args) => kb::run(args, store).await,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error's sources said.
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
