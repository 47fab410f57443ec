//! Ingest, process and dispatch under the Lambda emulator over the sample reviews, on a local
//! directory and on moto's S3: the webhook sink receives every analysis once (a rerun
//! redelivers nothing new), and DuckDB reads the committed Parquet outputs.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use common::{TempDir, duckdb, ok, weir};

/// Deliveries by idempotency key, as a webhook that deduplicates on it would count them.
type Deliveries = Arc<Mutex<BTreeMap<String, (usize, String)>>>;

async fn webhook() -> (String, Deliveries) {
    let delivered: Deliveries = Arc::default();
    let record = delivered.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let mut record = record.lock().unwrap();
                let entry = record.entry(key).or_insert((0, body.clone()));
                entry.0 += 1;
                assert_eq!(entry.1, body, "a redelivery carries the same body");
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, delivered)
}

fn sample_reviews() -> usize {
    let sample = include_str!("../../../functions/review-analysis/data/reviews.jsonl");
    sample.lines().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()).count()
}

/// Runs the demo twice with a webhook sink and checks deliveries and the Parquet outputs.
async fn end_to_end(dir: &TempDir, store: &str, env: Vec<(String, String)>) {
    let (sink, delivered) = webhook().await;
    for _ in 0..2 {
        let mut command = weir(&["demo", "--store", store, "--sink", &sink]);
        command.current_dir(dir.path()).envs(env.clone());
        let summary = tokio::task::spawn_blocking(move || ok(command)).await.unwrap();
        assert!(summary.contains(&format!("{} reviews analysed", sample_reviews())), "{summary}");
    }
    let delivered = delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), sample_reviews(), "one idempotency key per analysis");
    for (_, body) in delivered.values() {
        let analysis: serde_json::Value = serde_json::from_str(body).unwrap();
        let score = analysis["payload"]["score"].as_u64().or(analysis["score"].as_u64()).unwrap_or(0);
        assert!((1..=5).contains(&score), "{body}");
    }

    let parquet = dir.join("outputs.parquet");
    let mut export = weir(&["outputs", "--store", store, "--agent", "review-analysis", "--format", "parquet", "--out"]);
    ok(export.arg(&parquet).envs(env));
    let query = format!(
        "select count(*), count(distinct (partition, event_segment, event_index)), \
         min(cast(json_extract(payload, '$.score') as integer)), max(cast(json_extract(payload, '$.score') as integer)), \
         sum(case when json_extract(payload, '$.shipping_complaint') = 'true' then 1 else 0 end) \
         from read_parquet('{}')",
        parquet.display()
    );
    let row = duckdb(&query);
    let fields: Vec<&str> = row.trim().split('|').collect();
    let n = sample_reviews().to_string();
    assert_eq!(&fields[..2], [n.as_str(), n.as_str()], "each review once: {row}");
    assert!(fields[2].parse::<u8>().unwrap() >= 1 && fields[3].parse::<u8>().unwrap() <= 5, "{row}");
    assert_eq!(fields[4], "3", "three shipping complaints in the sample: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_process_and_dispatch_on_a_directory() {
    let dir = TempDir::new("e2e-dir");
    let store = dir.store("store");
    end_to_end(&dir, &store, Vec::new()).await;
    // The raw files are Parquet too: DuckDB reads them where they lie.
    let files = format!("{}/agents/review-analysis/p*/out/*.parquet", dir.join("store").display());
    let raw =
        duckdb(&format!("select count(distinct (partition, event_segment, event_index)) from read_parquet('{files}')"));
    assert_eq!(raw.trim(), sample_reviews().to_string());
    // `weir outputs --format parquet` writes the schema of the committed files.
    let columns =
        |from: &str| duckdb(&format!("select column_name from (describe select * from read_parquet('{from}'))"));
    assert_eq!(columns(&dir.join("outputs.parquet").display().to_string()), columns(&files));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_process_and_dispatch_on_s3() {
    let moto = weir_tests::moto::shared();
    let dir = TempDir::new("e2e-s3");
    let env = moto.env();
    end_to_end(&dir, &moto.store_url("e2e"), env).await;
}
