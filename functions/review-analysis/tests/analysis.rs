//! The review-analysis agent end to end on a local directory: the offline model, a fake
//! provider model, and the webhook notify tool with one idempotency key per complaint.

mod common;

use std::sync::{Arc, Mutex};

use common::{notifier, sample};
use serde_json::{Value, json};
use weir_agent::testing::{AgentTest, FakeModel};
use weir_engine::{EngineSettings, Storage};
use weir_review_analysis::{OfflineReviewModel, agent};
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_model_scores_every_sample_review_and_notifies_on_shipping_complaints() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let notify = notifier();
    let agent = Arc::new(agent(Arc::new(OfflineReviewModel), notify.clone()).unwrap());
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, agent.clone(), settings).await.unwrap();
    let reviews = sample();
    let run = test.run(reviews.clone()).await.unwrap();
    assert_eq!(run.outputs.len(), reviews.len(), "{:?}", run.dead_letters);
    for output in run.outputs() {
        let score = output["score"].as_u64().unwrap();
        assert!((1..=5).contains(&score), "{output}");
        assert!(!output["reasons"].as_array().unwrap().is_empty());
    }
    let complaints: Vec<Value> = run.outputs().into_iter().filter(|o| o["shipping_complaint"] == true).collect();
    assert_eq!(complaints.len(), 3, "{complaints:?}");
    let calls = notify.calls();
    assert_eq!(calls.len(), 3);
    let mut keys: Vec<&str> = calls.iter().map(|c| c.idempotency_key.as_str()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 3, "one idempotency key per notification");
    let metrics = agent.metrics();
    assert_eq!(metrics.models["reviewer"]["weir.chat"].calls, reviews.len() as u64 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_the_analysis_is_asked_again_then_dead_lettered_with_the_raw_reply() {
    let replies = Mutex::new(vec![
        FakeModel::text("```json\n{\"id\": \"kettle\", \"score\": 4, \"reasons\": [\"fast\"]}\n```"),
        FakeModel::text("I think it is quite good!"),
        FakeModel::text("{\"id\": \"kettle\", \"score\": 4, \"reasons\": [\"fast\"]}"),
        FakeModel::text("Sorry, no."),
        FakeModel::text("{\"score\": 9}"),
    ]);
    let model = FakeModel::answering("fake", move |_| Ok(replies.lock().unwrap().remove(0)));
    let agent = agent(Arc::new(model), notifier()).unwrap();
    let test = AgentTest::on(Storage::from_url("memory://").unwrap(), Arc::new(agent), EngineSettings::default())
        .await
        .unwrap();
    let review = |text: &str| ("kettle", json!({"id": "kettle", "review": text}));
    let run = test.run([review("fenced"), review("prose then JSON"), review("never valid")]).await.unwrap();
    assert_eq!(run.outputs().len(), 2, "a fenced reply parses; prose is asked again and then answered");
    assert_eq!(run.dead_letters.len(), 1);
    let reason = &run.dead_letters[0].reason;
    assert!(
        reason.starts_with("rejected: invalid analysis") && reason.contains("raw reply: {\"score\": 9}"),
        "{reason}"
    );
}
