//! OpenTelemetry export of weir's committed trace (`docs/observability.md`): each committed
//! event's spans, as OpenTelemetry spans with the GenAI semantic conventions, sent over
//! OTLP/HTTP to wherever the standard variables say (Jaeger, Grafana Tempo, Arize Phoenix,
//! Langfuse, an OpenTelemetry collector).
//!
//! - `export`: [`OtlpExport`], the engine's [`TraceSink`](weir_engine::TraceSink) that
//!   batches spans and sends them; `spans`: how a committed span becomes an OpenTelemetry
//!   one (ids, names, kinds, attributes, parents); `invocation`: the spans of the
//!   invocation, its partitions and its batches, around the events'.

mod export;
mod invocation;
mod spans;

pub use export::{OtlpExport, TelemetryError};
