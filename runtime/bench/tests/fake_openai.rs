//! The fake model server answers the real OpenAI client well enough for the review-analysis
//! agent to run through the engine: answers pass the schema, a share of first turns call the
//! notify tool, and the server counts what it saw.

use std::sync::Arc;
use std::time::Duration;

use weir_bench::FakeModelServer;
use weir_engine::{Engine, EventLog, LogEvent, Storage};
use weir_models::{ApiKey, HttpSettings, OpenAiChat, OpenAiConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_analysis_runs_against_the_fake_server() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_fake-openai"));
    let fake = FakeModelServer::start_binary(binary, Duration::from_millis(5), 3).unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let reviews: Vec<LogEvent> = (0..30)
        .map(|i| {
            let product = format!("product-{}", i % 4);
            LogEvent::json(product.clone(), &serde_json::json!({"id": product, "review": "Arrived late.", "ts": i}))
        })
        .collect();
    log.append("reviews", &reviews).await.unwrap();

    let config = OpenAiConfig {
        base_url: Some(fake.base_url()),
        http: HttpSettings { max_concurrency: 2, ..HttpSettings::default() },
        ..OpenAiConfig::chat("fake")
    };
    let model = OpenAiChat::new(&config, ApiKey::new("test")).unwrap();
    let agent = weir_review_analysis::agent(Arc::new(model), weir_review_analysis::notify_tool_from_env().unwrap());
    let engine = Engine::builder(storage.clone(), "review-analysis", Arc::new(agent.unwrap())).build().unwrap();
    let report = engine.drain().await.unwrap();
    assert_eq!((report.events, report.outputs, report.dead_letters), (30, 30, 0));

    let outputs = weir_engine::CommittedReader::new(storage, "review-analysis", 0).unwrap().outputs().await.unwrap();
    let complaints = outputs.iter().filter(|o| o.payload["shipping_complaint"] == true).count();
    assert_eq!(complaints, 10, "one first turn in 3 called the tool");
    assert!(outputs.iter().all(|o| o.payload["id"].as_str() == Some(o.key.as_str())), "the product id is echoed");

    let stats = fake.stats().await.unwrap();
    assert_eq!((stats.requests, stats.tool_calls), (40, 10), "a tool call costs a second turn");
    assert!((1..=2).contains(&stats.peak_in_flight), "the client's limit holds: {stats:?}");
    fake.reset().await.unwrap();
    assert_eq!(fake.stats().await.unwrap().requests, 0);
}
