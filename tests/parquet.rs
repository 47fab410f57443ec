//! The log's segments and the committed outputs and dead letters are Parquet that DuckDB
//! reads directly (DuckDB from `.ci/venv`, installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use weir_engine::{Engine, EngineSettings, EventLog, LogEvent, Storage};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::{TestAgent, review_events};

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("WEIR_PYTHON") {
        return python.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python");
    assert!(venv.exists(), "no {}: run `.ci/run`, which installs DuckDB there", venv.display());
    venv
}

fn duckdb(query: &str) -> String {
    let script = format!("import duckdb\nfor row in duckdb.sql({query:?}).fetchall():\n    print(*row, sep='|')");
    let out = Command::new(python()).args(["-c", &script]).output().expect("python runs");
    assert!(out.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_segments_outputs_and_dead_letters() {
    let dir = TempDir::new();
    let storage = Storage::from_url(&format!("file://{}", dir.path().display())).unwrap();
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let mut events = review_events(100, false);
    events.push(LogEvent::new("bad", "{oops"));
    log.append("b0", &events[..50]).await.unwrap();
    log.append("b1", &events[50..]).await.unwrap();
    let settings = EngineSettings { max_batch_events: 30, ..Default::default() };
    let engine = Engine::builder(storage, "reviews", Arc::new(TestAgent::new())).settings(settings).build().unwrap();
    engine.drain().await.unwrap();

    let root = dir.path().display();
    let segments = duckdb(&format!(
        "select count(*), count(distinct key), min(octet_length(payload)) > 0 from read_parquet('{root}/log/p00000/seg/*.parquet')"
    ));
    let keys: std::collections::HashSet<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(segments, format!("101|{}|True", keys.len()));
    let outputs = duckdb(&format!(
        "select count(*), count(distinct (event_segment, event_index)), sum((payload::json->>'count')::int > 0)::int \
         from read_parquet('{root}/agents/reviews/p00000/out/*.parquet')"
    ));
    assert_eq!(outputs, "100|100|100");
    let dead = duckdb(&format!(
        "select key, reason like 'payload is not JSON%', decode(payload) \
         from read_parquet('{root}/agents/reviews/p00000/dead/*.parquet')"
    ));
    assert_eq!(dead, "bad|True|{oops");
}
