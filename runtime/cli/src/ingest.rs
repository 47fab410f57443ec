//! `weir ingest FILE`: appends a file's records to the event log, idempotently.

use std::path::PathBuf;

use weir_engine::{EventLog, LogEvent};
use weir_functions::records::RecordParser;

use crate::error::{CliError, Result};
use crate::input_file::{InputFormat, read_records};
use crate::store::Store;

/// Partitions of a log this creates, as the ingest function's default.
const DEFAULT_PARTITIONS: u32 = 16;
/// Records appended per batch: each batch is one idempotent append.
const BATCH_RECORDS: usize = 500;

/// Options of `weir ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The file: JSON lines, CSV (with a header row) or Parquet.
    file: PathBuf,
    /// The file's format; by default its extension says (`.csv`, `.parquet`, else JSON lines).
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// JSON pointer to each record's key (a string or an integer), as `WEIR_KEY_FIELD`.
    #[arg(long, default_value = "/key")]
    key_field: String,
    /// Ingest only the first N records.
    #[arg(long)]
    limit: Option<usize>,
    /// Partitions of the log if this creates it [default: 16]; an existing log must have as many.
    #[arg(long)]
    partitions: Option<u32>,
}

/// Reads the whole file first, so that a malformed record stores nothing, then appends it
/// in batches whose ids come from their content: ingesting the same file again, or again
/// after a crash, adds nothing.
pub async fn run(args: IngestArgs, store: Store) -> Result<()> {
    let format = args.format.unwrap_or_else(|| InputFormat::of(&args.file));
    let records = read_records(&args.file, format, args.limit)?;
    let parser = RecordParser::new(args.key_field.as_str());
    let events = records
        .iter()
        .map(|r| {
            parser.event(&r.record).map_err(|e| CliError::Input(format!("{}, {}: {e}", args.file.display(), r.place)))
        })
        .collect::<Result<Vec<LogEvent>>>()?;
    if events.is_empty() {
        return Err(CliError::Input(format!("{}: no records", args.file.display())));
    }
    let log = match args.partitions {
        Some(partitions) => EventLog::create(store.storage.clone(), partitions).await?,
        None => match store.log().await {
            Ok(log) => log,
            Err(CliError::Input(_)) => EventLog::create(store.storage.clone(), DEFAULT_PARTITIONS).await?,
            Err(e) => return Err(e),
        },
    };
    let progress = indicatif::ProgressBar::new(events.len() as u64).with_message("ingesting");
    for (n, batch) in events.chunks(BATCH_RECORDS).enumerate() {
        log.append(&batch_id(n, batch), batch).await?;
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    say!("ingested {} records from {} into {}", events.len(), args.file.display(), store.url);
    Ok(())
}

/// `weir-ingest:<n>:<hash>`: the batch's place and content, so that only the same records
/// in the same place count as already stored.
fn batch_id(n: usize, batch: &[LogEvent]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for event in batch {
        hasher.update(event.key.as_bytes());
        hasher.update(&[0]);
        hasher.update(&event.payload);
        hasher.update(&[0]);
    }
    format!("weir-ingest:{n}:{:016x}", hasher.digest())
}
