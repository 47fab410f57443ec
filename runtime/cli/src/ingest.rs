//! `weir ingest FILE`: appends a file's records to the event log, idempotently, setting aside
//! the records it refuses in the rejects file (`rejects.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use weir_engine::records::RecordParser;
use weir_engine::{EngineSettings, EventLog, LogEvent, TraceParent};

use crate::error::{CliError, Result};
use crate::input_file::{self, InputFormat, InputRecord};
use crate::rejects::{self, Earlier, EarlierRejects, RejectsWriter};
use crate::store::Store;

/// Partitions of a log this creates, as the ingest function's default.
const DEFAULT_PARTITIONS: u32 = 16;
/// Records appended per batch: each batch is one idempotent append.
const BATCH_RECORDS: usize = 500;
/// Payload bytes at which a batch closes before it has `BATCH_RECORDS`, so that what a
/// batch holds stays bounded whatever the records' size.
const BATCH_BYTES: usize = 8 << 20;
/// Refused records the summary names; the rejects file names them all.
const SUMMARY_REFUSALS: usize = 20;

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
    /// Ingest only the first N records (refused ones counted).
    #[arg(long)]
    limit: Option<usize>,
    /// Partitions of the log if this creates it [default: 16]; an existing log must have as many.
    #[arg(long)]
    partitions: Option<u32>,
    /// Stop at the first record that cannot be ingested, storing nothing. Without it, such
    /// records are listed with their reason in FILE.rejects.jsonl, the rest is ingested,
    /// and the exit code is 3.
    #[arg(long)]
    strict: bool,
}

/// Appends the file's records in batches whose ids come from their content, reading one
/// record at a time: ingesting the same file again, or again after a crash, adds nothing,
/// and again after fixing refused records adds exactly those. A `TRACEPARENT` in the
/// environment is kept with every event, so that their spans join that trace.
pub async fn run(args: IngestArgs, store: Store) -> Result<()> {
    let format = args.format.unwrap_or_else(|| InputFormat::of(&args.file));
    // The largest event the engine processes by default: a larger one would be stored only
    // to be dead-lettered.
    let max_record_bytes = EngineSettings::default().max_event_bytes;
    let trace_parent = caller_trace_parent()?;
    let parser = RecordParser::new(args.key_field.as_str());
    let ingest = Ingest { args: &args, format, parser, max_record_bytes, trace_parent };
    let rejects_path = rejects::path_of(&args.file);
    let earlier = EarlierRejects::read(&rejects_path)?;
    if args.strict {
        ingest.check_every_record()?;
    }
    let mut source = input_file::open(&args.file, format, max_record_bytes)?;
    let log = open_log(&args, &store).await?;
    let mut rejects = RejectsWriter::new(rejects_path.clone(), format.unit());
    let fixed_group = earlier.next_group();
    let mut first_run_batches = Batcher::new("weir-ingest:".into());
    let mut fixed_batches: BTreeMap<u32, Batcher> = BTreeMap::new();
    let (mut tally, mut last) = (Tally::default(), 0);
    let progress = indicatif::ProgressBar::new(source.progress().1).with_message("ingesting");
    for _ in 0..args.limit.unwrap_or(usize::MAX) {
        let Some(input) = source.next_record()? else { break };
        last = input.number;
        let batch = match (ingest.event(input.record), earlier.get(input.number)) {
            (Err(reason), _) => {
                tracing::debug!(record = input.number, %reason, "refused");
                rejects.refused(input.number, &reason)?;
                tally.refused += 1;
                if tally.named.len() < SUMMARY_REFUSALS {
                    tally.named.push(format!("{} {}: {reason}", format.unit(), input.number));
                }
                None
            }
            (Ok(event), None) => {
                tally.ingested += 1;
                first_run_batches.push(event)
            }
            (Ok(event), Some(listed)) => {
                let group = match listed {
                    Earlier::FixedIn(group) => *group,
                    Earlier::Refused(_) => {
                        tally.fixed += 1;
                        fixed_group
                    }
                };
                rejects.fixed(input.number, group)?;
                tally.ingested += 1;
                let batcher = fixed_batches.entry(group);
                batcher.or_insert_with(|| Batcher::new(format!("weir-ingest:fixed-{group}:"))).push(event)
            }
        };
        if let Some((id, batch)) = batch {
            log.append(&id, &batch).await?;
        }
        progress.set_position(source.progress().0);
    }
    for (number, earlier) in earlier.after(last) {
        rejects.keep(number, earlier)?;
    }
    let last_batches = std::iter::once(first_run_batches).chain(fixed_batches.into_values());
    for (id, batch) in last_batches.filter_map(Batcher::finish) {
        log.append(&id, &batch).await?;
    }
    progress.finish_and_clear();
    rejects.finish()?;
    ingest.summary(&store, &tally, &rejects_path)
}

/// Where a parent process hands down its trace context, as OpenTelemetry's specification of
/// environment variables as context carriers names it.
const TRACEPARENT_VARIABLE: &str = "TRACEPARENT";
/// Its `tracestate`, passed on with it.
const TRACESTATE_VARIABLE: &str = "TRACESTATE";

/// The trace context of whatever ran this command (`TRACEPARENT`, with `TRACESTATE`): `weir ingest` keeps it
/// with the events, `weir run` continues it; refused when set but malformed.
pub(crate) fn caller_trace_parent() -> Result<Option<TraceParent>> {
    match std::env::var(TRACEPARENT_VARIABLE) {
        Ok(value) if !value.trim().is_empty() => {
            let parent: TraceParent =
                value.parse().map_err(|e| CliError::Input(format!("{TRACEPARENT_VARIABLE}: {e}")))?;
            Ok(Some(parent.with_state(std::env::var(TRACESTATE_VARIABLE).ok().as_deref())))
        }
        _ => Ok(None),
    }
}

/// What a run did with the records it read.
#[derive(Debug, Default)]
struct Tally {
    ingested: u64,
    /// Of `ingested`, those an earlier run refused.
    fixed: u64,
    refused: u64,
    /// The first refusals, `line 3: reason`.
    named: Vec<String>,
}

/// What one run of `weir ingest` reads with.
struct Ingest<'a> {
    args: &'a IngestArgs,
    format: InputFormat,
    parser: RecordParser,
    max_record_bytes: usize,
    /// The caller's trace context, kept with every event.
    trace_parent: Option<TraceParent>,
}

impl Ingest<'_> {
    /// The log event of a record read, or why it is refused.
    fn event(&self, record: Result<serde_json::Value, String>) -> Result<LogEvent, String> {
        let event = self.parser.event(&record?)?;
        // JSON written again can be longer than as read (`1e2` is `100.0`).
        if event.payload.len() > self.max_record_bytes {
            return Err(format!(
                "a record of {} bytes as stored; a record may have at most {}",
                event.payload.len(),
                self.max_record_bytes
            ));
        }
        Ok(event.with_trace_parent(self.trace_parent.clone()))
    }

    /// `--strict`: reads the file once without storing anything, failing at the first
    /// record that would be refused.
    fn check_every_record(&self) -> Result<()> {
        let mut source = input_file::open(&self.args.file, self.format, self.max_record_bytes)?;
        for _ in 0..self.args.limit.unwrap_or(usize::MAX) {
            let Some(InputRecord { number, record }) = source.next_record()? else { break };
            if let Err(reason) = self.event(record) {
                let (file, unit) = (self.args.file.display(), self.format.unit());
                return Err(CliError::Input(format!("{file}, {unit} {number}: {reason}")));
            }
        }
        Ok(())
    }

    /// Prints what was ingested and refused; refusals make the command's result an error.
    fn summary(&self, store: &Store, tally: &Tally, rejects_path: &std::path::Path) -> Result<()> {
        let file = self.args.file.display();
        if tally.ingested == 0 && tally.refused == 0 {
            return Err(CliError::Input(format!("{file}: no records")));
        }
        let fixed = match tally.fixed {
            0 => String::new(),
            n => format!(" ({n} of them refused before and fixed since)"),
        };
        say!("ingested {} records from {file} into {}{fixed}", tally.ingested, store.url);
        if tally.refused == 0 {
            return Ok(());
        }
        let (rejects, refused) = (rejects_path.display(), counted(tally.refused, self.format.unit()));
        say!("refused {refused}, each listed with its reason in {rejects}:");
        for refusal in &tally.named {
            say!("  {refusal}");
        }
        if tally.refused > tally.named.len() as u64 {
            say!("  and {} more", tally.refused - tally.named.len() as u64);
        }
        Err(CliError::Refused(format!("{file}: {refused} refused, set aside in {rejects}")))
    }
}

/// `1 line`, `3 lines`.
fn counted(n: u64, unit: &str) -> String {
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The store's log, created if there is none.
async fn open_log(args: &IngestArgs, store: &Store) -> Result<EventLog> {
    Ok(match args.partitions {
        Some(partitions) => EventLog::create(store.storage.clone(), partitions).await?,
        None => EventLog::open_or_create(store.storage.clone(), DEFAULT_PARTITIONS).await?,
    })
}

/// Events gathered into batches with ids `<prefix><n>:<hash>`: the batch's place and content,
/// so that only the same records in the same place count as already stored.
struct Batcher {
    prefix: String,
    index: usize,
    events: Vec<LogEvent>,
    bytes: usize,
}

impl Batcher {
    fn new(prefix: String) -> Self {
        Batcher { prefix, index: 0, events: Vec::new(), bytes: 0 }
    }

    /// Adds `event`; returns the batch it completes.
    fn push(&mut self, event: LogEvent) -> Option<(String, Vec<LogEvent>)> {
        self.bytes += event.payload.len();
        self.events.push(event);
        (self.events.len() >= BATCH_RECORDS || self.bytes >= BATCH_BYTES).then(|| self.take())
    }

    /// The last batch, if it holds anything.
    fn finish(mut self) -> Option<(String, Vec<LogEvent>)> {
        (!self.events.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> (String, Vec<LogEvent>) {
        let events = std::mem::take(&mut self.events);
        self.bytes = 0;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for event in &events {
            hasher.update(event.key.as_bytes());
            hasher.update(&[0]);
            hasher.update(&event.payload);
            hasher.update(&[0]);
        }
        let id = format!("{}{}:{:016x}", self.prefix, self.index, hasher.digest());
        self.index += 1;
        (id, events)
    }
}
