//! `weir ingest`, then `weir run` killed with SIGKILL at seeded random moments and run
//! again until done: every review is output exactly once, and the notify webhook sees one
//! distinct idempotency key per notified review (repeats carry the same key); the trace,
//! read by DuckDB, holds each review's actions and calls once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{TempDir, duckdb, ok, outputs, shared_reviews, weir};

/// Reviews ingested: enough for many batches.
const REVIEWS: usize = 300;
/// `weir run`s killed before one is let finish.
const KILLS: usize = 4;

/// Every request's `Idempotency-Key` and body, in arrival order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP endpoint on 127.0.0.1 recording every notification.
async fn webhook() -> (String, Received) {
    let received: Received = Arc::default();
    let record = received.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
                record.lock().unwrap().push((key.to_string(), body));
                axum::Json(serde_json::json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_killed_at_random_moments_output_every_review_once_and_notify_once_per_key() {
    let seed = std::env::var("WEIR_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (set WEIR_CRASH_SEED to repeat)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = TempDir::new("crash");
    let store = dir.store("store");
    let reviews = shared_reviews(&dir, REVIEWS);
    let ingested = ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    assert!(ingested.starts_with(&format!("ingested {REVIEWS} records")), "{ingested}");

    let (url, received) = webhook().await;
    // Small batches, so that a kill lands between commits as well as within one.
    let run = || {
        let mut command = weir(&["run", "--store", &store, "--engine-settings", r#"{"max_batch_events": 8}"#]);
        command.env("WEIR_NOTIFY_URL", &url).stdout(Stdio::null()).stderr(Stdio::null());
        tokio::process::Command::from(command)
    };
    for _ in 0..KILLS {
        let mut child = run().spawn().expect("weir run starts");
        tokio::time::sleep(Duration::from_millis(rng.u64(100..2_000))).await;
        child.kill().await.expect("SIGKILL"); // kill() is SIGKILL on Unix.
    }
    assert!(run().status().await.unwrap().success(), "the last run finishes");

    let outputs = outputs(&store);
    let events: BTreeSet<(u64, String)> =
        outputs.iter().map(|o| (o["partition"].as_u64().unwrap(), o["event"].as_str().unwrap().to_string())).collect();
    assert_eq!(outputs.len(), REVIEWS, "one output per review");
    assert_eq!(events.len(), REVIEWS, "no review twice");

    let notified = outputs.iter().filter(|o| o["output"]["shipping_complaint"] == true).count();
    assert!(notified > 0, "some of the reviews complain about shipping");
    let received = received.lock().unwrap().clone();
    let mut bodies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (key, body) in &received {
        assert!(!key.is_empty(), "every notification carries an Idempotency-Key");
        bodies.entry(key).or_default().insert(body);
    }
    assert_eq!(bodies.len(), notified, "one distinct key per notified review ({} requests)", received.len());
    for (key, bodies) in &bodies {
        assert_eq!(bodies.len(), 1, "a repeat under key {key} is the same notification: {bodies:?}");
    }

    // The committed trace, exported and read by DuckDB: each review's handling once, each of
    // its actions once, and a notify tool span per notified review. (A glob over the store's
    // trace folders would also read the files of the killed runs' commits that never
    // happened, until collection takes them.)
    let traces = dir.join("traces.parquet");
    ok(weir(&["trace", "--store", &store, "--export", traces.to_str().unwrap()]));
    let traces = traces.display();
    let row = duckdb(&format!(
        "select count(*) filter (where kind = 'event'),          count(distinct (partition, event_segment, event_index)) filter (where kind = 'event'),          count(*) filter (where kind = 'action' and name = 'analyze'),          count(*) filter (where kind = 'action' and name = 'report'),          count(*) filter (where kind = 'tool' and name = 'notify_shipping_manager'),          count(*) filter (where kind = 'model' and input_tokens > 0) >= {REVIEWS}          from read_parquet('{traces}')"
    ));
    let n = REVIEWS.to_string();
    let expected = [n.as_str(), &n, &n, &n, &notified.to_string(), "True"].join("|");
    assert_eq!(row.trim(), expected, "events, distinct events, analyze, report, notifications, model calls");
}
