//! How a committed span becomes an OpenTelemetry span.
//!
//! Span ids are derived, not drawn: each is a hash of the agent, partition, event position
//! and the span's number, so that an export sent twice names the same spans. An event's
//! trace is its producer's when the producer's request carried one (the root then continues
//! the producer's span, and links to its key span), else its key span's (the root is that span's
//! child), else, without a batch, one of its own, hashed like the span ids.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Link, SpanContext, SpanKind as OtelKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::Value;
use weir_engine::{EventTrace, Span, SpanKind, TRACE_PARENT_ATTRIBUTE, TRACE_STATE_ATTRIBUTE, TraceParent};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::invocation::BatchSpan;

/// Attributes that hold content (messages, arguments, results, documents): exported only
/// when `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true`, as the GenAI
/// conventions ask.
const CONTENT: [&str; 6] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "weir.retrieval.query",
    "weir.retrieval.documents",
];

/// What the spans of one commit share.
pub(crate) struct Commit<'a> {
    pub(crate) agent: &'a str,
    pub(crate) partition: u32,
    pub(crate) seq: u64,
    pub(crate) capture_content: bool,
}

/// The event's spans as OpenTelemetry spans, under its key's span in `batch` (or linked to
/// it, when the producer's trace context puts them in the producer's trace).
pub(crate) fn event_spans(commit: &Commit<'_>, trace: &EventTrace, batch: Option<&BatchSpan>) -> Vec<SpanData> {
    let identity = format!("{}\0{}\0{}", commit.agent, commit.partition, trace.event);
    let span_id = |n: u32| {
        let id = xxh3_64(format!("{identity}\0{n}").as_bytes()).max(1);
        opentelemetry::trace::SpanId::from_bytes(id.to_be_bytes())
    };
    let producer = trace
        .spans
        .first()
        .and_then(|root| root.attributes.get(TRACE_PARENT_ATTRIBUTE))
        .and_then(Value::as_str)
        .and_then(|text| text.parse::<TraceParent>().ok());
    // The caller's tracestate goes on with its trace, to every span of the event.
    let state = match &producer {
        Some(_) => {
            trace_state(trace.spans.first().and_then(|root| root.attributes.get(TRACE_STATE_ATTRIBUTE)?.as_str()))
        }
        None => key_state(batch, &trace.key),
    };
    let key = batch.map(|b| b.key(&trace.key));
    let (trace_id, root_parent, links) = match (&producer, key) {
        (Some(producer), key) => {
            let links = key.map(|k| Link::with_context(k.clone())).into_iter().collect();
            (TraceId::from_bytes(producer.trace_id), opentelemetry::trace::SpanId::from_bytes(producer.span_id), links)
        }
        (None, Some(key)) => (key.trace_id(), key.span_id(), Vec::new()),
        (None, None) => (
            TraceId::from_bytes(xxh3_128(identity.as_bytes()).to_be_bytes()),
            opentelemetry::trace::SpanId::INVALID,
            Vec::new(),
        ),
    };
    let scope = InstrumentationScope::builder("weir").with_version(env!("CARGO_PKG_VERSION")).build();
    trace
        .spans
        .iter()
        .map(|span| {
            let start_time = SystemTime::UNIX_EPOCH + Duration::from_millis(span.start_ms);
            let mut attributes = attributes(commit, span);
            if span.parent.is_none() {
                attributes.extend([
                    KeyValue::new("weir.agent", commit.agent.to_string()),
                    KeyValue::new("weir.partition", i64::from(commit.partition)),
                    KeyValue::new("weir.commit", commit.seq as i64),
                    KeyValue::new("weir.key", trace.key.clone()),
                    KeyValue::new("weir.event", trace.event.to_string()),
                ]);
            }
            SpanData {
                span_context: SpanContext::new(trace_id, span_id(span.id.0), TraceFlags::SAMPLED, false, state.clone()),
                parent_span_id: span.parent.map_or(root_parent, |p| span_id(p.0)),
                parent_span_is_remote: span.parent.is_none() && producer.is_some(),
                span_kind: match span.kind {
                    SpanKind::Model | SpanKind::Tool | SpanKind::Retrieval => OtelKind::Client,
                    SpanKind::Event | SpanKind::Action => OtelKind::Internal,
                },
                name: Cow::Owned(name(commit, span)),
                start_time,
                end_time: start_time + Duration::from_micros(span.duration_us),
                attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: {
                    let mut root_links = SpanLinks::default();
                    if span.parent.is_none() {
                        root_links.links = links.clone();
                    }
                    root_links
                },
                status: match &span.error {
                    Some(error) => Status::error(error.clone()),
                    None => Status::Ok,
                },
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}

/// A `tracestate` as OpenTelemetry keeps it; empty when there is none, or when the SDK
/// refuses it.
pub(crate) fn trace_state(state: Option<&str>) -> TraceState {
    state.and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// The tracestate of an event's spans in its batch's trace: its key span's (the
/// invocation's caller's).
fn key_state(batch: Option<&BatchSpan>, key: &str) -> TraceState {
    batch.map(|b| b.key(key).trace_state().clone()).unwrap_or_default()
}

/// Span names as the GenAI conventions spell them (`{operation} {model or tool}`).
fn name(commit: &Commit<'_>, span: &Span) -> String {
    match span.kind {
        SpanKind::Event => format!("event {}", commit.agent),
        SpanKind::Action => format!("action {}", span.name),
        SpanKind::Model => {
            let model = span.usage.as_ref().map_or(span.name.as_str(), |u| u.model.as_str());
            format!("chat {model}")
        }
        SpanKind::Tool => format!("execute_tool {}", span.name),
        SpanKind::Retrieval => format!("retrieval {}", span.name),
    }
}

fn attributes(commit: &Commit<'_>, span: &Span) -> Vec<KeyValue> {
    let mut attributes: Vec<KeyValue> = span
        .attributes
        .iter()
        .filter(|(name, _)| commit.capture_content || !CONTENT.contains(&name.as_str()))
        .map(|(name, value)| KeyValue::new(name.clone(), value_of(value)))
        .collect();
    attributes.push(KeyValue::new("weir.span.kind", span.kind.as_str()));
    if let Some(usage) = &span.usage {
        attributes.push(KeyValue::new("gen_ai.response.model", usage.model.clone()));
        if let Some(cost) = usage.cost {
            attributes.push(KeyValue::new("weir.cost", cost));
        }
    }
    if let Some(error) = &span.error {
        attributes.push(KeyValue::new("error.type", error_type(error)));
    }
    attributes
}

/// A JSON value as an attribute value: scalars as themselves, the rest as JSON text.
fn value_of(value: &Value) -> OtelValue {
    match value {
        Value::Bool(b) => OtelValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => OtelValue::I64(i),
            None => OtelValue::F64(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => OtelValue::String(s.clone().into()),
        other => OtelValue::String(other.to_string().into()),
    }
}

/// A low-cardinality class of an error, as `error.type` wants: its text up to the first
/// colon.
fn error_type(error: &str) -> String {
    error.split(':').next().unwrap_or(error).trim().chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use weir_engine::{ManualClock, ModelUsage, Position, SpanEnd, SpanId, Trace};

    use super::*;

    fn commit(capture_content: bool) -> Commit<'static> {
        Commit { agent: "review-analysis", partition: 2, seq: 9, capture_content }
    }

    fn trace() -> EventTrace {
        let trace = Trace::new(std::sync::Arc::new(ManualClock::default()));
        let action = trace.start(SpanId::ROOT, SpanKind::Action, "weir.chat");
        let model = trace.start(action, SpanKind::Model, "reviewer");
        let usage = ModelUsage { model: "gpt-4o-mini".into(), input_tokens: 70, output_tokens: 20, cost: None };
        let end = SpanEnd::ok().usage(usage).attribute("gen_ai.input.messages", serde_json::json!([{"content": "hi"}]));
        trace.end(model, end.attribute("gen_ai.usage.input_tokens", 70));
        trace.end(action, SpanEnd::failed("model `reviewer`: 503"));
        EventTrace { commit_seq: 9, key: "shoe".into(), event: Position::new(3, 1), spans: trace.finish(SpanEnd::ok()) }
    }

    #[test]
    fn spans_keep_the_tree_with_ids_that_a_second_export_repeats() {
        let spans = event_spans(&commit(false), &trace(), None);
        let ids = |spans: &[SpanData]| -> Vec<_> {
            spans.iter().map(|s| (s.span_context.trace_id(), s.span_context.span_id(), s.parent_span_id)).collect()
        };
        assert_eq!(ids(&spans), ids(&event_spans(&commit(false), &trace(), None)));
        let [root, action, model] = spans.as_slice() else { panic!("three spans") };
        assert_eq!(root.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        assert_eq!(action.parent_span_id, root.span_context.span_id());
        assert_eq!(model.parent_span_id, action.span_context.span_id());
        assert!(spans.iter().all(|s| s.span_context.trace_id() == root.span_context.trace_id()));
        assert_eq!((model.name.as_ref(), model.span_kind.clone()), ("chat gpt-4o-mini", OtelKind::Client));
        assert!(model.attributes.contains(&KeyValue::new("gen_ai.usage.input_tokens", 70)));
        assert!(matches!(action.status, Status::Error { .. }));
        assert!(action.attributes.contains(&KeyValue::new("error.type", "model `reviewer`")));
    }

    #[test]
    fn content_goes_only_when_capture_is_asked_for() {
        let has_content = |capture| {
            event_spans(&commit(capture), &trace(), None)[2]
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == "gen_ai.input.messages")
        };
        assert!(!has_content(false));
        assert!(has_content(true));
    }

    #[test]
    fn an_event_sits_under_its_key_or_in_its_producers_trace_linked_to_the_key() {
        let mut invocation = crate::invocation::Invocation::start("run", None);
        let (batch_data, batch) = invocation.batch("review-analysis", 2, 9, &[trace()]);
        let [batch_data, key_data] = &batch_data[..] else { panic!("the batch and its key: {batch_data:?}") };
        assert_eq!(key_data.parent_span_id, batch_data.span_context.span_id());
        let spans = event_spans(&commit(false), &trace(), Some(&batch));
        assert_eq!(spans[0].parent_span_id, key_data.span_context.span_id());
        assert!(spans.iter().all(|s| s.span_context.trace_id() == batch_data.span_context.trace_id()));

        let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut traced = trace();
        traced.spans[0].attributes.insert(TRACE_PARENT_ATTRIBUTE.into(), producer.into());
        traced.spans[0].attributes.insert(TRACE_STATE_ATTRIBUTE.into(), "rojo=00f067aa0ba902b7".into());
        let spans = event_spans(&commit(false), &traced, Some(&batch));
        assert!(spans.iter().all(|s| s.span_context.trace_state().get("rojo") == Some("00f067aa0ba902b7")));
        let producer: TraceParent = producer.parse().unwrap();
        assert!(spans.iter().all(|s| s.span_context.trace_id() == TraceId::from_bytes(producer.trace_id)));
        assert_eq!(spans[0].parent_span_id, opentelemetry::trace::SpanId::from_bytes(producer.span_id));
        assert!(spans[0].parent_span_is_remote);
        assert_eq!(spans[0].links.links[0].span_context, key_data.span_context);
        assert_eq!(spans[1].parent_span_id, spans[0].span_context.span_id(), "the tree below the root is kept");
    }
}
