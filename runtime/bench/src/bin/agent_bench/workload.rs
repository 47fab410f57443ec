//! The synthetic reviews: real review texts, spread over products.

use clap::ValueEnum;
use serde_json::json;
use weir_engine::LogEvent;

/// What the benchmark's events are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyBy {
    /// The product: one key per product, its reviews in order.
    Product,
    /// The review: every event its own key.
    Review,
}

/// `n` reviews in the shape of the review-analysis input (`{"id", "review", "ts"}`), review
/// `i` about product `i % products`, texts cycling through the shared review data.
pub fn reviews(n: usize, products: usize, key_by: KeyBy) -> Vec<LogEvent> {
    let path = weir_tests::reviews_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let texts: Vec<String> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()?["review"].as_str().map(String::from))
        .collect();
    assert!(!texts.is_empty(), "no reviews in {}", path.display());
    (0..n)
        .map(|i| {
            let product = format!("product-{:04}", i % products.max(1));
            let key = match key_by {
                KeyBy::Product => product.clone(),
                KeyBy::Review => format!("review-{i:07}"),
            };
            LogEvent::json(key, &json!({"id": product, "review": texts[i % texts.len()], "ts": 1_763_700_000 + i}))
        })
        .collect()
}
