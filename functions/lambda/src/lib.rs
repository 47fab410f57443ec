//! The Lambda functions of weir.
//!
//! - [`ingest`]: appends events from HTTP requests, SQS, Kinesis or S3 notifications to the
//!   event log, idempotently (binary `weir-ingest`).
//! - [`process`]: claims partitions with backlog and runs an agent over their micro-batches
//!   until the invocation's deadline approaches, then continues in a fresh invocation (a
//!   library: the `weir-process` binary links an agent and calls [`process::serve`]).
//! - [`collect`]: garbage collection of the agent's objects and the log, on a schedule
//!   (binary `weir-collect`).
//! - [`dispatch`]: delivers committed outputs to a webhook, SQS, SNS or another agent's log,
//!   exactly once in effect (binary `weir-dispatch`; see `docs/dispatch.md`).
//!
//! Every function reads its configuration once from the environment ([`config`], the
//! contract in `docs/configuration.md`) and exposes a handler that tests call directly.
//! Beside them: `sink`, where dispatch delivers; `work`, the partitions of a request and a
//! deadline; `runtime`, the Lambda runtime loop and init; `secrets`, API keys from Secrets
//! Manager or SSM; `aws` and `invoke`, the AWS SDK's clients; `trigger`, the event-driven
//! invocations of the next function; `agent_file`, where `weir-process` finds its agent;
//! [`metrics`], what each invocation publishes as CloudWatch Embedded Metric Format lines
//! ([`emf`]), the agent's model counters among them ([`agent_counters`]); `usage`, each
//! invocation's requests and time, recorded for `weir cost`.

pub mod agent_counters;
pub mod agent_file;
pub mod approval_env;
pub mod collect;
pub mod config;
pub mod dispatch;
pub mod emf;
mod error;
pub mod ingest;
pub mod metrics;
pub mod process;
pub mod runtime;
pub mod secrets;
pub mod sink;
pub mod trigger;
mod usage;
pub mod work;

mod aws;
mod invoke;

pub use aws::AwsClients;
pub use error::{Error, Result};
pub use invoke::LambdaInvoker;

/// The allocator of every binary that links the functions (the function binaries, `weir`):
/// an agent allocates and frees many small JSON values per event, which mimalloc serves in
/// less CPU than glibc's malloc, and Lambda bills CPU time by the millisecond.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
