//! What the functions measure, and where it goes: at the end of each invocation, a function
//! prints its metrics as CloudWatch Embedded Metric Format lines ([`crate::emf`]) on
//! standard output, which Lambda sends to CloudWatch Logs, which extracts the metrics. The
//! metric set (names, units, dimensions) is `docs/metrics.md`; its names are the constants
//! below.
//!
//! `WEIR_METRICS` switches it: `emf` prints the lines, `off` prints none; unset, the lines
//! are printed where Lambda (or the emulator) runs the function, which sets
//! `AWS_LAMBDA_FUNCTION_NAME`, and nowhere else.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::emf::EmfDocument;
use crate::error::{Error, Result};

/// The CloudWatch namespace of every metric of weir.
pub const NAMESPACE: &str = "weir";

/// Dimension: the agent (`WEIR_AGENT`).
pub const AGENT: &str = "Agent";
/// Dimension: the function, `ingest`, `process` or `dispatch`.
pub const FUNCTION: &str = "Function";
/// Dimension: a partition of the log, by number.
pub const PARTITION: &str = "Partition";
/// Dimension: a chat model, by the name the agent gives it.
pub const MODEL: &str = "Model";
/// Dimension: a kind of object-store request as S3 bills it: `PUT`, `GET`, `HEAD`, `LIST`,
/// `DELETE`.
pub const REQUEST: &str = "Request";

/// Events appended (ingest) or processed (process), dead-lettered ones included.
pub const EVENTS: &str = "Events";
/// Source records ingest did not store: malformed, or the store failed.
pub const REFUSED_RECORDS: &str = "RefusedRecords";
/// Batches committed (process) or delivered (dispatch).
pub const BATCHES: &str = "Batches";
/// Outputs committed.
pub const OUTPUTS: &str = "Outputs";
/// Events committed as dead letters.
pub const DEAD_LETTERS: &str = "DeadLetters";
/// Partitions that wait at their last commit because something their events need is down.
pub const WAITING_PARTITIONS: &str = "WaitingPartitions";
/// Partitions whose work failed with an error.
pub const FAILED_PARTITIONS: &str = "FailedPartitions";
/// Log segments (appended batches) of a partition from its committed position to the log's
/// tail, after the invocation: the work process has left.
pub const BACKLOG: &str = "Backlog";
/// How long the oldest event a partition left has waited since it was appended, after
/// the invocation: the lag in time.
pub const LAG: &str = "Lag";
/// Object-store requests the invocation made (its usage record's), by `Request`.
pub const STORE_REQUESTS: &str = "StoreRequests";
/// What the invocation's requests and time cost at AWS's prices (`WEIR_AWS_PRICES`), in
/// dollars: S3 requests, Lambda GB-seconds and the Lambda request.
pub const INFRASTRUCTURE_COST: &str = "InfrastructureCost";
/// Outputs delivered to the sink (redeliveries included).
pub const DELIVERED: &str = "Delivered";
/// Committed outputs not delivered yet, after the invocation.
pub const UNDELIVERED: &str = "Undelivered";
/// Model calls made (journal replays excluded: they cost nothing).
pub const MODEL_CALLS: &str = "ModelCalls";
/// What a model's tokens cost at the agent's prices (`prices` in its settings).
pub const MODEL_COST: &str = "ModelCost";
/// Model calls that failed.
pub const MODEL_ERRORS: &str = "ModelErrors";
/// Prompt tokens of the model calls made.
pub const INPUT_TOKENS: &str = "InputTokens";
/// Reply tokens of the model calls made.
pub const OUTPUT_TOKENS: &str = "OutputTokens";
/// Requests the model client retried.
pub const MODEL_RETRIES: &str = "ModelRetries";
/// 1 if the model client's circuit breaker is open at the end of the invocation, else 0.
pub const BREAKER_OPEN: &str = "BreakerOpen";

/// The variable that switches the metrics: `emf` or `off`.
pub const METRICS_VARIABLE: &str = "WEIR_METRICS";
/// Set by Lambda (and the emulator) for every function: unset, metrics default to off.
const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Whether a function prints its metrics (`WEIR_METRICS`).
///
/// ```
/// use weir_functions::metrics::MetricsSwitch;
///
/// let on_lambda = |name: &str| (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "reviews-process".to_string());
/// assert_eq!(MetricsSwitch::from_lookup(on_lambda).unwrap(), MetricsSwitch::Emf);
/// assert_eq!(MetricsSwitch::from_lookup(|_| None).unwrap(), MetricsSwitch::Off);
/// let off = |name: &str| (name == "WEIR_METRICS").then(|| "off".to_string());
/// assert_eq!(MetricsSwitch::from_lookup(off).unwrap(), MetricsSwitch::Off);
/// let wrong = |name: &str| (name == "WEIR_METRICS").then(|| "prometheus".to_string());
/// assert!(MetricsSwitch::from_lookup(wrong).unwrap_err().to_string().contains("WEIR_METRICS"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsSwitch {
    /// EMF lines on standard output.
    Emf,
    /// No metrics.
    #[default]
    Off,
}

impl MetricsSwitch {
    /// Reads `WEIR_METRICS` from `lookup`; unset or empty, `emf` where
    /// `AWS_LAMBDA_FUNCTION_NAME` is set, else `off`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let value = lookup(METRICS_VARIABLE).map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
        match value.as_deref() {
            Some("emf") => Ok(MetricsSwitch::Emf),
            Some("off") => Ok(MetricsSwitch::Off),
            Some(other) => Err(Error::config(METRICS_VARIABLE, format!("is `{other}`; expected `emf` or `off`"))),
            None if lookup(LAMBDA_FUNCTION_NAME).is_some_and(|name| !name.is_empty()) => Ok(MetricsSwitch::Emf),
            None => Ok(MetricsSwitch::Off),
        }
    }
}

/// Where one function's metrics go, with the dimensions every one of them carries (`Agent`,
/// `Function`).
///
/// ```
/// use weir_functions::emf::Unit;
/// use weir_functions::metrics::{EVENTS, Metrics};
///
/// let (metrics, lines) = Metrics::in_memory("ingest", Some("reviews"));
/// metrics.emit([metrics.document().metric(EVENTS, Unit::Count, 3)]);
/// let line: serde_json::Value = serde_json::from_str(&lines.lines()[0]).unwrap();
/// assert_eq!((line["Agent"].as_str(), line["Function"].as_str(), line["Events"].as_u64()), (Some("reviews"), Some("ingest"), Some(3)));
/// ```
#[derive(Debug, Clone)]
pub struct Metrics {
    output: Output,
    function: &'static str,
    agent: Option<String>,
}

#[derive(Debug, Clone)]
enum Output {
    Off,
    Stdout,
    Memory(MetricLines),
}

/// The lines a [`Metrics::in_memory`] kept, for tests.
#[derive(Debug, Clone, Default)]
pub struct MetricLines(Arc<Mutex<Vec<String>>>);

impl MetricLines {
    /// Every line so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl Metrics {
    /// Metrics of `function` (`ingest`, `process`, `dispatch`) for `agent`, printed on
    /// standard output if `switch` says so.
    pub fn new(switch: MetricsSwitch, function: &'static str, agent: Option<&str>) -> Self {
        let output = match switch {
            MetricsSwitch::Emf => Output::Stdout,
            MetricsSwitch::Off => Output::Off,
        };
        Metrics { output, function, agent: agent.map(str::to_string) }
    }

    /// No metrics at all.
    pub fn off(function: &'static str) -> Self {
        Metrics::new(MetricsSwitch::Off, function, None)
    }

    /// Metrics kept in memory instead of printed: the lines they would have printed.
    pub fn in_memory(function: &'static str, agent: Option<&str>) -> (Self, MetricLines) {
        let lines = MetricLines::default();
        (Metrics { output: Output::Memory(lines.clone()), function, agent: agent.map(str::to_string) }, lines)
    }

    /// Whether anything is published: when not, callers skip the work of measuring.
    pub fn enabled(&self) -> bool {
        !matches!(self.output, Output::Off)
    }

    /// A document of this function's metrics, now: in the namespace, with the `Agent` (when
    /// known) and `Function` dimensions.
    pub fn document(&self) -> EmfDocument {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let document = EmfDocument::new(NAMESPACE, now_ms);
        let document = match &self.agent {
            Some(agent) => document.dimension(AGENT, agent),
            None => document,
        };
        document.dimension(FUNCTION, self.function)
    }

    /// Publishes `documents`: each line written whole with one write, so that it never
    /// interleaves with the JSON logs `tracing` writes on the same output.
    pub fn emit(&self, documents: impl IntoIterator<Item = EmfDocument>) {
        let lines = documents.into_iter().flat_map(|document| document.lines());
        match &self.output {
            Output::Off => {}
            Output::Memory(kept) => kept.0.lock().expect("not poisoned").extend(lines),
            Output::Stdout => {
                for line in lines {
                    let mut stdout = std::io::stdout().lock();
                    if let Err(error) = stdout.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdout.flush()) {
                        tracing::warn!(%error, "could not write the metrics");
                    }
                }
            }
        }
    }
}
