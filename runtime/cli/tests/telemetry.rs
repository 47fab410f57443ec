//! The OpenTelemetry export, received by Arize Phoenix (a receiver nobody here wrote): `weir
//! run` with the standard `OTEL_*` variables sends each review's spans with the GenAI
//! attributes under its key, batch, partition and invocation, or, for the reviews ingested with
//! a producer's `TRACEPARENT`, in the producer's trace; read back from Phoenix's REST API;
//! no API key is in any of them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::provider::{Mode, Provider};
use common::{TempDir, ok, shared_reviews, weir};
use serde_json::Value;
use weir_tests::phoenix::Phoenix;

/// Reviews ingested.
const REVIEWS: usize = 20;

/// Every span Phoenix holds in its default project.
async fn spans(phoenix: &Phoenix) -> Vec<Value> {
    let mut spans = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = phoenix.api("/v1/projects/default/spans?limit=500");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        spans.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return spans,
        }
    }
}

/// The producer's trace context that half of the reviews are ingested with.
const PRODUCER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_spans_arrive_in_phoenix_with_the_genai_attributes() {
    let phoenix = tokio::task::spawn_blocking(Phoenix::start).await.unwrap().expect("Phoenix starts");
    let dir = TempDir::new("telemetry");
    let store = dir.store("store");
    let reviews = std::fs::read_to_string(shared_reviews(&dir, REVIEWS)).unwrap();
    let (traced, untraced) = (dir.join("traced.jsonl"), dir.join("untraced.jsonl"));
    let lines: Vec<&str> = reviews.lines().collect();
    std::fs::write(&traced, lines[..REVIEWS / 2].join("\n") + "\n").unwrap();
    std::fs::write(&untraced, lines[REVIEWS / 2..].join("\n") + "\n").unwrap();
    let mut ingest = weir(&["ingest", traced.to_str().unwrap(), "--key-field", "/id", "--store", &store]);
    ok(ingest.env("TRACEPARENT", format!("00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01")));
    ok(weir(&["ingest", untraced.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    let provider = Provider::start(Mode::Scoring).await;
    let mut run = weir(&["run", "--store", &store]);
    run.envs(provider.env())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.endpoint())
        .env("OTEL_SERVICE_NAME", "weir-telemetry-test")
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true");
    let ran = tokio::task::spawn_blocking(move || ok(run)).await.unwrap();
    assert!(ran.contains(&format!("{REVIEWS} events")), "{ran}");

    // Phoenix stores what it received in the background: wait until every event and the
    // invocation are in.
    let arrived = |spans: &[Value]| {
        let events = spans.iter().filter(|s| s["name"] == "event review-analysis").count();
        events >= REVIEWS && spans.iter().any(|s| s["name"] == "invoke run")
    };
    let mut received = spans(&phoenix).await;
    for _ in 0..600 {
        if arrived(&received) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        received = spans(&phoenix).await;
    }
    let by_trace: BTreeMap<&str, Vec<&Value>> = received.iter().fold(BTreeMap::new(), |mut traces, span| {
        traces.entry(span["context"]["trace_id"].as_str().unwrap()).or_default().push(span);
        traces
    });
    assert_eq!(by_trace.len(), 2, "the run's trace and the producer's: {:?}", by_trace.keys());
    let named = |spans: &[&Value], name: &str| -> Vec<Value> {
        spans.iter().filter(|s| s["name"].as_str().unwrap().starts_with(name)).map(|s| (*s).clone()).collect()
    };
    let span_ids = |spans: &[Value]| -> BTreeSet<String> {
        spans.iter().map(|s| s["context"]["span_id"].as_str().unwrap().to_string()).collect()
    };
    let parents = |spans: &[Value]| -> BTreeSet<String> {
        spans.iter().map(|s| s["parent_id"].as_str().unwrap_or_default().to_string()).collect()
    };

    // The run: the invocation, its partitions under it, their batches, and the events that
    // came without a trace context under the batches.
    let (run_trace, run_spans) = by_trace.iter().find(|(id, _)| **id != PRODUCER_TRACE).unwrap();
    let [root] = run_spans.iter().filter(|s| s["parent_id"].is_null()).collect::<Vec<_>>()[..] else {
        panic!("the run's trace {run_trace} has one root: {run_spans:?}")
    };
    assert_eq!(root["name"], "invoke run");
    let partitions = named(run_spans, "partition ");
    let batches = named(run_spans, "batch ");
    let keys = named(run_spans, "key ");
    let events = named(run_spans, "event ");
    assert!(!partitions.is_empty() && !batches.is_empty() && !keys.is_empty(), "{run_spans:?}");
    assert_eq!(parents(&partitions), BTreeSet::from([root["context"]["span_id"].as_str().unwrap().to_string()]));
    assert!(parents(&batches).is_subset(&span_ids(&partitions)), "each batch under its partition");
    assert!(parents(&keys).is_subset(&span_ids(&batches)), "each key under its batch");
    assert!(parents(&events).is_subset(&span_ids(&keys)), "each event under its key");
    for event in &events {
        let key = keys.iter().find(|k| k["context"]["span_id"] == event["parent_id"]).unwrap();
        assert_eq!(key["attributes"]["weir.key"], event["attributes"]["weir.key"], "{event}");
    }
    assert_eq!(events.len(), REVIEWS / 2, "the events ingested without a trace context");
    let committed: i64 = batches.iter().map(|b| b["attributes"]["weir.events"].as_i64().unwrap()).sum();
    assert_eq!(committed, REVIEWS as i64, "the batches hold every event");

    // The producer's: each event it brought continues its span.
    let producer = &by_trace[PRODUCER_TRACE];
    let roots = named(producer, "event ");
    assert_eq!(roots.len(), REVIEWS / 2, "the events ingested with the producer's context");
    assert_eq!(parents(&roots), BTreeSet::from([PRODUCER_SPAN.to_string()]));

    for (trace_id, spans) in &by_trace {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s["context"]["span_id"].as_str().unwrap()).collect();
        for span in spans.iter().filter(|s| !s["parent_id"].is_null() && s["parent_id"] != PRODUCER_SPAN) {
            assert!(ids.contains(span["parent_id"].as_str().unwrap()), "trace {trace_id}: a parent is missing: {span}");
        }
        for event in named(spans, "event ") {
            assert!(event["attributes"]["weir.key"].is_string(), "{event}");
        }
        let chat: Vec<&&Value> = spans.iter().filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat").collect();
        assert!(chat.len() >= REVIEWS / 2, "trace {trace_id} has its events' model calls");
        for call in chat {
            let attributes = &call["attributes"];
            let model = attributes["gen_ai.request.model"].as_str().unwrap();
            assert_eq!(call["name"].as_str().unwrap(), format!("chat {model}"));
            assert!(attributes["gen_ai.usage.input_tokens"].as_u64().unwrap() > 0, "{call}");
            assert!(attributes["gen_ai.usage.output_tokens"].as_u64().is_some(), "{call}");
            assert!(attributes["gen_ai.input.messages"].is_string(), "content was asked for: {call}");
        }
    }
    let everything = serde_json::to_string(&received).unwrap();
    assert!(!everything.contains("test-key"), "the provider's API key is in no span");
}
