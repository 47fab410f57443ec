//! `weir trace`, `weir stats` and `weir cost` over a run of the sample reviews: the tree of
//! an event, totals that agree with the committed trace as DuckDB sums it, a model cost that
//! is the tokens at the price table's prices, and an infrastructure cost that is the run's
//! requests at AWS's.

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
    assert!(unpriced.contains("infrastructure cost: "), "{unpriced}");
    infrastructure_cost_is_the_runs_requests(&dir, &store);
}

/// With S3 PUTs at 1 each and everything else free, the infrastructure cost is the run's
/// PUTs; and every object the run left in the agent's directory took one of them.
fn infrastructure_cost_is_the_runs_requests(dir: &TempDir, store: &str) {
    let aws_prices = dir.join("aws-prices.yaml");
    let free_but_puts = "s3: {put_per_thousand: 1000, list_per_thousand: 0, get_per_thousand: 0}\n\
                         lambda: {gb_second: 0, per_million_requests: 0}\n";
    std::fs::write(&aws_prices, free_but_puts).unwrap();
    let cost = ok(weir(&["cost", "--store", store, "--aws-prices", aws_prices.to_str().unwrap()]));
    let run = cost.lines().find(|l| l.starts_with("run ")).unwrap_or_else(|| panic!("a row of the run in:\n{cost}"));
    let cells: Vec<&str> = run.split_whitespace().collect();
    let (invocations, puts, gets) = (cells[1], cells[3].parse::<u64>().unwrap(), cells[4].parse::<u64>().unwrap());
    assert_eq!(invocations, "1", "{cost}");
    assert_eq!(cells[10], "1", "`weir run` is its environment's first invocation: {cost}");
    assert!(gets > 0, "{cost}");
    assert!(cost.contains(&format!("infrastructure cost: {puts}.00000000 (S3 requests {puts}.00000000,")), "{cost}");

    fn files(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).map(|p| if p.is_dir() { files(&p) } else { 1 }).sum()
    }
    let written = files(&dir.join("store").join("agents"));
    assert!(puts >= written, "{puts} PUTs for {written} objects:\n{cost}");

    let wrong = dir.join("wrong-prices.yaml");
    std::fs::write(&wrong, "s3: {puts: 1}\n").unwrap();
    let refused = common::fails(weir(&["cost", "--store", store, "--aws-prices", wrong.to_str().unwrap()]));
    assert!(refused.contains("not an AWS price table") && refused.contains("puts"), "{refused}");
}
