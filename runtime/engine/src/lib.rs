//! The durable engine of weir: an event log, fenced partition commits, per-key state and an
//! action journal, all on object storage.
//!
//! The storage format and the commit protocol are described in `docs/storage-format.md`.
//!
//! - `layout`: every object name, formatted and parsed in one place.
//! - `storage`: the object store under a root prefix; `log`: the partitioned event log and
//!   its idempotent append, and `records`: how producers' records become its events;
//!   `position`: positions in it.
//! - `manifest`: the commit chain; `state`: per-key snapshots in sorted runs and their
//!   compaction; `outputs`: committed outputs and dead letters; `journal` and `intent`: the
//!   action journal and the holders of at-most-once calls.
//! - `engine`: claims, leases, micro-batches, the event context and durable calls, fences.
//! - `committed`: what a commit made visible; `gc`: collection and retention.
//! - `clock`: injected time; `error`: the public error and its kind.
//! - `store` (feature `test-support`): fault-injecting and request-counting store wrappers.

mod clock;
mod committed;
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
mod state;
mod storage;
#[cfg(any(test, feature = "test-support"))]
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use committed::CommittedReader;
pub use engine::{
    ActionError, Agent, BatchReport, Branch, CallCounts, CallMode, ClaimOptions, DrainReport, DurableError, Ending,
    Engine, EngineBuilder, EngineSettings, EventContext, InputEvent, PartitionProcessor, Rejected, Shift,
};
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcReport, collect_log, collect_partition};
pub use journal::{CallId, JournalEntry, Outcome};
pub use log::records;
pub use log::{Appended, EventLog, LogEvent, LogReader, Segment, partition_of};
pub use manifest::{CommitKind, FileRef, Manifest, PartitionDir, RunRef, Totals, Writer};
pub use outputs::{DeadLetter, Output};
pub use position::Position;
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
