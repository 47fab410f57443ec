//! What the review agent's tests share: the sample reviews and a notify tool that records.

use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::testing::FakeTool;
use weir_review_analysis::NOTIFY_TOOL;

/// The sample reviews that are JSON, as (product, review).
pub fn sample() -> Vec<(String, Value)> {
    include_str!("../../data/reviews.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|review| (review["id"].as_str().unwrap().to_string(), review))
        .collect()
}

/// A notify tool that answers every call and records it.
pub fn notifier() -> Arc<FakeTool> {
    let parameters = weir_tools::parameters_schema::<weir_review_analysis::Notification>();
    Arc::new(FakeTool::new(NOTIFY_TOOL, parameters, |_| Ok(json!({"notified": true}))))
}
