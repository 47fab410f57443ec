//! The event-driven path: an event sent to ingest reaches the committed outputs and the sink
//! without waiting for a schedule (ingest invokes process for the partitions it appended to,
//! process invokes dispatch for those it committed outputs to), with ingest, process (a
//! declarative agent against an instant fake model) and dispatch as their binaries under
//! the emulator, on a directory and on moto's S3. No schedule runs.
//!
//! The latencies of `BENCHMARKS.md` ("Event-driven latency") are this test's table:
//! `cargo nextest run -p weir-functions -E 'test(reaches_the_sink)' --no-capture`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use common::invoke;
use serde_json::json;
use weir_engine::{CommittedReader, Storage};
use weir_tests::backends::moto_storage;
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::fake_openai::FakeOpenAi;

/// Events sent, one at a time.
const EVENTS: usize = 40;
const PARTITIONS: u32 = 2;
/// How long the test waits for one event's way through, before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// A webhook on 127.0.0.1 noting when each delivery id first arrived.
async fn webhook() -> (String, Arc<Mutex<HashMap<String, Instant>>>) {
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let record = arrivals.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        record.lock().unwrap().entry(key).or_insert_with(Instant::now);
        async { axum::http::StatusCode::OK }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, arrivals)
}

/// Outputs committed over all partitions, as their heads count them.
async fn committed(storage: &Storage) -> u64 {
    let mut outputs = 0;
    for partition in 0..PARTITIONS {
        let reader = CommittedReader::new(storage.clone(), "scorer", partition).unwrap();
        outputs += reader.head().await.unwrap().map_or(0, |head| head.totals().outputs);
    }
    outputs
}

/// Milliseconds at the quantile `q` of `samples`.
fn quantile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
}

/// Sends the events one at a time through the functions on `store_url`; each one's time from
/// the ingest invocation to its committed output and to its arrival at the sink.
async fn latencies(storage: Storage, store_url: &str, aws_env: &[(String, String)]) -> (Vec<Duration>, Vec<Duration>) {
    let model = FakeOpenAi::start(r#"{"score": 4}"#).await;
    let config = TempDir::new();
    let agent_file = common::scorer_agent_file(config.path(), model.base_url());
    let (sink, arrivals) = webhook().await;
    let emulator = common::scorer_functions(store_url, PARTITIONS, &agent_file, &sink, aws_env, &[]).await;

    let (mut to_commit, mut to_sink) = (Vec::new(), Vec::new());
    for n in 0..EVENTS {
        let record = json!({"key": format!("product-{n}"), "review": format!("review {n}")});
        let request = json!({
            "requestContext": {"requestId": format!("event-{n}"), "timeEpoch": 0, "http": {"method": "POST"}},
            "headers": {},
            "body": record.to_string(),
            "isBase64Encoded": false
        });
        let sent = Instant::now();
        assert_eq!(invoke(&emulator, "ingest", request).await["statusCode"], 200);
        let through = async {
            while committed(&storage).await <= n as u64 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let commit = sent.elapsed();
            while arrivals.lock().unwrap().len() <= n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (commit, sent.elapsed())
        };
        let (commit, sink) =
            tokio::time::timeout(PATIENCE, through).await.unwrap_or_else(|_| panic!("event {n} stuck"));
        to_commit.push(commit);
        to_sink.push(sink);
    }
    emulator.shutdown().await;
    assert_eq!(arrivals.lock().unwrap().len(), EVENTS, "each event's output delivered once");
    assert_eq!(model.requests(), EVENTS, "each event scored once");
    (to_commit, to_sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_the_sink_through_the_triggers_without_a_schedule() {
    let dir = TempDir::new();
    let moto = weir_tests::moto::shared();
    let credentials = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
    ];
    let directory = format!("file://{}", dir.path().display());
    let prefix = format!("latency-{:08x}", fastrand::u32(..));
    let backends = [
        // Credentials, as Lambda gives every function: the triggers' Invoke calls are signed.
        ("directory", Storage::from_url(&directory).unwrap(), directory, credentials),
        ("s3 (moto)", moto_storage(&prefix), moto.store_url(&prefix), moto.env()),
    ];
    let mut rows = Vec::new();
    for (backend, storage, store_url, aws_env) in backends {
        let (commit, sink) = latencies(storage, &store_url, &aws_env).await;
        rows.push(format!(
            "| {backend} | {EVENTS} | {:.0} | {:.0} | {:.0} | {:.0} |",
            quantile(&commit, 0.5),
            quantile(&commit, 0.99),
            quantile(&sink, 0.5),
            quantile(&sink, 0.99)
        ));
    }
    println!("| store | events | ingest to committed output p50 ms | p99 ms | ingest to sink p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    rows.iter().for_each(|row| println!("{row}"));
}
