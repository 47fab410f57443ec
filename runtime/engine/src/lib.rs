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
//!   action journal and the holders of at-most-once calls; `trace`: what each committed
//!   event's handling did, committed with it; `trace_parent`: the producer's trace context
//!   an event carries.
//! - `engine`: claims, leases, micro-batches, the event context and durable calls, fences.
//! - `wait`: durable waits, keys suspended until a signal or a time (docs/waits.md).
//! - `submission`: records of model calls submitted to providers' batch APIs for waiting keys
//!   (docs/batch-calls.md).
//! - `redrive`: dead letters listed and requeued into the log, each once.
//! - `shadow`: shadow runs, a version of an agent over a range of the log into a namespace
//!   of its own, with calls answered from production's record (`docs/replay.md`).
//! - `committed`: what a commit made visible, the only way other crates read it; `gc`:
//!   collection and retention.
//! - `budget`: the agent's budget, shared by its partitions through a ledger of grants.
//! - `clock`: injected time; `error`: the public error and its kind.
//! - `usage`: what each invocation of an agent's functions spent (requests, time), for
//!   `weir cost`; `store`: the request-counting store wrapper it meters with;
//!   `aws_prices`: what that costs at AWS's prices.
//! - Feature `test-support`: the fault-injecting store wrapper in `store`, and `format`,
//!   the format's types for tests that check it directly.

mod aws_prices;
mod budget;
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
mod redrive;
mod shadow;
mod state;
mod storage;
pub mod store;
mod submission;
mod trace;
mod trace_parent;
mod usage;
mod wait;

pub use aws_prices::{AwsPrices, InfrastructureCost, LambdaPrices, S3Prices};
pub use budget::{Amount, PartitionSpend, SpendLimit};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use committed::{Commit, CommittedOutputs, CommittedReader};
pub use engine::{
    ActionError, Agent, BatchReport, Branch, CallCounts, CallMode, Calls, ClaimOptions, DrainReport, Durable,
    DurableError, Ending, Engine, EngineBuilder, EngineSettings, EventContext, LogInput, PartitionProcessor, Rejected,
    Shift, Unavailable,
};
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcReport, collect_log, collect_partition};
pub use journal::{CallId, JournalEntry, Outcome};
pub use log::records;
pub use log::{Appended, EventLog, LogEvent, LogReader, Segment, partition_of};
pub use manifest::{CommitKind, Totals, validate_agent_name};
pub use outputs::{DeadLetter, Output, outputs_parquet};
pub use position::Position;
pub use redrive::{DeadLetterFilter, PartitionDeadLetter, dead_letters, requeue_dead_letters};
pub use shadow::{
    CallPolicy, ForkPoint, ModelPolicy, Record, Shadow, ShadowPlan, ShadowRange, ShadowStart, ToolPolicy,
    delete_shadow, fork_partition, shadow_storage,
};
pub use state::RunCache;
pub use storage::Storage;
pub use submission::{BatchSubmission, BatchSubmissions};
pub use trace::{EventTrace, ModelUsage, Span, SpanEnd, SpanId, SpanKind, Trace, TraceSink, traces_parquet};
pub use trace_parent::{InvalidTraceParent, TRACE_PARENT_ATTRIBUTE, TRACE_STATE_ATTRIBUTE, TraceParent};
pub use usage::{InvocationUsage, MeteredInvocation, UsageMeter, read_usage};
pub use wait::{NOTICE_FIELD, SIGNAL_FIELD, Signal, WaitError, WaitingKey, Wake};

/// The storage format's own types, for tests that write or check it directly. Nothing but
/// the engine reads or writes the format in production: use [`CommittedReader`] and
/// [`Engine`] instead.
#[cfg(any(test, feature = "test-support"))]
pub mod format {
    pub use crate::manifest::{FileRef, Manifest, PartitionDir, RunRef, WaitsRef, Writer};
    pub use crate::state::run;
}

/// Compiles the README's example, so that it cannot drift from the API.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
