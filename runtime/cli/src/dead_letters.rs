//! `weir dead-letters`: lists an agent's dead letters, and requeues chosen ones into the log
//! once the agent or the input is fixed.

use base64::Engine as _;
use serde_json::json;
use weir_engine::{DeadLetterFilter, PartitionDeadLetter, Position};

use crate::agents::AgentChoice;
use crate::error::{CliError, Result, write_out};
use crate::store::Store;
use crate::table;

/// How dead letters are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeadLetterFormat {
    /// An aligned table, reasons and payloads cut to fit.
    Table,
    /// One JSON object per dead letter: partition, event, key, attempts, reason, and the
    /// producer's bytes (`payload` when they are UTF-8, else `payload_base64`).
    Jsonl,
}

/// Options of `weir dead-letters`.
#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    /// Appends the chosen dead letters to the log again, each exactly once: a requeue that
    /// runs again adds nothing. Without it, they are only listed.
    #[arg(long)]
    requeue: bool,
    /// With --requeue and no other choice: every dead letter (so that all of them is never
    /// requeued by a forgotten filter).
    #[arg(long)]
    all: bool,
    /// Only this partition's.
    #[arg(long)]
    partition: Option<u32>,
    /// Only this key's.
    #[arg(long)]
    key: Option<String>,
    /// Only those whose reason contains this text.
    #[arg(long)]
    reason: Option<String>,
    /// Only those of events at or after this position (`SEGMENT:INDEX`).
    #[arg(long, value_parser = parse_position)]
    from: Option<Position>,
    /// Only those of events before this position (`SEGMENT:INDEX`).
    #[arg(long, value_parser = parse_position)]
    to: Option<Position>,
    /// How to list them.
    #[arg(long, value_enum, default_value = "table")]
    format: DeadLetterFormat,
}

/// Lists the chosen dead letters, or requeues them.
pub async fn run(args: DeadLettersArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let filter = DeadLetterFilter {
        partition: args.partition,
        key: args.key.clone(),
        reason: args.reason.clone(),
        from: args.from,
        to: args.to,
    };
    if args.requeue && !args.all && filter == DeadLetterFilter::default() {
        return Err(CliError::Input(
            "--requeue needs a choice: --all, or --partition, --key, --reason, --from or --to".into(),
        ));
    }
    let log = store.log().await?;
    let agent = agent.name().await?;
    if args.requeue {
        let requeued = weir_engine::requeue_dead_letters(&log, &agent, &filter).await?;
        say!("{agent}: {} dead letters requeued (a repeat adds nothing); `weir run` processes them", requeued.len());
        return Ok(());
    }
    let letters = weir_engine::dead_letters(&log, &agent, &filter).await?;
    let text = match args.format {
        DeadLetterFormat::Table => table(&letters),
        DeadLetterFormat::Jsonl => jsonl(&letters),
    };
    write_out(text.as_bytes())
}

/// A `SEGMENT:INDEX` flag value.
pub fn parse_position(text: &str) -> Result<Position, String> {
    text.parse().map_err(|e: weir_engine::Error| e.to_string())
}

fn jsonl(letters: &[PartitionDeadLetter]) -> String {
    let mut text = String::new();
    for PartitionDeadLetter { partition, letter } in letters {
        let mut line = json!({
            "partition": partition,
            "event": letter.event.to_string(),
            "key": letter.key,
            "attempts": letter.attempts,
            "reason": letter.reason,
        });
        match std::str::from_utf8(&letter.payload) {
            Ok(payload) => line["payload"] = json!(payload),
            Err(_) => line["payload_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&letter.payload)),
        }
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// The widest a reason or a payload is shown in a table.
const TABLE_CELL_WIDTH: usize = 48;

fn table(letters: &[PartitionDeadLetter]) -> String {
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|PartitionDeadLetter { partition, letter }| {
            [
                partition.to_string(),
                letter.event.to_string(),
                letter.key.clone(),
                letter.attempts.to_string(),
                table::shorten(&letter.reason, TABLE_CELL_WIDTH),
                table::shorten(&String::from_utf8_lossy(&letter.payload), TABLE_CELL_WIDTH),
            ]
        })
        .collect();
    let mut text = table::render(["partition", "event", "key", "attempts", "reason", "payload"], &rows, &[]);
    text.push_str(&format!("({} dead letters)\n", rows.len()));
    text
}
