//! The README's first command: `weir demo` runs the review-analysis agent through the
//! Lambda emulator on a fresh store, and a second run prints the same and adds nothing;
//! also on S3 (moto). `weir demo` builds the function binaries next to `weir` if missing.

mod common;

use common::{TempDir, ok, outputs, weir};

/// Well-formed lines of the sample: each is analysed once.
fn sample_reviews() -> usize {
    let sample = include_str!("../../../functions/review-analysis/data/reviews.jsonl");
    sample.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count()
}

fn check_summary(summary: &str) {
    assert!(summary.contains("(built-in offline model) - keyword rules, not an LLM"), "{summary}");
    assert!(summary.contains(&format!("{} reviews analysed", sample_reviews())), "{summary}");
    assert!(summary.contains("refused by ingest: 1\n  line 17: "), "the malformed line: {summary}");
    let header = summary.lines().find(|l| l.starts_with("product")).unwrap();
    assert!(header.contains("avg score") && header.contains("shipping complaints"), "{summary}");
}

#[test]
fn demo_runs_on_a_fresh_directory_then_reruns_without_adding_anything() {
    let dir = TempDir::new("demo");
    let first = ok(weir(&["demo"]).current_dir(dir.path()));
    check_summary(&first);
    assert!(dir.join("weir-data/log").is_dir(), "the default store is ./weir-data");
    let store = dir.store("weir-data");
    assert_eq!(outputs(&store).len(), sample_reviews());

    let second = ok(weir(&["demo"]).current_dir(dir.path()));
    assert_eq!(second, first, "a rerun prints the same summary");
    assert_eq!(outputs(&store).len(), sample_reviews(), "and adds nothing");
}

#[test]
fn demo_runs_on_s3() {
    let moto = weir_tests::moto::shared();
    let url = moto.store_url("demo");
    let first = ok(weir(&["demo", "--store", &url]).envs(moto.env()));
    check_summary(&first);
    let second = ok(weir(&["demo", "--store", &url]).envs(moto.env()));
    assert_eq!(second, first);
}
