//! One storage conformance suite, run against the in-memory store, a local directory and
//! moto's S3 server.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use weir_engine::format::{Manifest, PartitionDir, Writer};
use weir_engine::{
    Commit, CommitKind, CommittedReader, Engine, EngineSettings, ErrorKind, EventLog, LogEvent, Position, Storage,
    SystemClock, collect_log, collect_partition,
};
use weir_tests::backends::fresh_storage;
use weir_tests::{Backend, TestAgent, review_events};

fn settings(batch: usize) -> EngineSettings {
    EngineSettings { max_batch_events: batch, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

fn engine(storage: &Storage, agent: &TestAgent, batch: usize) -> Engine {
    Engine::builder(storage.clone(), "reviews", Arc::new(agent.clone())).settings(settings(batch)).build().unwrap()
}

async fn all_outputs(storage: &Storage, partitions: u32) -> Vec<weir_engine::Output> {
    let mut all = Vec::new();
    for p in 0..partitions {
        all.extend(CommittedReader::new(storage.clone(), "reviews", p).unwrap().outputs().await.unwrap());
    }
    all
}

async fn create_if_absent_is_exclusive(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let path = storage.path("a/b.json");
    assert!(storage.create(&path, "1".into()).await.unwrap());
    assert!(!storage.create(&path, "2".into()).await.unwrap());
    assert_eq!(storage.get(&path).await.unwrap().unwrap(), "1");
    assert_eq!(storage.get(&storage.path("a/missing")).await.unwrap(), None);
}

async fn log_appends_are_idempotent_and_ordered(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let log = EventLog::create(storage.clone(), 4).await.unwrap();
    let err = EventLog::create(storage.clone(), 8).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let events = review_events(40, false);
    let first = log.append("batch-1", &events).await.unwrap();
    // A fresh process (no cached tail) retrying the same batch stores nothing new.
    let again = EventLog::open(storage.clone()).await.unwrap().append("batch-1", &events).await.unwrap();
    assert_eq!(first, again);
    for appended in &first {
        let segment = log.read_segment(appended.partition, appended.segment).await.unwrap().unwrap();
        assert_eq!(segment.batch_id, "batch-1");
        assert!(segment.events.iter().all(|e| log.partition_of(&e.key) == appended.partition));
        assert_eq!(log.segments(appended.partition).await.unwrap(), vec![0]);
    }
    assert_eq!(first.iter().map(|a| a.events).sum::<usize>(), 40);
}

async fn racing_duplicate_and_distinct_appends(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    EventLog::create(storage.clone(), 1).await.unwrap();
    let events = review_events(5, false);
    // Eight producers, each with its own cold view of the tail: four batch ids, each sent twice.
    let appends = (0..8).map(|i| {
        let storage = storage.clone();
        let events = events.clone();
        async move {
            let log = EventLog::open(storage).await.unwrap();
            log.append_to_partition(0, &format!("batch-{}", i % 4), &events).await.unwrap()
        }
    });
    let results = futures::future::join_all(appends).await;
    for i in 0..4 {
        assert_eq!(results[i].segment, results[i + 4].segment, "duplicates of batch-{i} stored once");
    }
    let log = EventLog::open(storage).await.unwrap();
    assert_eq!(log.segments(0).await.unwrap(), vec![0, 1, 2, 3], "four batches, no holes, no duplicates");
    let mut ids = HashSet::new();
    for seq in 0..4 {
        ids.insert(log.read_segment(0, seq).await.unwrap().unwrap().batch_id);
    }
    assert_eq!(ids.len(), 4);
}

async fn engine_processes_each_event_once_in_key_order(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let log = EventLog::create(storage.clone(), 2).await.unwrap();
    let events = review_events(120, false);
    log.append("b1", &events[..70]).await.unwrap();
    let agent = TestAgent::new();
    let report = engine(&storage, &agent, 25).drain().await.unwrap();
    assert_eq!(report.events, 70);
    // A new invocation continues from the committed position and state.
    log.append("b2", &events[70..]).await.unwrap();
    engine(&storage, &agent, 25).drain().await.unwrap();
    let outputs = all_outputs(&storage, 2).await;
    assert_eq!(outputs.len(), 120, "every event's output once");
    let mut per_key: std::collections::HashMap<String, Vec<(Position, u64)>> = Default::default();
    for o in &outputs {
        per_key.entry(o.key.clone()).or_default().push((o.event, o.payload["count"].as_u64().unwrap()));
    }
    for (key, mut seen) in per_key {
        seen.sort();
        let counts: Vec<u64> = seen.iter().map(|(_, c)| *c).collect();
        assert_eq!(counts, (1..=counts.len() as u64).collect::<Vec<_>>(), "key {key} ran in log order");
    }
    let calls = agent.service.calls();
    assert_eq!(calls.iter().filter(|c| c.name == "score").count(), 120, "no score call repeated");
}

async fn bad_events_are_dead_lettered_and_the_partition_moves_on(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let big = "x".repeat(2000);
    let events = vec![
        LogEvent::json("k", &serde_json::json!({"review": "fine"})),
        LogEvent::new("k", "{not json"),
        LogEvent::json("k", &serde_json::json!({"review": "always fails", "fail": true})),
        LogEvent::json("k", &serde_json::json!({"review": "fails twice then works", "flaky": 2})),
        LogEvent::json("k", &serde_json::json!({"review": big})),
        LogEvent::json("k", &serde_json::json!({"review": "after"})),
    ];
    log.append("b", &events).await.unwrap();
    let agent = TestAgent::new();
    let engine = Engine::builder(storage.clone(), "reviews", Arc::new(agent))
        .settings(EngineSettings { max_event_bytes: 1000, ..settings(100) })
        .build()
        .unwrap();
    let report = engine.drain().await.unwrap();
    assert_eq!((report.events, report.outputs, report.dead_letters), (6, 3, 3));
    let reader = CommittedReader::new(storage.clone(), "reviews", 0).unwrap();
    let dead = reader.dead_letters().await.unwrap();
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons[0].starts_with("payload is not JSON"), "{reasons:?}");
    assert!(reasons[1].starts_with("actions failed after 3 attempts: this event always fails"), "{reasons:?}");
    assert!(reasons[2].contains("exceeds max_event_bytes=1000"), "{reasons:?}");
    assert_eq!(dead[0].payload, "{not json", "the raw bytes are kept");
    let counts: Vec<u64> =
        reader.outputs().await.unwrap().iter().map(|o| o.payload["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, vec![1, 2, 3], "failed attempts left no state behind");
    assert_eq!(reader.state("k").await.unwrap().unwrap(), "3");
}

async fn collection_keeps_live_state_and_deletes_history(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let agent = TestAgent::new();
    for i in 0..6 {
        log.append(&format!("b{i}"), &review_events(30, false)).await.unwrap();
        engine(&storage, &agent, 10).drain().await.unwrap();
    }
    let dir = PartitionDir::new(storage.clone(), "reviews", 0).unwrap();
    let count_objects = || async { storage.list_after(&storage.path("agents"), None).await.unwrap().len() };
    // Within the grace period, nothing goes: an invocation may still need it.
    let before = count_objects().await;
    let cautious = collect_partition(&storage, "reviews", 0, &EngineSettings::default(), &SystemClock).await.unwrap();
    assert_eq!(cautious, Default::default());
    assert_eq!(count_objects().await, before);

    // Two hours later, with no output retention, everything but live state goes.
    let later = weir_engine::ManualClock::new(weir_engine::Clock::now_ms(&SystemClock) + 2 * 3_600_000);
    let eager = EngineSettings { output_retention_ms: 0, log_retention_ms: 3_600_000, ..Default::default() };
    let report = collect_partition(&storage, "reviews", 0, &eager, later.as_ref()).await.unwrap();
    let calls = report.journal_files + report.intents;
    assert!(report.runs > 0 && calls > 0 && report.manifests > 0, "{report:?}");
    let head = dir.latest().await.unwrap().unwrap();
    let remaining = count_objects().await;
    let head_files = [&head.outputs, &head.dead_letters, &head.trace].iter().filter(|f| f.is_some()).count();
    assert_eq!(
        remaining,
        head.runs.len() + head_files + 4,
        "live runs, the head manifest and its files, the head hint, the boundary and the store probe remain"
    );
    // State survives collection: the next events continue the counts.
    log.append("after", &review_events(30, false)).await.unwrap();
    engine(&storage, &agent, 10).drain().await.unwrap();
    let outputs = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().outputs().await.unwrap();
    let key = outputs.last().unwrap().key.clone();
    let expected = review_events(30, false).iter().filter(|e| e.key == key).count() as u64 * 7;
    let last_count = outputs.iter().filter(|o| o.key == key).map(|o| o.payload["count"].as_u64().unwrap()).max();
    assert_eq!(last_count, Some(expected));
    let log_report = collect_log(&log, &eager, later.as_ref()).await.unwrap();
    assert_eq!(log_report.segments, 6, "all processed segments but the newest");
    assert_eq!(log.segments(0).await.unwrap(), vec![6]);
    // The log's tail survives collection: a new append goes after it.
    let appended =
        EventLog::open(storage.clone()).await.unwrap().append("later", &review_events(1, false)).await.unwrap();
    assert_eq!(appended[0].segment, 7);
}

/// A claim finds the head of the chain whatever `head-hint.json` says: on a chain longer
/// than the listing page it reads with the hint, with no hint or a stale one; on a short
/// chain, with a hint that names a manifest that is not there.
async fn the_head_is_found_past_a_listing_page_and_a_stale_hint(backend: Backend) {
    let (storage, _guard) = fresh_storage(backend);
    let long = PartitionDir::new(storage.clone(), "reviews", 0).unwrap();
    let writer = Writer { epoch: 1, nonce: "0123456789abcdef".into() };
    let chain: Vec<Manifest> =
        std::iter::successors(Some(Manifest::genesis()), |m| Some(m.successor(writer.clone(), CommitKind::Batch, 0)))
            .skip(1)
            .take(1001)
            .collect();
    let committed: Vec<bool> =
        futures::stream::iter(&chain).map(|m| long.commit(m)).buffer_unordered(16).try_collect().await.unwrap();
    assert!(committed.iter().all(|&c| c));
    assert_eq!(long.latest().await.unwrap().unwrap().seq, 1001, "no hint: listed whole, page after page");
    long.write_head_hint(500).await;
    assert_eq!(long.latest().await.unwrap().unwrap().seq, 1001, "a stale hint: listed after it");

    let short = PartitionDir::new(storage.clone(), "reviews", 1).unwrap();
    for manifest in &chain[..2] {
        assert!(short.commit(manifest).await.unwrap());
    }
    short.write_head_hint(7).await;
    assert_eq!(short.latest().await.unwrap().unwrap().seq, 2, "the first page holds the whole chain");
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(weir_tests::Backend::Memory).await } )* }
        mod file { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(weir_tests::Backend::File).await } )* }
        mod s3 { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(weir_tests::Backend::S3).await } )* }
    };
}

conformance!(
    create_if_absent_is_exclusive,
    log_appends_are_idempotent_and_ordered,
    racing_duplicate_and_distinct_appends,
    engine_processes_each_event_once_in_key_order,
    bad_events_are_dead_lettered_and_the_partition_moves_on,
    collection_keeps_live_state_and_deletes_history,
    the_head_is_found_past_a_listing_page_and_a_stale_hint,
);

/// A claim from the head its caller just read (the process function's backlog check)
/// reads nothing of the chain again: its one request is the claim's create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_a_known_head_reads_nothing_again() {
    let storage = Storage::from_url("memory://").unwrap();
    EventLog::create(storage.clone(), 1).await.unwrap();
    let counting = Arc::new(weir_engine::store::CountingStore::new(storage.store().clone()));
    let counts = counting.counts();
    let counted = storage.with_store(counting);
    let engine = engine(&counted, &TestAgent::new(), 10);
    engine.log().await.unwrap();
    let reader = CommittedReader::new(counted, "reviews", 0).unwrap();
    let head = reader.head().await.unwrap().unwrap_or_else(Commit::genesis);
    let before = counts.snapshot();
    assert_eq!(engine.claim_from(0, head).await.unwrap().head().seq(), 1);
    let claim = counts.snapshot() - before;
    assert_eq!((claim.put, claim.total()), (1, 1), "{claim:?}");
}

/// An engine is built without touching storage: its first claim opens the log, and names
/// it when it is missing, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_without_a_log_names_what_is_missing() {
    let storage = Storage::from_url("memory://").unwrap();
    let engine = engine(&storage, &TestAgent::new(), 10);
    let error = engine.claim(0).await.unwrap_err().to_string();
    assert!(error.contains("no event log at") && error.contains("create one first"), "{error}");
    let written: Vec<_> = storage.store().list(None).try_collect().await.unwrap();
    assert!(written.is_empty(), "nothing was written: {written:?}");
}

/// A short batch waits up to `max_batch_wait_ms` for events appended meanwhile, and returns
/// as soon as it is full; with no wait it takes what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_batch_waits_for_more_events() {
    let (storage, _guard) = fresh_storage(Backend::Memory);
    let log = Arc::new(EventLog::create(storage.clone(), 1).await.unwrap());
    let events = review_events(20, false);
    log.append("first", &events[..3]).await.unwrap();
    let agent = TestAgent::new();
    let eager = Engine::builder(storage.clone(), "reviews", Arc::new(agent.clone())).settings(settings(10)).build();
    let eager = eager.unwrap();
    assert_eq!(eager.claim(0).await.unwrap().process_batch().await.unwrap().events, 3, "no wait: what is there");

    let patient = EngineSettings { max_batch_wait_ms: 60_000, poll_interval_ms: 5, ..settings(10) };
    let engine = Engine::builder(storage.clone(), "reviews", Arc::new(agent)).settings(patient).build().unwrap();
    let mut processor = engine.claim(0).await.unwrap();
    let producer = {
        let (log, events) = (log.clone(), events.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            log.append("second", &events[3..8]).await.unwrap();
            log.append("third", &events[8..]).await.unwrap();
        })
    };
    let batch = processor.process_batch().await.unwrap();
    assert_eq!(batch.events, 10, "waited for a full batch");
    producer.await.unwrap();
    assert_eq!(eager.claim(0).await.unwrap().process_batch().await.unwrap().events, 7);
}

/// Retention expires a prefix of the chain only: a manifest whose clock ran behind its
/// predecessors' is neither deleted early nor hidden behind the boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_a_prefix_of_the_chain() {
    use std::time::Duration;
    use weir_engine::Clock;
    let (storage, _guard) = fresh_storage(Backend::Memory);
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let hour = Duration::from_secs(3600);
    let clock = weir_engine::ManualClock::new(SystemClock.now_ms() - 10 * 3_600_000);
    let agent = TestAgent::new();
    let run = |clock: Arc<weir_engine::ManualClock>| {
        let engine = Engine::builder(storage.clone(), "reviews", Arc::new(agent.clone()))
            .settings(EngineSettings { compaction_fanout: 100, ..settings(10) })
            .clock(clock);
        async move { engine.build().unwrap().drain().await.unwrap() }
    };
    let events = review_events(40, false);
    // Ten hours ago, then (a clock running late) twelve hours ago, then now.
    log.append("old", &events[..10]).await.unwrap();
    run(clock.clone()).await;
    log.append("skewed", &events[10..20]).await.unwrap();
    run(weir_engine::ManualClock::new(SystemClock.now_ms() - 12 * 3_600_000)).await;
    clock.advance(9 * hour);
    log.append("new", &events[20..]).await.unwrap();
    run(clock.clone()).await;

    let settings =
        EngineSettings { output_retention_ms: 11 * 3_600_000, log_retention_ms: u64::MAX, ..Default::default() };
    collect_partition(&storage, "reviews", 0, &settings, &SystemClock).await.unwrap();
    let outputs = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().outputs().await.unwrap();
    let first_kept = outputs.first().unwrap().event;
    assert_eq!(outputs.len(), 40, "the ten-hour-old commit is within retention, so nothing after it expires");
    assert_eq!(first_kept, Position::new(0, 0));
}
