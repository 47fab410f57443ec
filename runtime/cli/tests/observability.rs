//! `weir trace`, `weir stats` and `weir cost` over a run of the sample reviews: the tree of
//! an event, totals that agree with the committed trace as DuckDB sums it, and a cost that
//! is the tokens at the price table's prices.

mod common;

use common::{TempDir, duckdb, ok, weir};
use serde_json::Value;

#[test]
fn trace_stats_and_cost_agree_with_the_committed_trace() {
    let dir = TempDir::new("observability");
    let store = dir.store("store");
    let reviews = dir.join("reviews.jsonl");
    let good: Vec<&str> = include_str!("../../../functions/review-analysis/data/reviews.jsonl")
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .collect();
    std::fs::write(&reviews, good.join("\n") + "\n").unwrap();
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store]));

    let tree = ok(weir(&["trace", "--store", &store, "--key", "trail-shoe"]));
    assert!(tree.starts_with("event ") && tree.contains("of key trail-shoe"), "{tree}");
    for step in ["├── action analyze", "│   └── model reviewer", "└── action report"] {
        assert!(tree.contains(step), "{step} in:\n{tree}");
    }

    let stats: Value = serde_json::from_str(&ok(weir(&["stats", "--store", &store, "--format", "json"]))).unwrap();
    assert_eq!(stats["events"], good.len());
    assert_eq!(stats["dead_letters"], 0);
    let export = dir.join("traces.parquet");
    ok(weir(&["trace", "--store", &store, "--export", export.to_str().unwrap()]));
    let sums = duckdb(&format!(
        "select sum(input_tokens), sum(output_tokens), count(*) filter (where kind = 'model') from read_parquet('{}')",
        export.display()
    ));
    let [input, output, calls]: [u64; 3] =
        sums.trim().split('|').map(|n| n.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!((stats["input_tokens"].as_u64(), stats["output_tokens"].as_u64()), (Some(input), Some(output)));

    let model = stats["models"].as_object().unwrap().keys().next().unwrap().clone();
    let prices = dir.join("prices.json");
    std::fs::write(&prices, format!(r#"{{"{model}": {{"input_per_million": 2.0, "output_per_million": 8.0}}}}"#))
        .unwrap();
    let cost = ok(weir(&["cost", "--store", &store, "--prices", prices.to_str().unwrap()]));
    let expected = (input as f64 * 2.0 + output as f64 * 8.0) / 1e6;
    assert!(cost.contains(&format!("model cost: {expected:.6}")), "{expected:.6} in:\n{cost}");
    assert!(cost.contains(&format!("{calls}")), "{cost}");
    let unpriced = ok(weir(&["cost", "--store", &store]));
    assert!(unpriced.contains("give their prices with --prices"), "{unpriced}");
}
