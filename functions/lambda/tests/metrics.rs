//! The functions' metrics, as CloudWatch would extract them: ingest, process (a declarative
//! agent against a fake OpenAI-compatible model) and dispatch run as their binaries under
//! the emulator, and every line they print on standard output is either a log line or an
//! Embedded Metric Format document that the validator of `common/emf.rs` (written from the
//! specification) accepts; the extracted values are what happened. In-process tests cover
//! what the run does not reach: a refused record, an open breaker, a waiting partition.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use common::emf::{Datum, extract, written_by_aws_library};
use common::{Recorder, invoke};
use serde_json::{Value, json};
use weir_emulator::{Emulator, LogLine, LogStream};
use weir_engine::{Clock, Engine, EngineSettings, EventLog, LogEvent, Storage, SystemClock};
use weir_functions::config::{DispatchConfig, FromVariables, IngestConfig, ProcessConfig};
use weir_functions::dispatch::DispatchFunction;
use weir_functions::ingest::IngestFunction;
use weir_functions::metrics::Metrics;
use weir_functions::process::ProcessFunction;
use weir_functions::sink::{Sink, SinkTarget, WebhookSink};
use weir_functions::work::{Deadline, PartitionOutcome, PartitionRequest};
use weir_functions::{AwsClients, LambdaInvoker};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::fake_openai::FakeOpenAi;

/// How long the test waits for the functions, before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);
const PARTITIONS: u32 = 2;
/// Reviews sent, each scored by the model once.
const REVIEWS: usize = 6;

#[test]
fn the_validator_follows_the_specification() {
    common::emf::check_the_validator();
}

/// Every line the functions printed on standard output, kept as they come.
fn collect_stdout(emulator: &Emulator) -> Arc<Mutex<Vec<LogLine>>> {
    let lines: Arc<Mutex<Vec<LogLine>>> = Arc::default();
    let (kept, mut receiver) = (lines.clone(), emulator.subscribe_logs());
    tokio::spawn(async move {
        while let Ok(line) = receiver.recv().await {
            if line.stream == LogStream::Stdout {
                kept.lock().unwrap().push(line);
            }
        }
    });
    lines
}

/// The metrics of every EMF line in `lines`; panics on a document CloudWatch would refuse.
fn metrics_of(lines: &[LogLine]) -> Vec<Datum> {
    let mut data = Vec::new();
    for line in lines {
        match extract(&line.text) {
            Some(Ok(extracted)) => data.extend(extracted),
            Some(Err(why)) => panic!("{}: CloudWatch would refuse this document ({why}): {}", line.function, line.text),
            None => {}
        }
    }
    data
}

/// The sum of `metric`'s values under exactly `dimensions`.
fn sum(data: &[Datum], metric: &str, dimensions: &[(&str, &str)]) -> f64 {
    data.iter().filter(|d| d.name == metric && d.has_dimensions(dimensions)).flat_map(|d| d.values.clone()).sum()
}

fn of(function: &'static str) -> [(&'static str, &'static str); 2] {
    [("Agent", "scorer"), ("Function", function)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_emf_lines_parse_as_cloudwatch_parses_them_and_count_what_happened() {
    let store = TempDir::new();
    let store_url = format!("file://{}", store.path().display());
    let model = FakeOpenAi::start(r#"{"score": 4}"#).await;
    let config = TempDir::new();
    let agent_file = common::scorer_agent_file(config.path(), model.base_url());
    let sink = Recorder::start(StatusCode::OK).await;
    // Credentials, as Lambda gives every function: the triggers' Invoke calls are signed.
    let credentials = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    let credentials: Vec<(String, String)> = credentials.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // WEIR_METRICS is not set: under the emulator, as on Lambda, the default is `emf`.
    let sink_url = format!("{}/alerts", sink.url);
    let one_attempt = [("WEIR_ENGINE_SETTINGS", r#"{"max_attempts": 1}"#)];
    let emulator =
        common::scorer_functions(&store_url, PARTITIONS, &agent_file, &sink_url, &credentials, &one_attempt).await;
    let stdout = collect_stdout(&emulator);

    // Reviews, and one without a review, which the prompt cannot be made from: a dead letter.
    let mut records: Vec<Value> =
        (0..REVIEWS).map(|n| json!({"key": format!("product-{n}"), "review": format!("review {n}")})).collect();
    records.push(json!({"key": "product-x", "stars": 1}));
    let request = json!({
        "requestContext": {"requestId": "reviews-1", "timeEpoch": 0, "http": {"method": "POST"}},
        "headers": {},
        "body": Value::from(records.clone()).to_string(),
        "isBase64Encoded": false
    });
    assert_eq!(invoke(&emulator, "ingest", request).await["statusCode"], 200);

    // Ingest triggers process, which triggers dispatch; each prints its metrics as it ends.
    let settled = async {
        loop {
            let data = metrics_of(&stdout.lock().unwrap());
            let processed = sum(&data, "Events", &of("process"));
            // Each invocation's requests are published once its usage record is written, last.
            let recorded = ["process", "dispatch"].iter().all(|f| sum(&data, "StoreRequests", &of(f)) > 0.0);
            if processed >= records.len() as f64
                && sum(&data, "Delivered", &of("dispatch")) >= REVIEWS as f64
                && recorded
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, settled).await.expect("the functions' metrics within a minute");
    emulator.shutdown().await;

    let lines = stdout.lock().unwrap().clone();
    for line in &lines {
        let parsed: Result<Value, _> = serde_json::from_str(&line.text);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "{}: a line that is neither a log nor a document: {}",
            line.function,
            line.text
        );
    }
    let data = metrics_of(&lines);
    // AWS's own EMF library, given the same metrics, writes documents that yield the same data.
    let documents: Vec<String> = lines.iter().filter(|l| extract(&l.text).is_some()).map(|l| l.text.clone()).collect();
    let reference: Vec<Datum> =
        written_by_aws_library(&documents).iter().flat_map(|line| extract(line).unwrap().unwrap()).collect();
    assert_eq!(reference, data);
    let printed_by =
        |function: &str| lines.iter().filter(|l| l.function == function && extract(&l.text).is_some()).count();
    assert!(["ingest", "process", "dispatch"].iter().all(|f| printed_by(f) > 0), "{data:#?}");
    assert!(data.iter().all(|d| d.namespace == "weir"), "{data:#?}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(data.iter().all(|d| d.timestamp_ms <= now_ms && d.timestamp_ms + 3_600_000 > now_ms), "{data:#?}");

    assert_eq!(sum(&data, "Events", &of("ingest")), records.len() as f64);
    assert_eq!(sum(&data, "RefusedRecords", &of("ingest")), 0.0);
    assert_eq!(sum(&data, "Events", &of("process")), records.len() as f64);
    assert_eq!(sum(&data, "DeadLetters", &of("process")), 1.0);
    assert_eq!(sum(&data, "Outputs", &of("process")), REVIEWS as f64);
    assert_eq!(sum(&data, "FailedPartitions", &of("process")), 0.0);

    // The fake model answers every call with 1 prompt and 1 completion token.
    let model_metric =
        |metric: &str| sum(&data, metric, &[("Agent", "scorer"), ("Function", "process"), ("Model", "default")]);
    assert_eq!(model.requests(), REVIEWS);
    assert_eq!(model_metric("ModelCalls"), REVIEWS as f64);
    assert_eq!(model_metric("InputTokens"), REVIEWS as f64);
    assert_eq!(model_metric("OutputTokens"), REVIEWS as f64);
    assert_eq!((model_metric("ModelErrors"), model_metric("BreakerOpen")), (0.0, 0.0));
    // At the agent file's price of 2 and 8 per million tokens, per model and for the agent.
    let cost = REVIEWS as f64 * 10.0 / 1e6;
    assert!((model_metric("ModelCost") - cost).abs() < 1e-12, "{}", model_metric("ModelCost"));
    assert!((sum(&data, "ModelCost", &of("process")) - cost).abs() < 1e-12, "{data:#?}");
    let token_units: Vec<&str> = data.iter().filter(|d| d.name == "InputTokens").map(|d| d.unit.as_str()).collect();
    assert!(!token_units.is_empty() && token_units.iter().all(|u| *u == "Count"), "{token_units:?}");

    // Every partition process worked on caught up: its backlog is 0, per partition and in
    // the aggregate.
    let backlog: Vec<&Datum> = data.iter().filter(|d| d.name == "Backlog").collect();
    assert!(backlog.iter().any(|d| d.dimensions.contains_key("Partition")), "{backlog:#?}");
    assert!(backlog.iter().any(|d| d.has_dimensions(&of("process"))), "{backlog:#?}");
    assert!(backlog.iter().all(|d| d.values == [0.0]), "{backlog:#?}");
    let lag: Vec<&Datum> = data.iter().filter(|d| d.name == "Lag").collect();
    assert_eq!(lag.len(), backlog.len(), "a lag beside each backlog: {lag:#?}");
    assert!(lag.iter().all(|d| d.values == [0.0] && d.unit == "Milliseconds"), "{lag:#?}");

    // Each invocation's object-store requests, by kind and in all, and their cost.
    for function in ["ingest", "process", "dispatch"] {
        let requests = sum(&data, "StoreRequests", &of(function));
        let puts = [("Agent", "scorer"), ("Function", function), ("Request", "PUT")];
        assert!(requests > 0.0 && sum(&data, "StoreRequests", &puts) > 0.0, "{function}: {data:#?}");
        assert!(sum(&data, "InfrastructureCost", &of(function)) > 0.0, "{function}: {data:#?}");
    }
    assert_eq!(sum(&data, "Delivered", &of("dispatch")), sink.received().len() as f64);
    let undelivered: Vec<&Datum> = data.iter().filter(|d| d.name == "Undelivered").collect();
    assert!(!undelivered.is_empty() && undelivered.iter().all(|d| d.values == [0.0]), "{undelivered:#?}");
}

/// An HTTP request whose body is not records is refused, and counted.
#[tokio::test]
async fn a_refused_request_is_counted_by_ingest() {
    let lookup = |name: &str| match name {
        "WEIR_STORE" => Some("memory://".to_string()),
        "WEIR_AGENT" => Some("scorer".to_string()),
        _ => None,
    };
    let (metrics, lines) = Metrics::in_memory("ingest", Some("scorer"));
    let ingest = IngestFunction::new(IngestConfig::from_lookup(lookup).unwrap()).await.unwrap().with_metrics(metrics);
    let request = |body: &str| {
        json!({
            "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "POST"}},
            "headers": {}, "body": body, "isBase64Encoded": false
        })
    };
    assert_eq!(ingest.handle(request("[1, 2]")).await.unwrap()["statusCode"], 400);
    assert_eq!(ingest.handle(request(r#"{"key": "a", "n": 1}"#)).await.unwrap()["statusCode"], 200);

    let documents: Vec<Vec<Datum>> = lines.lines().iter().map(|line| extract(line).unwrap().unwrap()).collect();
    // Beside each invocation's requests and their cost, its events and refusals.
    let documents: Vec<Vec<Datum>> =
        documents.into_iter().filter(|d| d.iter().any(|datum| datum.name == "RefusedRecords")).collect();
    assert_eq!(documents.len(), 2, "one document of events per invocation");
    let (first, second) = (&documents[0], &documents[1]);
    assert_eq!((sum(first, "RefusedRecords", &of("ingest")), sum(first, "Events", &of("ingest"))), (1.0, 0.0));
    assert_eq!((sum(second, "RefusedRecords", &of("ingest")), sum(second, "Events", &of("ingest"))), (0.0, 1.0));
}

/// A model that cannot be reached: its breaker opens, the partitions wait, and the metrics
/// say so with the backlog that waits.
#[tokio::test]
async fn an_open_breaker_and_the_waiting_backlog_are_published() {
    // A port nothing listens on: every request fails to connect.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let config_dir = TempDir::new();
    let agent_file = common::scorer_agent_file(config_dir.path(), &dead_url);
    let text = std::fs::read_to_string(&agent_file).unwrap();
    let text = text.replace(
        "api_key_env: FAKE_OPENAI_KEY}",
        "api_key_env: FAKE_OPENAI_KEY, http: {max_retries: 0, breaker_failures: 1}}",
    );
    std::fs::write(&agent_file, text).unwrap();
    let loader =
        weir_agent::declarative::Loader::new().environment(|name| (name == "FAKE_OPENAI_KEY").then(|| "k".into()));
    let agent = Arc::new(loader.load(&agent_file).await.unwrap().agent);

    let storage = Storage::from_url("memory://").unwrap();
    let log = EventLog::create(storage.clone(), PARTITIONS).await.unwrap();
    let before_appends = SystemClock.now_ms();
    for n in 0..4 {
        let event = LogEvent::json(format!("product-{n}"), &json!({"review": format!("review {n}")}));
        log.append(&format!("batch-{n}"), &[event]).await.unwrap();
    }
    let config = ProcessConfig {
        storage: storage.clone(),
        agent: "scorer".into(),
        settings: EngineSettings::default(),
        deadline_margin: Duration::from_secs(10),
        continuation_function: "unused".into(),
        dispatch_function: None,
        metrics: Default::default(),
    };
    let aws = AwsClients::load(AwsClients::defaults().endpoint_url("http://127.0.0.1:9").test_credentials()).await;
    let (metrics, lines) = Metrics::in_memory("process", Some("scorer"));
    let function = ProcessFunction::new(config, agent.clone(), LambdaInvoker::new(&aws))
        .unwrap()
        .with_counters(agent)
        .with_metrics(metrics);

    let far = Deadline::new(std::time::SystemTime::now() + Duration::from_secs(3600), Duration::from_secs(10));
    let report = function.handle(PartitionRequest::default(), far).await.unwrap();
    let waiting: Vec<u32> = report
        .partitions
        .iter()
        .filter(|p| matches!(p.outcome, PartitionOutcome::Unavailable(_)))
        .map(|p| p.partition)
        .collect();
    assert!(!waiting.is_empty(), "{report:?}");

    let data: Vec<Datum> = lines.lines().iter().flat_map(|line| extract(line).unwrap().unwrap()).collect();
    let model = [("Agent", "scorer"), ("Function", "process"), ("Model", "default")];
    assert_eq!(sum(&data, "BreakerOpen", &model), 1.0, "{data:#?}");
    assert!(sum(&data, "ModelErrors", &model) >= 1.0, "{data:#?}");
    assert_eq!(sum(&data, "ModelCalls", &model), 0.0);
    assert_eq!(sum(&data, "WaitingPartitions", &of("process")), waiting.len() as f64);
    assert_eq!(sum(&data, "Events", &of("process")), 0.0);
    for partition in waiting {
        let segments = log.segments(partition).await.unwrap().len() as f64;
        let dimensions = [("Agent", "scorer"), ("Function", "process"), ("Partition", &partition.to_string()[..])];
        assert_eq!(sum(&data, "Backlog", &dimensions), segments, "partition {partition}: {data:#?}");
    }
    let worst: Vec<&Datum> = data.iter().filter(|d| d.name == "Backlog" && d.has_dimensions(&of("process"))).collect();
    assert!(!worst.is_empty() && worst.iter().all(|d| d.values[0] >= 1.0), "{worst:#?}");
    // The waiting events' age: since their append, so within what the test has taken.
    let since_appends = SystemClock.now_ms() - before_appends;
    let lags: Vec<&Datum> = data.iter().filter(|d| d.name == "Lag" && d.dimensions.contains_key("Partition")).collect();
    assert_eq!(lags.len(), report.partitions.len(), "{lags:#?}");
    assert!(lags.iter().all(|d| d.values[0] <= since_appends as f64), "{lags:#?} within {since_appends} ms");
    assert!(report.partitions.iter().all(|p| p.lag_ms.is_some() && p.backlog.is_some()), "{report:?}");
}

/// A sink that refuses every delivery: dispatch fails the partitions, and publishes the
/// outputs that wait for the sink, per partition and in all.
#[tokio::test]
async fn outputs_waiting_for_a_sink_that_is_down_are_published() {
    const EVENTS: usize = 12;
    let storage = Storage::from_url("memory://").unwrap();
    let log = common::seeded_log(&storage, PARTITIONS, EVENTS).await;
    let engine = Engine::builder(storage.clone(), "scorer", Arc::new(common::Counter)).build().unwrap();
    assert_eq!(engine.drain().await.unwrap().outputs, EVENTS);

    let down = Recorder::start(StatusCode::SERVICE_UNAVAILABLE).await;
    let config = DispatchConfig {
        storage: storage.clone(),
        agent: "scorer".into(),
        sink: SinkTarget::Webhook { url: down.url.clone() },
        partitions: PARTITIONS,
        deadline_margin: Duration::from_secs(10),
        metrics: Default::default(),
        approval_links: None,
    };
    let (metrics, lines) = Metrics::in_memory("dispatch", Some("scorer"));
    let dispatch = DispatchFunction::new(config, Sink::Webhook(WebhookSink::new(&down.url))).with_metrics(metrics);
    let far = Deadline::new(std::time::SystemTime::now() + Duration::from_secs(3600), Duration::from_secs(10));
    assert!(dispatch.handle(PartitionRequest::default(), far).await.is_err(), "the sink refused every batch");

    let data: Vec<Datum> = lines.lines().iter().flat_map(|line| extract(line).unwrap().unwrap()).collect();
    assert_eq!(sum(&data, "Delivered", &of("dispatch")), 0.0);
    assert_eq!(sum(&data, "FailedPartitions", &of("dispatch")), PARTITIONS as f64);
    assert_eq!(sum(&data, "Undelivered", &of("dispatch")), EVENTS as f64, "{data:#?}");
    for partition in 0..PARTITIONS {
        // The seeded log keys event n as `key-{n % 8}`; the counter emits one output per event.
        let outputs = (0..EVENTS).filter(|n| log.partition_of(&format!("key-{}", n % 8)) == partition).count();
        let dimensions = [("Agent", "scorer"), ("Function", "dispatch"), ("Partition", &partition.to_string()[..])];
        assert_eq!(sum(&data, "Undelivered", &dimensions), outputs as f64, "partition {partition}: {data:#?}");
    }
}
