//! Storage stays bounded on AWS's deployed shape: ingest, process and collect run as their
//! binaries under the emulator, on the schedules `infra/modules/weir-agent` deploys, while
//! hours pass. Time is simulated: after each interval every object in the directory store is
//! made that much older, which is all collection reads of time besides manifests' creation
//! times (and outputs are kept for no time here, so those do not matter).
//!
//! The figures of `BENCHMARKS.md` ("Bounded storage") are this test's table:
//! `cargo nextest run -p weir-functions -E 'test(storage_stays_bounded)' --no-capture`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use weir_emulator::{Emulator, FunctionSpec};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::fake_openai::FakeOpenAi;

mod common;

use common::invoke;
use common::time::{age, files};

/// How long the simulation runs, and how often a batch of events arrives.
const SIMULATED_HOURS: u64 = 5;
const ARRIVAL_EVERY_MINUTES: u64 = 5;
const EVENTS_PER_ARRIVAL: usize = 40;
/// Live state: events are spread over this many keys, whatever the history.
const KEYS: usize = 25;

/// The default of a variable of the module, as written in its `variables.tf`.
fn module_default(variable: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/modules/weir-agent/variables.tf");
    let text = std::fs::read_to_string(&path).unwrap();
    let block = text.split(&format!("variable \"{variable}\" {{")).nth(1).unwrap_or_else(|| panic!("no {variable}"));
    let line = block.lines().find(|line| line.trim_start().starts_with("default")).expect("a default");
    line.split('=').nth(1).unwrap().trim().trim_matches('"').to_string()
}

/// Minutes between invocations of an EventBridge `rate(...)` expression.
fn rate_minutes(expression: &str) -> u64 {
    let inner = expression.strip_prefix("rate(").and_then(|e| e.strip_suffix(')')).expect("a rate expression");
    let (count, unit) = inner.split_once(' ').unwrap();
    let count: u64 = count.parse().unwrap();
    match unit.trim_end_matches('s') {
        "minute" => count,
        "hour" => count * 60,
        other => panic!("unit {other}"),
    }
}

/// Objects and bytes in the store.
fn usage(root: &Path) -> (usize, u64) {
    let all = files(root);
    (all.len(), all.iter().map(|f| f.metadata().unwrap().len()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stays_bounded_with_the_modules_collection_schedule() {
    let (process_every, collect_every) =
        (rate_minutes(&module_default("process_schedule")), rate_minutes(&module_default("collect_schedule")));
    assert!(ARRIVAL_EVERY_MINUTES.is_multiple_of(process_every) && collect_every.is_multiple_of(process_every));
    let model = FakeOpenAi::start(r#"{"score": 4}"#).await;
    let (store, config) = (TempDir::new(), TempDir::new());
    let agent_file = common::scorer_agent_file(config.path(), model.base_url());
    let store_url = format!("file://{}", store.path().display());
    // The engine's default grace (30 minutes) and the shortest log retention (1 hour);
    // outputs are kept no time, so that the plateau shows within the simulated hours.
    let settings = json!({"output_retention_ms": 0, "log_retention_ms": 3_600_000}).to_string();
    let function = |name: &str, binary: &str| {
        FunctionSpec::new(name, binary)
            .with_env("WEIR_STORE", &store_url)
            .with_env("WEIR_AGENT", "scorer")
            .with_timeout(Duration::from_secs(60))
    };
    let emulator = Emulator::builder()
        .function(function("ingest", env!("CARGO_BIN_EXE_weir-ingest")).with_env("WEIR_PARTITIONS", "4"))
        .function(
            function("process", env!("CARGO_BIN_EXE_weir-process"))
                .with_env("WEIR_AGENT_FILE", agent_file.display().to_string())
                .with_env("WEIR_ENGINE_SETTINGS", &settings)
                .with_env("FAKE_OPENAI_KEY", "fake-key"),
        )
        .function(function("collect", env!("CARGO_BIN_EXE_weir-collect")).with_env("WEIR_ENGINE_SETTINGS", &settings))
        .start()
        .await
        .unwrap();

    let mut hourly = Vec::new();
    let (mut events, mut deleted) = (0, 0);
    for minute in (0..SIMULATED_HOURS * 60).step_by(process_every as usize) {
        if minute.is_multiple_of(ARRIVAL_EVERY_MINUTES) {
            let records: Vec<Value> = (0..EVENTS_PER_ARRIVAL)
                .map(|i| json!({"key": format!("product-{}", (events + i) % KEYS), "review": format!("review {}", events + i)}))
                .collect();
            let request = json!({
                "requestContext": {"requestId": format!("arrival-{minute}"), "timeEpoch": 0, "http": {"method": "POST"}},
                "headers": {},
                "body": Value::Array(records).to_string(),
                "isBase64Encoded": false
            });
            assert_eq!(invoke(&emulator, "ingest", request).await["statusCode"], 200);
            events += EVENTS_PER_ARRIVAL;
            // Process's schedule: the invocations between arrivals find no backlog.
            let report = invoke(&emulator, "process", json!({})).await;
            assert_eq!(report["events"], EVENTS_PER_ARRIVAL, "{report}");
        }
        if minute.is_multiple_of(collect_every) {
            let report = invoke(&emulator, "collect", json!({})).await;
            deleted += report["deleted"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>();
        }
        if (minute + process_every).is_multiple_of(60) {
            let (objects, bytes) = usage(store.path());
            hourly.push((minute / 60 + 1, events, objects, bytes, deleted));
        }
        age(store.path(), Duration::from_secs(process_every * 60));
    }
    emulator.shutdown().await;

    println!("| simulated hour | events so far | objects | KiB | objects collected so far |");
    println!("|---|---|---|---|---|");
    for (hour, events, objects, bytes, deleted) in &hourly {
        println!("| {hour} | {events} | {objects} | {} | {deleted} |", bytes / 1024);
    }
    // Past the grace period and the log's retention, what is kept is live state, the
    // retained log and garbage younger than the grace period: it stops growing with history.
    // The level moves a little with the state's compaction cycle, nothing like the events.
    let objects = |hour: u64| hourly.iter().find(|row| row.0 == hour).unwrap().2;
    let later = (3..=SIMULATED_HOURS).map(objects).max().unwrap();
    assert!(4 * later <= 5 * objects(2), "storage still grows with history: {hourly:?}");
    assert!(hourly.last().unwrap().4 > 0, "nothing was collected: {hourly:?}");
    assert_eq!(model.requests(), events, "every event scored once");
}
