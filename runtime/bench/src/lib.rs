//! Benchmarks of weir: `engine-bench` (the durable engine alone) and `agent-bench` (the
//! review-analysis agent against `fake-openai`, a fake model server in its own process).
//! See `BENCHMARKS.md` for the commands and the figures.

pub mod fake_model;
pub mod measure;

pub use fake_model::{FakeModelServer, FakeModelStats};
pub use measure::{counted, cpu_time, peak_memory_mb, per_thousand, percentile, reset_peak_memory, resident_memory_mb};
