//! Every `weir` subcommand, run as a user would: help, ingest of each file format, run,
//! outputs in each format, inspect, gc, and one-line errors.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use common::{TempDir, duckdb, fails, ok, outputs, weir};

/// The review-analysis sample's well-formed reviews: (product, review).
fn sample_reviews() -> Vec<(String, String)> {
    let sample = include_str!("../../../functions/review-analysis/data/reviews.jsonl");
    sample
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["review"].as_str().unwrap().to_string()))
        .collect()
}

fn write_jsonl(dir: &TempDir) -> std::path::PathBuf {
    let lines: Vec<String> = sample_reviews()
        .iter()
        .map(|(id, review)| serde_json::json!({"id": id, "review": review}).to_string())
        .collect();
    let path = dir.join("reviews.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn write_csv(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("reviews.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(["id", "review"]).unwrap();
    for (id, review) in sample_reviews() {
        writer.write_record([id, review]).unwrap();
    }
    writer.flush().unwrap();
    path
}

fn write_parquet(dir: &TempDir) -> std::path::PathBuf {
    let reviews = sample_reviews();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(reviews.iter().map(|(id, _)| Some(id.as_str())).collect::<StringArray>())),
        ("review", Arc::new(reviews.iter().map(|(_, r)| Some(r.as_str())).collect::<StringArray>())),
        ("ts", Arc::new((0..reviews.len() as i64).collect::<Int64Array>())),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let path = dir.join("reviews.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    path
}

#[test]
fn every_command_has_help() {
    for command in [
        &[][..],
        &["demo"],
        &["dev"],
        &["ingest"],
        &["run"],
        &["outputs"],
        &["inspect"],
        &["gc"],
        &["kb"],
        &["kb", "add"],
    ] {
        let help = ok(weir(command).arg("--help"));
        assert!(help.contains("Usage: weir"), "{command:?}: {help}");
    }
}

#[test]
fn each_file_format_is_ingested_run_and_output_once() {
    let dir = TempDir::new("formats");
    let expected = sample_reviews().len();
    for (name, file) in [("jsonl", write_jsonl(&dir)), ("csv", write_csv(&dir)), ("parquet", write_parquet(&dir))] {
        let store = dir.store(name);
        let file = file.to_str().unwrap();
        let ingested = ok(weir(&["ingest", file, "--key-field", "/id", "--partitions", "4", "--store", &store]));
        assert!(ingested.starts_with(&format!("ingested {expected} records")), "{name}: {ingested}");
        let run = ok(weir(&["run", "--store", &store]));
        assert!(run.contains(&format!("{expected} events")), "{name}: {run}");

        // The same file again adds nothing, so there is nothing to run.
        ok(weir(&["ingest", file, "--key-field", "/id", "--store", &store]));
        assert!(ok(weir(&["run", "--store", &store])).contains(": 0 events"), "{name}");

        let outputs = outputs(&store);
        assert_eq!(outputs.len(), expected, "{name}");
        for output in &outputs {
            let score = output["output"]["score"].as_u64().unwrap();
            assert!((1..=5).contains(&score), "{name}: {output}");
            assert_eq!(output["key"], output["output"]["id"], "{name}: keyed by product");
        }
    }
}

#[test]
fn outputs_print_as_a_table_and_write_parquet_that_duckdb_reads() {
    let dir = TempDir::new("outputs");
    let store = dir.store("store");
    ok(weir(&["ingest", write_jsonl(&dir).to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store]));
    let expected = sample_reviews().len();

    let table = ok(weir(&["outputs", "--format", "table", "--store", &store]));
    assert!(table.lines().next().unwrap().split_whitespace().eq(["partition", "event", "key", "output"]), "{table}");
    assert!(table.contains(&format!("({expected} outputs)")), "{table}");

    let parquet = dir.join("outputs.parquet");
    ok(weir(&["outputs", "--format", "parquet", "--out", parquet.to_str().unwrap(), "--store", &store]));
    let rows = duckdb(&format!(
        "select count(*), count(distinct (partition, commit_seq, event_segment, event_index)), \
         min(json_extract(payload, '$.score')::int), max(json_extract(payload, '$.score')::int) from read_parquet('{}')",
        parquet.display()
    ));
    let [count, distinct, min, max]: [u64; 4] =
        rows.trim().split('|').map(|v| v.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!((count, distinct), (expected as u64, expected as u64));
    assert!(1 <= min && max <= 5, "{rows}");
}

#[test]
fn inspect_shows_partitions_manifests_state_journal_and_dead_letters_and_gc_reports() {
    let dir = TempDir::new("inspect");
    let store = dir.store("store");
    // A record without a review cannot be rendered into the prompt: a dead letter.
    let file = dir.join("reviews.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"kettle\", \"review\": \"Leaks from the base.\"}\n{\"id\": \"lamp\", \"stars\": 2}\n",
    )
    .unwrap();
    ok(weir(&["ingest", file.to_str().unwrap(), "--key-field", "/id", "--partitions", "2", "--store", &store]));
    ok(weir(&["run", "--store", &store, "--engine-settings", r#"{"max_attempts": 2, "retry_backoff_ms": 1}"#]));

    let inspect = ok(weir(&["inspect", "--manifests", "--key", "kettle", "--store", &store]));
    assert!(inspect.contains("log    2 partitions"), "{inspect}");
    assert!(inspect.contains("partition 0:") && inspect.contains("partition 1:"), "{inspect}");
    assert!(inspect.contains("batch"), "manifests are listed: {inspect}");
    assert!(inspect.contains("  state: none"), "review analysis keeps no memory: {inspect}");
    assert!(inspect.contains("dead letters: 1\n  partition"), "{inspect}");
    assert!(inspect.contains("key lamp"), "{inspect}");

    // A batch this quick commits before its journal's group commit: write what an
    // interrupted attempt would have left (docs/storage-format.md, "The action journal").
    let partition: u32 =
        inspect.split("key kettle (partition ").nth(1).unwrap().split(')').next().unwrap().parse().unwrap();
    let journal =
        dir.join(&format!("store/agents/review-analysis/p{partition:05}/journal/00000000000000000000-000000"));
    std::fs::create_dir_all(&journal).unwrap();
    let entry = serde_json::json!({
        "event": {"segment": 0, "index": 0}, "key": "kettle", "step": 0, "name": "chat", "outcome": {"done": {"score": 2}}
    });
    std::fs::write(journal.join("attempt-000000.jnl"), format!("{entry}\n")).unwrap();
    // Older than collection's grace period, as if written an hour ago.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(journal.join("attempt-000000.jnl"))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    let with_journal = ok(weir(&["inspect", "--key", "kettle", "--store", &store]));
    assert!(
        with_journal.contains("  journal: 1 entries\n    event 0:0 step 0 `chat`: {\"done\":{\"score\":2}}"),
        "{with_journal}"
    );

    let refused = fails(weir(&["gc", "--grace-secs", "0", "--store", &store]));
    assert!(refused.contains("gc_grace_ms=0 is below max_invocation_ms=900000"), "{refused}");
    let gc = ok(weir(&["gc", "--store", &store]));
    assert!(
        gc.starts_with("gc: deleted ") && gc.contains(" 1 journal files"),
        "the committed batch's journal goes: {gc}"
    );
    let after = ok(weir(&["inspect", "--key", "kettle", "--store", &store]));
    assert!(after.contains("  journal: 0 entries"), "{after}");
    assert_eq!(outputs(&store).len(), 1, "collection keeps the outputs");
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = TempDir::new("errors");
    let store = dir.store("store");
    let missing = dir.join("missing.jsonl");
    let error = fails(weir(&["ingest", missing.to_str().unwrap(), "--store", &store]));
    assert_eq!(error, format!("error: {}: No such file or directory (os error 2)", missing.display()));

    let error = fails(weir(&["run", "--store", "ftp://x"]));
    assert_eq!(
        error,
        "error: invalid input: store url `ftp://x`: unknown scheme `ftp`; use memory://, file:///dir or s3://bucket/prefix"
    );

    let malformed = dir.join("malformed.jsonl");
    std::fs::write(&malformed, "{\"id\": \"a\", \"review\": \"ok\"}\n{\"id\": \"b\", \"review\": \n").unwrap();
    let strict = |file: &std::path::Path| {
        weir(&["ingest", file.to_str().unwrap(), "--key-field", "/id", "--strict", "--store", &store])
    };
    let error = fails(strict(&malformed));
    assert!(error.starts_with(&format!("error: {}, line 2: not JSON: ", malformed.display())), "{error}");

    let keyless = dir.join("keyless.jsonl");
    std::fs::write(&keyless, "{\"review\": \"no id\"}\n").unwrap();
    let error = fails(strict(&keyless));
    assert_eq!(error, format!("error: {}, line 1: no key at `/id`", keyless.display()));

    let error = fails(weir(&["run", "--store", &store]));
    assert!(error.starts_with("error: no event log in file://"), "nothing was stored: {error}");

    let error = fails(weir(&["run", "--agent", "nobody", "--store", &store]));
    assert!(error.starts_with("error: agent `nobody`: no such built-in agent"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declarative_agent_file_is_run_by_its_name() {
    // An Ollama stand-in on 127.0.0.1 that always answers the same.
    let app = axum::Router::new().route(
        "/api/chat",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"model": "tiny", "message": {"role": "assistant", "content": "footwear"}, "done": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = TempDir::new("declarative");
    let store = dir.store("store");
    let agent = dir.join("triage.yaml");
    std::fs::write(
        &agent,
        format!(
            "name: triage\nkind: workflow\nmodels:\n  default: {{provider: ollama, base_url: \"{base_url}\", options: {{model: tiny}}}}\n\
             steps:\n  - name: category\n    prompt: \"One word for the category of: {{review}}\"\n"
        ),
    )
    .unwrap();
    let agent = agent.to_str().unwrap();
    ok(weir(&["ingest", write_jsonl(&dir).to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    let run = ok(weir(&["run", "--agent", agent, "--store", &store]));
    assert!(run.starts_with(&format!("triage: {} events", sample_reviews().len())), "{run}");
    let outputs = ok(weir(&["outputs", "--agent", agent, "--store", &store]));
    assert_eq!(outputs.lines().count(), sample_reviews().len(), "{outputs}");
    assert!(outputs.contains("footwear"), "{outputs}");
    assert!(dir.join("store/agents/triage").is_dir(), "commits under the declared name");

    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "name: broken\nkind: workflow\nsteps: 3\n").unwrap();
    let error = fails(weir(&["run", "--agent", broken.to_str().unwrap(), "--store", &store]));
    assert!(error.starts_with(&format!("error: {}: line 3: field `steps`", broken.display())), "{error}");
}
