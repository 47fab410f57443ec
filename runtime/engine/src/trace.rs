//! The trace: for every committed event, the tree of what its handling did, committed with
//! the batch as a Parquet file (`docs/observability.md`).

use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::outputs::{column, commit_schema, read_batches, write_parquet};
use crate::position::Position;

/// What a span stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// The handling of one input event: the root of its tree.
    Event,
    /// An action's run.
    Action,
    /// A model call.
    Model,
    /// A tool call.
    Tool,
    /// A search of a vector store or knowledge base.
    Retrieval,
}

impl SpanKind {
    /// The name the trace files spell.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Event => "event",
            SpanKind::Action => "action",
            SpanKind::Model => "model",
            SpanKind::Tool => "tool",
            SpanKind::Retrieval => "retrieval",
        }
    }

    fn parse(name: &str) -> Option<SpanKind> {
        [SpanKind::Event, SpanKind::Action, SpanKind::Model, SpanKind::Tool, SpanKind::Retrieval]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// A span's number within its event's tree; the root is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpanId(pub u32);

impl SpanId {
    /// The event's own span.
    pub const ROOT: SpanId = SpanId(0);
}

/// The tokens and price of a model call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelUsage {
    /// The model, as the agent names it.
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What the call cost, in the price table's currency; `None` when no price is known.
    pub cost: Option<f64>,
}

/// One step of an event's handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub id: SpanId,
    /// `None` for the root.
    pub parent: Option<SpanId>,
    pub kind: SpanKind,
    /// The action, model, tool or store; `event` for the root.
    pub name: String,
    /// When it started, milliseconds since the epoch.
    pub start_ms: u64,
    pub duration_us: u64,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
    /// A model call's usage.
    pub usage: Option<ModelUsage>,
    /// Everything else, named after the OpenTelemetry GenAI conventions where they name it.
    pub attributes: Map<String, Value>,
}

/// How a span ended.
///
/// ```
/// use weir_engine::SpanEnd;
///
/// let end = SpanEnd::ok().attribute("gen_ai.tool.name", "lookup");
/// assert!(end.error.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanEnd {
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
    /// A model call's usage.
    pub usage: Option<ModelUsage>,
    /// Attributes to add.
    pub attributes: Map<String, Value>,
}

impl SpanEnd {
    /// It succeeded.
    pub fn ok() -> Self {
        SpanEnd::default()
    }

    /// It failed for `error`.
    pub fn failed(error: impl ToString) -> Self {
        SpanEnd { error: Some(error.to_string()), ..Default::default() }
    }

    /// Adds an attribute.
    pub fn attribute(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.to_string(), value.into());
        self
    }

    /// Sets the usage of a model call.
    pub fn usage(mut self, usage: ModelUsage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// The spans of one attempt at an event, as its handling records them. Spans are numbered
/// in the order they start; the root ([`SpanId::ROOT`]) is the attempt itself.
///
/// ```
/// use weir_engine::{ManualClock, SpanEnd, SpanId, SpanKind, Trace};
///
/// let trace = Trace::new(std::sync::Arc::new(ManualClock::default()));
/// let action = trace.start(SpanId::ROOT, SpanKind::Action, "score");
/// trace.end(action, SpanEnd::ok());
/// let spans = trace.finish(SpanEnd::ok());
/// assert_eq!(spans.len(), 2);
/// assert_eq!(spans[1].parent, Some(SpanId::ROOT));
/// ```
#[derive(Debug)]
pub struct Trace {
    clock: Arc<dyn Clock>,
    spans: Mutex<Vec<(Span, Instant, bool)>>,
}

impl Trace {
    /// A trace whose root starts now.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let trace = Trace { clock, spans: Mutex::new(Vec::new()) };
        trace.open(None, SpanKind::Event, "event");
        trace
    }

    /// Starts a span under `parent`.
    pub fn start(&self, parent: SpanId, kind: SpanKind, name: &str) -> SpanId {
        self.open(Some(parent), kind, name)
    }

    fn open(&self, parent: Option<SpanId>, kind: SpanKind, name: &str) -> SpanId {
        let mut spans = self.spans.lock().expect("trace");
        let id = SpanId(spans.len() as u32);
        let span = Span {
            id,
            parent,
            kind,
            name: name.to_string(),
            start_ms: self.clock.now_ms(),
            duration_us: 0,
            error: None,
            usage: None,
            attributes: Map::new(),
        };
        spans.push((span, Instant::now(), false));
        id
    }

    /// Ends a span; ending one twice, or one never started, does nothing.
    pub fn end(&self, id: SpanId, end: SpanEnd) {
        let mut spans = self.spans.lock().expect("trace");
        let Some((span, started, ended)) = spans.get_mut(id.0 as usize) else { return };
        if std::mem::replace(ended, true) {
            return;
        }
        span.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.error = end.error;
        span.usage = end.usage;
        span.attributes.extend(end.attributes);
    }

    /// The tokens (prompt and reply) and cost of the model calls recorded so far, made or
    /// replayed: what this attempt at the event spent.
    pub fn tokens_and_cost(&self) -> (u64, f64) {
        let spans = self.spans.lock().expect("trace");
        spans.iter().filter_map(|(span, _, _)| span.usage.as_ref()).fold((0, 0.0), |(tokens, cost), usage| {
            (tokens + usage.input_tokens + usage.output_tokens, cost + usage.cost.unwrap_or(0.0))
        })
    }

    /// Ends the root with `end`, and any span still open as interrupted by it.
    pub fn finish(self, end: SpanEnd) -> Vec<Span> {
        let open: Vec<SpanId> = {
            let spans = self.spans.lock().expect("trace");
            spans.iter().skip(1).filter(|(_, _, ended)| !ended).map(|(span, _, _)| span.id).collect()
        };
        for id in open {
            self.end(id, SpanEnd::failed("not finished: the event's handling ended first"));
        }
        self.end(SpanId::ROOT, end);
        self.spans.into_inner().expect("trace").into_iter().map(|(span, _, _)| span).collect()
    }
}

/// The committed spans of one input event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTrace {
    /// The commit that made it visible (0 while its batch has not committed).
    pub commit_seq: u64,
    pub key: String,
    /// The input event's position.
    pub event: Position,
    /// The tree, root first, each span after its parent.
    pub spans: Vec<Span>,
}

/// Receives each commit's traces once the commit stands: to export them (OpenTelemetry), or
/// to count them. Called on the committing task: hand the work off, do not wait in it.
///
/// A crash between a commit and its call loses that call; the committed trace stays the
/// record (`docs/observability.md`).
///
/// ```
/// use weir_engine::{EventTrace, TraceSink};
///
/// #[derive(Debug, Default)]
/// struct Counter(std::sync::atomic::AtomicUsize);
///
/// impl TraceSink for Counter {
///     fn committed(&self, _agent: &str, _partition: u32, _seq: u64, traces: &[EventTrace]) {
///         self.0.fetch_add(traces.len(), std::sync::atomic::Ordering::Relaxed);
///     }
/// }
/// ```
pub trait TraceSink: std::fmt::Debug + Send + Sync + 'static {
    /// `agent`'s commit `seq` on `partition` committed `traces`.
    fn committed(&self, agent: &str, partition: u32, seq: u64, traces: &[EventTrace]);
}

fn trace_schema() -> Arc<Schema> {
    commit_schema([
        Field::new("span_id", DataType::UInt32, false),
        Field::new("parent_id", DataType::UInt32, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("start_ms", DataType::UInt64, false),
        Field::new("duration_us", DataType::UInt64, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("input_tokens", DataType::UInt64, true),
        Field::new("output_tokens", DataType::UInt64, true),
        Field::new("cost", DataType::Float64, true),
        Field::new("attributes", DataType::Utf8, false),
    ])
}

/// Encodes traces of `(partition, trace)`, a row per span: one commit's when a batch commits,
/// many commits' for an export.
pub(crate) fn encode_traces<'a>(traces: impl Iterator<Item = (u32, &'a EventTrace)>) -> Bytes {
    let rows: Vec<(u32, &EventTrace, &Span)> =
        traces.flat_map(|(partition, t)| t.spans.iter().map(move |s| (partition, t, s))).collect();
    let usage = |f: fn(&ModelUsage) -> Option<u64>| {
        UInt64Array::from_iter(rows.iter().map(|(_, _, s)| s.usage.as_ref().and_then(f)))
    };
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(p, _, _)| *p))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(_, t, _)| t.commit_seq))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, t, _)| t.key.as_str()))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(_, t, _)| t.event.segment))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(_, t, _)| t.event.index))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|(_, _, s)| s.id.0))),
        Arc::new(UInt32Array::from_iter(rows.iter().map(|(_, _, s)| s.parent.map(|p| p.0)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, s)| s.kind.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, s)| s.name.as_str()))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(_, _, s)| s.start_ms))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|(_, _, s)| s.duration_us))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, _, s)| s.error.as_deref()))),
        Arc::new(StringArray::from_iter(rows.iter().map(|(_, _, s)| s.usage.as_ref().map(|u| u.model.as_str())))),
        Arc::new(usage(|u| Some(u.input_tokens))),
        Arc::new(usage(|u| Some(u.output_tokens))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|(_, _, s)| s.usage.as_ref().and_then(|u| u.cost)))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, _, s)| Value::Object(s.attributes.clone()).to_string()),
        )),
    ];
    write_parquet(RecordBatch::try_new(trace_schema(), columns).expect("columns match schema"))
}

/// Decodes a trace file into its events' trees, in the order it holds them.
pub(crate) fn decode_traces(bytes: Bytes) -> Result<Vec<EventTrace>, String> {
    let mut traces: Vec<EventTrace> = Vec::new();
    for batch in read_batches(bytes)? {
        let commits = column::<UInt64Array>(&batch, "commit_seq")?;
        let keys = column::<StringArray>(&batch, "key")?;
        let segments = column::<UInt64Array>(&batch, "event_segment")?;
        let indexes = column::<UInt32Array>(&batch, "event_index")?;
        let ids = column::<UInt32Array>(&batch, "span_id")?;
        let parents = column::<UInt32Array>(&batch, "parent_id")?;
        let kinds = column::<StringArray>(&batch, "kind")?;
        let names = column::<StringArray>(&batch, "name")?;
        let starts = column::<UInt64Array>(&batch, "start_ms")?;
        let durations = column::<UInt64Array>(&batch, "duration_us")?;
        let errors = column::<StringArray>(&batch, "error")?;
        let models = column::<StringArray>(&batch, "model")?;
        let inputs = column::<UInt64Array>(&batch, "input_tokens")?;
        let outputs = column::<UInt64Array>(&batch, "output_tokens")?;
        let costs = column::<Float64Array>(&batch, "cost")?;
        let attributes = column::<StringArray>(&batch, "attributes")?;
        for row in 0..batch.num_rows() {
            let kind = kinds.value(row);
            let span = Span {
                id: SpanId(ids.value(row)),
                parent: parents.is_valid(row).then(|| SpanId(parents.value(row))),
                kind: SpanKind::parse(kind).ok_or_else(|| format!("unknown span kind `{kind}`"))?,
                name: names.value(row).to_string(),
                start_ms: starts.value(row),
                duration_us: durations.value(row),
                error: errors.is_valid(row).then(|| errors.value(row).to_string()),
                usage: models.is_valid(row).then(|| ModelUsage {
                    model: models.value(row).to_string(),
                    input_tokens: inputs.value(row),
                    output_tokens: outputs.value(row),
                    cost: costs.is_valid(row).then(|| costs.value(row)),
                }),
                attributes: serde_json::from_str(attributes.value(row))
                    .map_err(|e| format!("attributes of span {} are not a JSON object: {e}", ids.value(row)))?,
            };
            let (key, event) = (keys.value(row), Position::new(segments.value(row), indexes.value(row)));
            match traces.last_mut() {
                Some(last) if last.key == key && last.event == event => last.spans.push(span),
                _ => traces.push(EventTrace {
                    commit_seq: commits.value(row),
                    key: key.to_string(),
                    event,
                    spans: vec![span],
                }),
            }
        }
    }
    Ok(traces)
}

/// Traces of `(partition, trace)` as one Parquet file in the schema of the committed trace
/// files (`docs/observability.md`): what `weir trace --export` writes. Unlike a glob over the
/// store's `trace/` folders, it holds only committed traces (the folders also hold the files
/// of commits that never happened, until collection takes them).
///
/// ```
/// use weir_engine::{EventTrace, ManualClock, Position, SpanEnd, Trace};
///
/// let spans = Trace::new(std::sync::Arc::new(ManualClock::default())).finish(SpanEnd::ok());
/// let trace = EventTrace { commit_seq: 2, key: "k".into(), event: Position::new(0, 0), spans };
/// assert!(weir_engine::traces_parquet(&[(0, trace)]).starts_with(b"PAR1"));
/// ```
pub fn traces_parquet(traces: &[(u32, EventTrace)]) -> Bytes {
    encode_traces(traces.iter().map(|(partition, trace)| (*partition, trace)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commits_traces_read_back_as_written() {
        let trace = Trace::new(Arc::new(crate::ManualClock::default()));
        let action = trace.start(SpanId::ROOT, SpanKind::Action, "score");
        let model = trace.start(action, SpanKind::Model, "scorer");
        let usage = ModelUsage { model: "scorer".into(), input_tokens: 12, output_tokens: 3, cost: Some(0.25) };
        trace.end(model, SpanEnd::ok().usage(usage).attribute("gen_ai.operation.name", "chat"));
        let _unfinished = trace.start(action, SpanKind::Tool, "notify");
        let spans = trace.finish(SpanEnd::failed("boom"));
        assert_eq!(spans[3].error.as_deref(), Some("not finished: the event's handling ended first"));
        let traces = vec![
            EventTrace { commit_seq: 4, key: "a".into(), event: Position::new(1, 2), spans },
            EventTrace {
                commit_seq: 4,
                key: "b".into(),
                event: Position::new(1, 3),
                spans: Trace::new(Arc::new(crate::ManualClock::default())).finish(SpanEnd::ok()),
            },
        ];
        assert_eq!(decode_traces(encode_traces(traces.iter().map(|t| (0, t)))).unwrap(), traces);
    }
}
