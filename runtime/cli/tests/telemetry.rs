//! The OpenTelemetry export, received by Arize Phoenix (a receiver nobody here wrote): `weir
//! run` with the standard `OTEL_*` variables sends each review's spans with the GenAI
//! attributes, read back from Phoenix's REST API; no API key is in any of them.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_spans_arrive_in_phoenix_with_the_genai_attributes() {
    let phoenix = tokio::task::spawn_blocking(Phoenix::start).await.unwrap().expect("Phoenix starts");
    let dir = TempDir::new("telemetry");
    let store = dir.store("store");
    let reviews = shared_reviews(&dir, REVIEWS);
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    let provider = Provider::start(Mode::Scoring).await;
    let mut run = weir(&["run", "--store", &store]);
    run.envs(provider.env())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.endpoint())
        .env("OTEL_SERVICE_NAME", "weir-telemetry-test")
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true");
    let ran = tokio::task::spawn_blocking(move || ok(run)).await.unwrap();
    assert!(ran.contains(&format!("{REVIEWS} events")), "{ran}");

    // Phoenix stores what it received in the background: wait until every event's root is in.
    let roots = |spans: &[Value]| spans.iter().filter(|s| s["parent_id"].is_null()).count();
    let mut received = spans(&phoenix).await;
    for _ in 0..600 {
        if roots(&received) >= REVIEWS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        received = spans(&phoenix).await;
    }
    let by_trace: BTreeMap<&str, Vec<&Value>> = received.iter().fold(BTreeMap::new(), |mut traces, span| {
        traces.entry(span["context"]["trace_id"].as_str().unwrap()).or_default().push(span);
        traces
    });
    assert_eq!(by_trace.len(), REVIEWS, "one trace per review");
    for (trace_id, spans) in &by_trace {
        let ids: BTreeSet<&str> = spans.iter().map(|s| s["context"]["span_id"].as_str().unwrap()).collect();
        let [root] = spans.iter().filter(|s| s["parent_id"].is_null()).collect::<Vec<_>>()[..] else {
            panic!("trace {trace_id} has one root: {spans:?}")
        };
        assert_eq!(root["name"], "event review-analysis");
        assert!(root["attributes"]["weir.key"].is_string(), "{root}");
        for span in spans.iter().filter(|s| !s["parent_id"].is_null()) {
            assert!(ids.contains(span["parent_id"].as_str().unwrap()), "trace {trace_id}: a parent is missing: {span}");
        }
        let chat: Vec<&&Value> = spans.iter().filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat").collect();
        assert!(!chat.is_empty(), "trace {trace_id} has a model call");
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
