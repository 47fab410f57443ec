//! The multi-agent quickstart end to end on local directories: the review-analysis agent (its
//! offline model) over the sample reviews, then the product-suggestions agent over its
//! outputs with a fake advisor model.

use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::testing::{AgentTest, FakeModel, FakeTool};
use weir_engine::EngineSettings;
use weir_review_analysis::{
    NOTIFY_TOOL, OfflineReviewModel, OfflineSuggestionsModel, ProductSummary, RECENT_REASONS, SUMMARY, agent,
    suggestions_agent,
};
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;

fn settings() -> EngineSettings {
    EngineSettings { journal_flush_window_ms: 1, ..Default::default() }
}

/// The review-analysis agent's outputs for the sample reviews, keyed by product.
async fn analyses() -> Vec<(String, Value)> {
    let (storage, _dir) = fresh_storage(Backend::File);
    let notify = Arc::new(FakeTool::new(NOTIFY_TOOL, json!({"type": "object"}), |_| Ok(json!({"notified": true}))));
    let reviewer = Arc::new(agent(Arc::new(OfflineReviewModel), notify).unwrap());
    let test = AgentTest::on(storage, reviewer, settings()).await.unwrap();
    let reviews: Vec<(String, Value)> = include_str!("../data/reviews.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|review| (review["id"].as_str().unwrap().to_string(), review))
        .collect();
    let run = test.run(reviews).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    run.outputs().into_iter().map(|o| (o["id"].as_str().unwrap().to_string(), o)).collect()
}

/// A fake advisor naming the product of the request.
fn advisor() -> Arc<FakeModel> {
    Arc::new(FakeModel::answering("fake", |request| {
        let user = &request.messages.last().unwrap().content;
        let product = user.strip_prefix("Product: ").unwrap().split('\n').next().unwrap();
        Ok(FakeModel::text(json!({"suggestions": [format!("improve {product}")]}).to_string()))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_agents_outputs_become_per_product_summaries_and_suggestions() {
    let analyses = analyses().await;
    assert_eq!(analyses.len(), 17, "the sample's 18th review is not JSON, on purpose");
    let (storage, _dir) = fresh_storage(Backend::File);
    let model = advisor();
    let test =
        AgentTest::on(storage, Arc::new(suggestions_agent(model.clone(), 3).unwrap()), settings()).await.unwrap();
    let run = test.run(analyses.clone()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);

    let outputs = run.outputs();
    assert_eq!(outputs.len(), model.requests().len(), "one output per model call");
    for product in ["backpack", "desk-lamp", "kettle", "trail-shoe"] {
        let third = outputs.iter().find(|o| o["id"] == product && o["summary"]["count"] == 3);
        let third = third.unwrap_or_else(|| panic!("no suggestions for {product} at its third analysis: {outputs:#?}"));
        assert_eq!(third["suggestions"], json!([format!("improve {product}")]));
        let histogram = third["summary"]["score_histogram"].as_object().unwrap();
        assert_eq!(histogram.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 3);
        let memory: ProductSummary = test.memory(product).await.unwrap().get(SUMMARY).unwrap().unwrap();
        let analysed = analyses.iter().filter(|(key, _)| key == product).count() as u64;
        assert_eq!(memory.count, analysed);
        assert!(memory.recent_reasons.len() <= RECENT_REASONS);
    }
    let requests = model.requests();
    let asked = &requests[0].messages.last().unwrap().content;
    assert!(asked.contains("\"recent_reasons\""), "the model sees the summary: {asked}");
    let complaints: u64 = outputs.iter().map(|o| o["summary"]["shipping_complaints"].as_u64().unwrap()).sum();
    assert!(complaints > 0, "shipping complaints reach the summaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_falling_average_asks_before_the_next_multiple() {
    let model = advisor();
    let test = AgentTest::new(Arc::new(suggestions_agent(model.clone(), 3).unwrap())).await;
    let analysis = |score: u8| ("kettle", json!({"id": "kettle", "score": score, "reasons": ["r"]}));
    let run = test.run([analysis(5), analysis(5), analysis(5), analysis(4), analysis(1)]).await.unwrap();
    let counts: Vec<Value> = run.outputs().iter().map(|o| o["summary"]["count"].clone()).collect();
    assert_eq!(counts, [json!(3), json!(5)], "5.0 at three, then 4.0 after the one-star review");
    assert_eq!(run.outputs()[1]["summary"]["average_score"], 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_a_reply_that_is_not_suggestions_are_dead_lettered() {
    let model = Arc::new(FakeModel::answering("fake", |_| Ok(FakeModel::text("Make it better."))));
    let test = AgentTest::new(Arc::new(suggestions_agent(model, 1).unwrap())).await;
    let run = test
        .run([
            ("kettle", json!({"id": "kettle", "score": 9, "reasons": []})),
            ("kettle", json!({"id": "kettle", "review": "not an analysis"})),
            ("kettle", json!({"id": "kettle", "score": 4, "reasons": ["fast"]})),
        ])
        .await
        .unwrap();
    assert!(run.outputs.is_empty());
    let reasons: Vec<&str> = run.dead_letters.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("score 9 of `kettle` is not 1 to 5"), "{reasons:?}");
    assert!(reasons[1].contains("not a review analysis of key `kettle`"), "{reasons:?}");
    assert!(
        reasons[2].contains("invalid suggestions for `kettle`") && reasons[2].ends_with("raw reply: Make it better."),
        "{reasons:?}"
    );
    let memory = test.memory("kettle").await.unwrap();
    assert_eq!(memory.get::<ProductSummary>(SUMMARY).unwrap(), None, "nothing of a dead-lettered run is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_agents_run_offline() {
    let analyses = analyses().await;
    let test = AgentTest::new(Arc::new(suggestions_agent(Arc::new(OfflineSuggestionsModel), 3).unwrap())).await;
    let run = test.run(analyses).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    assert!(run.outputs().len() >= 4);
    for output in run.outputs() {
        assert!(!output["suggestions"].as_array().unwrap().is_empty(), "{output}");
    }
}
