//! `weir outputs`: an agent's committed outputs as JSON lines, a table or Parquet.

use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use weir_engine::Output;

use crate::agents::AgentChoice;
use crate::committed::Committed;
use crate::error::{CliError, Result, write_out};
use crate::store::Store;
use crate::table;

/// The widest an output is shown in a table.
const TABLE_OUTPUT_WIDTH: usize = 72;

/// How outputs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per output: partition, key, event, index, output.
    Jsonl,
    /// An aligned table, outputs cut to fit.
    Table,
    /// A Parquet file (to `--out`, or to standard output when redirected).
    Parquet,
}

/// Options of `weir outputs`.
#[derive(Debug, clap::Args)]
pub struct OutputsArgs {
    /// How to write them.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: OutputFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes every output still retained, partition by partition, in commit order.
pub async fn run(args: OutputsArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let log = store.log().await?;
    let committed = Committed::read(&log, &agent.name().await?).await?;
    let bytes = match args.format {
        OutputFormat::Jsonl => jsonl(committed.outputs()),
        OutputFormat::Table => table(committed.outputs()).into_bytes(),
        OutputFormat::Parquet if args.out.is_none() && std::io::stdout().is_terminal() => {
            return Err(CliError::Input("Parquet is binary: give --out FILE or redirect standard output".into()));
        }
        OutputFormat::Parquet => weir_engine::outputs_parquet(&committed.commits).into(),
    };
    match &args.out {
        Some(path) => std::fs::write(path, bytes).map_err(|e| CliError::file(path, e)),
        None => write_out(&bytes),
    }
}

fn jsonl<'a>(outputs: impl Iterator<Item = (u32, &'a Output)>) -> Vec<u8> {
    let mut lines = Vec::new();
    for (partition, output) in outputs {
        let line = json!({
            "partition": partition,
            "key": output.key,
            "event": output.event.to_string(),
            "index": output.index,
            "output": output.payload,
        });
        lines.extend(line.to_string().into_bytes());
        lines.push(b'\n');
    }
    lines
}

fn table<'a>(outputs: impl Iterator<Item = (u32, &'a Output)>) -> String {
    let rows: Vec<[String; 4]> = outputs
        .map(|(partition, o)| {
            let output = table::shorten(&o.payload.to_string(), TABLE_OUTPUT_WIDTH);
            [partition.to_string(), o.event.to_string(), o.key.clone(), output]
        })
        .collect();
    let mut text = table::render(["partition", "event", "key", "output"], &rows, &[0]);
    text.push_str(&format!("({} outputs)\n", rows.len()));
    text
}
