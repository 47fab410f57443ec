//! The redrive: a review the model never answers to schema is dead-lettered; the model is
//! fixed; the dead letter is requeued twice; its output appears once.

mod common;

use common::provider::{Mode, Provider};
use common::{TempDir, fails, ok, outputs, weir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_requeued_twice_after_the_fix_is_output_once() {
    let dir = TempDir::new("redrive");
    let store = dir.store("store");
    let file = dir.join("reviews.jsonl");
    std::fs::write(&file, "{\"id\": \"kettle\", \"review\": \"Leaks from the base.\"}\n").unwrap();
    ok(weir(&["ingest", file.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    let provider = Provider::start(Mode::Nonsense).await;
    let with_model = |args: &[&str]| {
        let mut command = weir(args);
        command.envs(provider.env());
        command
    };

    ok(with_model(&["run", "--store", &store]));
    assert!(outputs(&store).is_empty());
    let listed = ok(weir(&["dead-letters", "--store", &store, "--format", "jsonl"]));
    let letters: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 1, "{listed}");
    assert_eq!(letters[0]["key"], "kettle");
    assert!(letters[0]["reason"].as_str().unwrap().contains("rejected"), "{listed}");
    assert_eq!(letters[0]["payload"], "{\"id\":\"kettle\",\"review\":\"Leaks from the base.\"}");
    let table = ok(weir(&["dead-letters", "--store", &store]));
    assert!(table.starts_with("partition  event") && table.contains("(1 dead letters)"), "{table}");

    let refused = fails(weir(&["dead-letters", "--requeue", "--store", &store]));
    assert!(refused.contains("--all"), "a requeue names what it takes: {refused}");
    assert!(ok(weir(&["dead-letters", "--requeue", "--key", "lamp", "--store", &store])).contains(" 0 dead letters"));

    provider.set(Mode::Scoring);
    for _ in 0..2 {
        let requeued = ok(weir(&["dead-letters", "--requeue", "--reason", "rejected", "--store", &store]));
        assert!(requeued.contains(" 1 dead letters requeued"), "{requeued}");
    }
    ok(with_model(&["run", "--store", &store]));
    let outputs = outputs(&store);
    assert_eq!(outputs.len(), 1, "requeued twice, output once: {outputs:?}");
    assert_eq!(outputs[0]["key"], "kettle");
    // A third requeue, after the run, still adds nothing.
    ok(weir(&["dead-letters", "--requeue", "--all", "--store", &store]));
    ok(with_model(&["run", "--store", &store]));
    assert_eq!(common::outputs(&store).len(), 1);
}
