//! A local Lambda: runs unmodified Lambda function binaries (built on `lambda_runtime`) as
//! child processes and speaks the Lambda Runtime API to them exactly as AWS does, so the
//! same binaries run here and on Lambda.
//!
//! - Each execution environment is one process with its own Runtime API listener; a
//!   function has up to [`FunctionSpec::concurrency`] of them, started on demand and
//!   reused warm. Timeouts kill the process; a crash or an init failure is answered as a
//!   function error, and the next invocation gets a fresh process.
//! - Lambda's Invoke API on 127.0.0.1 ([`Emulator::invoke_url`]) takes `RequestResponse`,
//!   `Event` and `DryRun` invocations from the AWS CLI, SDKs and the functions themselves
//!   (they find it in `AWS_ENDPOINT_URL_LAMBDA`). As on Lambda, a `RequestResponse` that
//!   finds every environment busy is throttled (429, `TooManyRequestsException`, which the
//!   CLI and SDKs retry) and an `Event` invocation is queued.
//! - A function may have a URL ([`FunctionSpec::with_url`]): HTTP requests become Lambda's
//!   function URL events, and answers become responses by Lambda's rules.
//! - Every line a function writes is re-emitted labelled with the function and request id.
//! - [`Trigger`]s invoke functions when the weir event log grows, or on a schedule.
//!
//! Start one with [`Emulator::builder`].
//!
//! Modules: `emulator`, the builder and handle; `switchboard`, the one place invocations go
//! through, and the owner of background work and its shutdown; `function` and
//! `environment`, a function's execution environments and their processes; `runtime_api`,
//! `invoke_api` and `function_url`, the HTTP endpoints; `invocation`, an invocation and its answer;
//! `trigger`, log and schedule triggers; `logs`, labelled output; `spec`, `ids`, `error`.

mod emulator;
mod environment;
mod error;
mod function;
mod function_url;
mod ids;
mod invocation;
mod invoke_api;
mod logs;
mod runtime_api;
mod spec;
mod switchboard;
mod trigger;

pub use emulator::{Emulator, EmulatorBuilder};
pub use error::{Error, Result};
pub use invocation::{FunctionError, InvokeOutput};
pub use logs::{LogLine, LogStream};
pub use spec::FunctionSpec;
pub use trigger::Trigger;
