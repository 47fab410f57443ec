//! A model provider that refuses every request for a while: `weir run`, run again as a
//! schedule would, dead-letters nothing during the outage and waits (exit status 75); once
//! the provider is back, every review is output exactly once. Each run's circuit breaker
//! keeps the requests made during the outage far fewer than the events that waited.

mod common;

use common::provider::{Mode, Provider};
use common::{TempDir, ok, outputs, shared_reviews, weir};

/// Reviews ingested.
const REVIEWS: usize = 1000;
/// `weir run`s during the outage.
const RUNS_IN_OUTAGE: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_dead_letters_nothing_and_every_review_is_output_once_after_it() {
    let dir = TempDir::new("outage");
    let store = dir.store("store");
    let reviews = shared_reviews(&dir, REVIEWS);
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    let provider = Provider::start(Mode::Down).await;
    let run = || {
        let mut command = weir(&["run", "--store", &store]);
        command.envs(provider.env());
        tokio::process::Command::from(command).output()
    };

    for n in 0..RUNS_IN_OUTAGE {
        let out = run().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(75), "run {n} waits: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("waiting, nothing lost"), "{stdout}");
    }
    let refused = provider.refused();
    eprintln!("{refused} requests refused during the outage, {REVIEWS} reviews waiting");
    assert!(refused > 0, "the runs asked the provider");
    assert!(refused * 3 < REVIEWS, "{refused} requests for {REVIEWS} waiting reviews: the breaker held them back");
    assert!(outputs(&store).is_empty(), "nothing committed during the outage");

    provider.set(Mode::Scoring);
    let out = run().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done = String::from_utf8_lossy(&out.stdout);
    assert!(done.contains(" 0 dead letters"), "{done}");
    let outputs = outputs(&store);
    let mut events: Vec<String> = outputs.iter().map(|o| format!("{}/{}", o["partition"], o["event"])).collect();
    events.sort();
    events.dedup();
    assert_eq!((outputs.len(), events.len()), (REVIEWS, REVIEWS), "each review once");
    let inspect = ok(weir(&["inspect", "--store", &store]));
    assert!(inspect.contains("dead letters: 0"), "{inspect}");
}
