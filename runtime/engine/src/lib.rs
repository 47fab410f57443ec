//! The durable engine of weir: an event log, fenced partition commits, per-key state and an
//! action journal, all on object storage.
//!
//! The storage format and the commit protocol are described in `docs/storage-format.md`.

mod clock;
mod engine;
mod error;
mod gc;
mod intent;
mod journal;
pub mod layout;
mod log;
mod manifest;
mod outputs;
mod position;
mod reader;
mod state;
mod storage;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use engine::{
    ActionError, Agent, BatchReport, Branch, CallCounts, CallMode, ClaimOptions, DrainReport, DurableError, Ending,
    Engine, EngineBuilder, EngineSettings, EventContext, InputEvent, PartitionProcessor, Rejected, Shift,
};
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcReport, collect_log, collect_partition};
pub use journal::{CallId, JournalEntry, Outcome};
pub use log::{Appended, EventLog, LogEvent, LogReader, Segment, partition_of};
pub use manifest::{CommitKind, FileRef, Manifest, PartitionDir, RunRef, Totals, Writer};
pub use outputs::{DeadLetter, Output};
pub use position::Position;
pub use reader::CommittedReader;
pub use state::{RunCache, run};
pub use storage::Storage;

/// Reads the journal entries recorded for the batch that starts at `position`, for
/// inspection and tests.
pub async fn journal_entries(dir: &PartitionDir, position: Position) -> Result<Vec<JournalEntry>> {
    Ok(journal::load(dir, position).await?.into_values().collect())
}

/// Compiles the README's example, so that it cannot drift from the API.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
