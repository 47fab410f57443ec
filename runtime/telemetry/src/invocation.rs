//! The spans around the events: the invocation (one run of a function or of `weir run`),
//! each partition it worked on, each batch it committed there, and each key of a batch. An
//! event's spans sit under its key's, unless its producer's request carried a trace context: then they
//! join the producer's trace, linked to the batch (`docs/observability.md`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use weir_engine::{EventTrace, TraceParent};
use xxhash_rust::xxh3::xxh3_64;

/// One invocation's spans in the making: its own and its partitions', which end when it
/// does; its batches' are finished as they commit.
#[derive(Debug)]
pub(crate) struct Invocation {
    name: String,
    context: SpanContext,
    /// The span it continues (Lambda's X-Ray context, a parent process's `TRACEPARENT`).
    parent: Option<TraceParent>,
    start: SystemTime,
    partitions: BTreeMap<u32, PartitionSpan>,
}

#[derive(Debug)]
struct PartitionSpan {
    agent: String,
    start: SystemTime,
    end: SystemTime,
    batches: u64,
    events: u64,
}

/// The batch an event's spans were committed by, and its keys' spans: an event's key span
/// is its parent, or the span it links to.
#[derive(Debug, Clone)]
pub(crate) struct BatchSpan {
    pub(crate) context: SpanContext,
    keys: BTreeMap<String, SpanContext>,
}

impl BatchSpan {
    /// The span of `key` in this batch (the batch's own for a key it did not have).
    pub(crate) fn key(&self, key: &str) -> &SpanContext {
        self.keys.get(key).unwrap_or(&self.context)
    }
}

impl Invocation {
    /// An invocation named `name`, starting now, in `parent`'s trace if given, else in a
    /// trace of its own.
    pub(crate) fn start(name: &str, parent: Option<TraceParent>) -> Self {
        let trace_id = match &parent {
            Some(parent) => TraceId::from_bytes(parent.trace_id),
            None => TraceId::from_bytes(fastrand::u128(1..).to_be_bytes()),
        };
        let span_id = SpanId::from_bytes(fastrand::u64(1..).to_be_bytes());
        let state = crate::spans::trace_state(parent.as_ref().and_then(|p| p.state.as_deref()));
        let context = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, state);
        Invocation { name: name.into(), context, parent, start: SystemTime::now(), partitions: BTreeMap::new() }
    }

    /// Whether it committed anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// The span of `agent`'s commit `seq` on `partition`, of `traces`, ending now: from the
    /// first of its events' start; then, under it, a span per key, from its first event's
    /// start to its last event's end. Its partition's span grows to hold it.
    pub(crate) fn batch(
        &mut self,
        agent: &str,
        partition: u32,
        seq: u64,
        traces: &[EventTrace],
    ) -> (Vec<SpanData>, BatchSpan) {
        let end = SystemTime::now();
        let first_ms = traces.iter().filter_map(|t| t.spans.first()).map(|root| root.start_ms).min();
        let start = first_ms.map_or(end, |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).min(end);
        let span = self.partitions.entry(partition).or_insert_with(|| PartitionSpan {
            agent: agent.into(),
            start,
            end,
            batches: 0,
            events: 0,
        });
        span.start = span.start.min(start);
        span.end = span.end.max(end);
        span.batches += 1;
        span.events += traces.len() as u64;
        let context = self.child(&format!("batch\0{partition}\0{seq}"));
        let attributes = vec![
            KeyValue::new("weir.agent", agent.to_string()),
            KeyValue::new("weir.partition", i64::from(partition)),
            KeyValue::new("weir.commit", seq as i64),
            KeyValue::new("weir.events", traces.len() as i64),
        ];
        let parent = self.child(&format!("partition\0{partition}")).span_id();
        let batch =
            span_data(format!("batch {seq}"), context.clone(), parent, SpanKind::Internal, (start, end), attributes);
        let mut keys: BTreeMap<&str, (SystemTime, SystemTime, i64)> = BTreeMap::new();
        for trace in traces {
            let Some(root) = trace.spans.first() else { continue };
            let first = SystemTime::UNIX_EPOCH + Duration::from_millis(root.start_ms);
            let last = first + Duration::from_micros(root.duration_us);
            let times = keys.entry(trace.key.as_str()).or_insert((first, last, 0));
            *times = (times.0.min(first), times.1.max(last), times.2 + 1);
        }
        let mut spans = vec![batch];
        let mut contexts = BTreeMap::new();
        for (key, (first, last, events)) in keys {
            let key_context = self.child(&format!("key\0{partition}\0{seq}\0{key}"));
            let attributes = vec![
                KeyValue::new("weir.agent", agent.to_string()),
                KeyValue::new("weir.partition", i64::from(partition)),
                KeyValue::new("weir.commit", seq as i64),
                KeyValue::new("weir.key", key.to_string()),
                KeyValue::new("weir.events", events),
            ];
            let times = (first, last);
            let parent = context.span_id();
            spans.push(span_data(
                format!("key {key}"),
                key_context.clone(),
                parent,
                SpanKind::Internal,
                times,
                attributes,
            ));
            contexts.insert(key.to_string(), key_context);
        }
        (spans, BatchSpan { context, keys: contexts })
    }

    /// Ends the invocation now: its span and its partitions'.
    pub(crate) fn finish(self) -> Vec<SpanData> {
        let end = SystemTime::now();
        let mut spans: Vec<SpanData> = self
            .partitions
            .iter()
            .map(|(partition, span)| {
                let attributes = vec![
                    KeyValue::new("weir.agent", span.agent.clone()),
                    KeyValue::new("weir.partition", i64::from(*partition)),
                    KeyValue::new("weir.batches", span.batches as i64),
                    KeyValue::new("weir.events", span.events as i64),
                ];
                let context = self.child(&format!("partition\0{partition}"));
                let times = (span.start, span.end);
                let parent = self.context.span_id();
                span_data(format!("partition {partition}"), context, parent, SpanKind::Internal, times, attributes)
            })
            .collect();
        let parent = self.parent.as_ref().map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.span_id));
        let attributes = vec![
            KeyValue::new("weir.function", self.name.clone()),
            KeyValue::new("weir.partitions", self.partitions.len() as i64),
        ];
        let mut invocation = span_data(
            format!("invoke {}", self.name),
            self.context.clone(),
            parent,
            SpanKind::Server,
            (self.start, end),
            attributes,
        );
        invocation.parent_span_is_remote = self.parent.is_some();
        spans.push(invocation);
        spans
    }

    /// A span of this invocation's trace whose id is derived from the invocation's and
    /// `what`, so that the batches and partitions name their parents without a lookup.
    fn child(&self, what: &str) -> SpanContext {
        let id = xxh3_64(format!("{}\0{what}", self.context.span_id()).as_bytes()).max(1);
        SpanContext::new(
            self.context.trace_id(),
            SpanId::from_bytes(id.to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            self.context.trace_state().clone(),
        )
    }
}

fn span_data(
    name: String,
    context: SpanContext,
    parent: SpanId,
    kind: SpanKind,
    (start, end): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
) -> SpanData {
    SpanData {
        span_context: context,
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("weir").with_version(env!("CARGO_PKG_VERSION")).build(),
    }
}

#[cfg(test)]
mod tests {
    use weir_engine::{ManualClock, Position, SpanEnd, Trace};

    use super::*;

    fn traces(n: u32) -> Vec<EventTrace> {
        (0..n)
            .map(|i| EventTrace {
                commit_seq: 4,
                key: "k".into(),
                event: Position::new(1, i),
                spans: Trace::new(std::sync::Arc::new(ManualClock::default())).finish(SpanEnd::ok()),
            })
            .collect()
    }

    #[test]
    fn batches_sit_under_their_partition_under_the_invocation() {
        let mut invocation = Invocation::start("process", None);
        let (first, _) = invocation.batch("reviews", 3, 7, &traces(2));
        let [first, first_key] = &first[..] else { panic!("the batch and its one key: {first:?}") };
        assert_eq!((first_key.name.as_ref(), first_key.parent_span_id), ("key k", first.span_context.span_id()));
        assert!(first_key.attributes.contains(&KeyValue::new("weir.events", 2)));
        let (second, _) = invocation.batch("reviews", 3, 8, &traces(1));
        let (other, _) = invocation.batch("reviews", 5, 2, &traces(1));
        let (first, second, other) = (first.clone(), second[0].clone(), other[0].clone());
        let spans = invocation.finish();
        let [p3, p5, root] = spans.as_slice() else { panic!("two partitions and the invocation: {spans:?}") };
        assert_eq!((root.name.as_ref(), root.parent_span_id), ("invoke process", SpanId::INVALID));
        assert_eq!((p3.name.as_ref(), p5.name.as_ref()), ("partition 3", "partition 5"));
        assert!([p3, p5].iter().all(|p| p.parent_span_id == root.span_context.span_id()));
        assert_eq!(first.parent_span_id, p3.span_context.span_id());
        assert_eq!(second.parent_span_id, p3.span_context.span_id());
        assert_eq!(other.parent_span_id, p5.span_context.span_id());
        assert_ne!(first.span_context.span_id(), second.span_context.span_id());
        let trace_id = root.span_context.trace_id();
        assert!([&first, &second, &other, p3, p5].iter().all(|s| s.span_context.trace_id() == trace_id));
        assert!(p3.attributes.contains(&KeyValue::new("weir.events", 3)));
    }

    #[test]
    fn an_invocation_continues_its_parents_trace() {
        let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
        let parent = parent.with_state(Some("rojo=00f067aa0ba902b7"));
        let spans = Invocation::start("run", Some(parent.clone())).finish();
        assert_eq!(spans.last().unwrap().span_context.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        let root = spans.last().unwrap();
        assert_eq!(root.span_context.trace_id(), TraceId::from_bytes(parent.trace_id));
        assert_eq!(root.parent_span_id, SpanId::from_bytes(parent.span_id));
        assert!(root.parent_span_is_remote);
    }
}
