//! Fault injection: for every request N of a multi-batch run, fail it (error, lost
//! response, conflict reported for a won create, timeout) or end the invocation abruptly
//! there; then run again on a healthy store and check that the committed outputs are those
//! of a fault-free run, every input exactly once, no journaled call made again, and every
//! call made again carrying its first attempt's idempotency key; and that the committed
//! trace holds each event's actions and calls once, as a fault-free run's does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{
    CommittedReader, Engine, EngineSettings, EventLog, EventTrace, JournalEntry, Outcome, Output, Position, Storage,
};
use weir_tests::{ServiceCall, TestAgent, review_events};

fn settings() -> EngineSettings {
    EngineSettings {
        max_batch_events: 10,
        journal_flush_window_ms: 1,
        retry_backoff_ms: 1,
        compaction_fanout: 2,
        ..Default::default()
    }
}

/// A fresh store holding a one-partition log of 60 reviews in three appends.
async fn seeded_storage() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let events = review_events(60, false);
    for (i, chunk) in events.chunks(20).enumerate() {
        log.append(&format!("batch-{i}"), chunk).await.unwrap();
    }
    storage
}

fn engine(storage: Storage, agent: &TestAgent) -> Engine {
    Engine::builder(storage, "reviews", Arc::new(agent.clone())).settings(settings()).build().unwrap()
}

/// Each committed event's spans, as (event, kind and name of each span): what the trace
/// says happened, without timings.
async fn traced(storage: &Storage) -> Vec<(Position, Vec<String>)> {
    let traces = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().traces().await.unwrap();
    let shape = |t: &EventTrace| t.spans.iter().map(|s| format!("{} {}", s.kind.as_str(), s.name)).collect();
    traces.iter().map(|t| (t.event, shape(t))).collect()
}

async fn committed(storage: &Storage) -> Vec<Output> {
    let mut outputs = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().outputs().await.unwrap();
    outputs.sort_by_key(|o| (o.event, o.index));
    outputs
}

/// Calls whose results are in the journal, as (key, event, call name).
async fn journaled_calls(storage: &Storage) -> HashSet<(String, Position, String)> {
    let mut done = HashSet::new();
    for object in storage.list_after(&storage.path("agents/reviews/p00000/journal"), None).await.unwrap() {
        let bytes = storage.get(&object.location).await.unwrap().unwrap();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let entry: JournalEntry = serde_json::from_slice(line).unwrap();
            if matches!(entry.outcome, Outcome::Done(_)) {
                done.insert((entry.call.key, entry.call.event, entry.name));
            }
        }
    }
    done
}

/// Runs one invocation on a store failing as `plan` says; returns when it fails, crashes
/// (its task is dropped mid-request) or drains.
async fn faulty_invocation(storage: &Storage, agent: &TestAgent, plan: Arc<FaultPlan>) {
    let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
    let run = async {
        let engine = Engine::builder(faulty, "reviews", Arc::new(agent.clone())).settings(settings()).build()?;
        engine.drain_partition(0).await
    };
    tokio::select! {
        result = run => { let _ = result; }
        () = plan.wait_crashed() => {}
    }
}

fn call_identity(call: &ServiceCall) -> (String, Position, String) {
    (call.key.clone(), call.event, call.name.clone())
}

async fn check_every_fault_point(fault: Fault) {
    let baseline_storage = seeded_storage().await;
    let plan = Arc::new(FaultPlan::none());
    let counted =
        baseline_storage.with_store(Arc::new(FaultyStore::new(baseline_storage.store().clone(), plan.clone())));
    let agent = TestAgent::new();
    let report = engine(counted, &agent).drain_partition(0).await.unwrap();
    assert_eq!(report.events, 60);
    let baseline = committed(&baseline_storage).await;
    assert_eq!(baseline.len(), 60);
    let baseline_trace = traced(&baseline_storage).await;
    assert_eq!(baseline_trace.len(), 60, "one trace per event");
    let requests = plan.requests();
    assert!(requests > 30, "a multi-batch run makes many requests ({requests})");

    let mut replayed = 0;
    for n in 1..=requests {
        let storage = seeded_storage().await;
        let agent = TestAgent::new();
        faulty_invocation(&storage, &agent, Arc::new(FaultPlan::at(n, fault.clone()))).await;
        let journaled = journaled_calls(&storage).await;
        let before_rerun = agent.service.calls().len();

        let rerun = engine(storage.clone(), &agent);
        rerun.drain_partition(0).await.unwrap();
        replayed += rerun.call_counts().replayed.load(std::sync::atomic::Ordering::Relaxed);

        let outputs = committed(&storage).await;
        assert_eq!(outputs, baseline, "fault {fault:?} at request {n}: committed outputs differ from a fault-free run");
        assert_eq!(
            traced(&storage).await,
            baseline_trace,
            "fault {fault:?} at request {n}: the trace holds each event's actions and calls once"
        );
        let calls = agent.service.calls();
        for call in &calls[before_rerun..] {
            assert!(
                !journaled.contains(&call_identity(call)),
                "fault {fault:?} at request {n}: journaled call made again: {call:?}"
            );
        }
        let mut keys: HashMap<(String, Position, String), HashSet<String>> = HashMap::new();
        for call in &calls {
            keys.entry(call_identity(call)).or_default().insert(call.idempotency_key.clone());
        }
        for (call, keys) in &keys {
            assert_eq!(
                keys.len(),
                1,
                "fault {fault:?} at request {n}: {call:?} was made with several idempotency keys"
            );
        }
        let notifications = calls.iter().filter(|c| c.name == "notify").map(call_identity).collect::<Vec<_>>();
        let distinct: HashSet<_> = notifications.iter().collect();
        assert_eq!(
            notifications.len(),
            distinct.len(),
            "fault {fault:?} at request {n}: an at-most-once call ran twice"
        );
    }
    println!("{fault:?}: {requests} fault points, {replayed} calls replayed from the journal by reruns");
    if !matches!(fault, Fault::Latency(_)) {
        assert!(replayed > 0, "some fault points must leave journaled calls for the rerun to replay");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors() {
    check_every_fault_point(Fault::Error).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses() {
    check_every_fault_point(Fault::AppliedThenError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn won_creates_reported_as_conflicts() {
    check_every_fault_point(Fault::AppliedThenAlreadyExists).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts() {
    check_every_fault_point(Fault::Timeout(Duration::from_millis(2))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_changes_nothing() {
    check_every_fault_point(Fault::Latency(Duration::from_millis(3))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_ends() {
    check_every_fault_point(Fault::Crash).await;
}

/// Random faults at every request with a fixed seed, over several invocations in a row: a
/// harsher mix than one fault per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_random_faults_over_many_invocations() {
    let baseline_storage = seeded_storage().await;
    engine(baseline_storage.clone(), &TestAgent::new()).drain_partition(0).await.unwrap();
    let baseline = committed(&baseline_storage).await;
    for seed in 0..8u64 {
        let storage = seeded_storage().await;
        let agent = TestAgent::new();
        for invocation in 0..5u64 {
            let faults = vec![Fault::Error, Fault::AppliedThenError, Fault::AppliedThenAlreadyExists, Fault::Crash];
            let plan = Arc::new(FaultPlan::random(seed * 100 + invocation, 0.03, faults));
            faulty_invocation(&storage, &agent, plan).await;
        }
        engine(storage.clone(), &agent).drain_partition(0).await.unwrap();
        assert_eq!(committed(&storage).await, baseline, "seed {seed}");
    }
}
