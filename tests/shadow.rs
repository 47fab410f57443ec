//! Shadow runs (`docs/replay.md`) held to the engine's guarantees: a shadow over a range of
//! the log, from production's state as of the range's start, commits what production
//! committed for those events; one with a selection handles those events only; a fault at
//! every request of a shadow's run, then a healthy rerun, leaves each event's output once;
//! and no object of production's namespace or of the log is written or changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{
    CommittedReader, Engine, EngineSettings, EventLog, ForkPoint, Output, Position, Shadow, ShadowRange, ShadowStart,
    Storage, fork_partition, shadow_storage,
};
use weir_tests::{TestAgent, review_events};

const AGENT: &str = "reviews";

fn settings() -> EngineSettings {
    EngineSettings { max_batch_events: 10, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

/// A one-partition log of 60 reviews in three appends, processed by production.
async fn processed_log() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    for (i, chunk) in review_events(60, false).chunks(20).enumerate() {
        log.append(&format!("batch-{i}"), chunk).await.unwrap();
    }
    let engine = Engine::builder(storage.clone(), AGENT, Arc::new(TestAgent::new())).settings(settings());
    assert_eq!(engine.build().unwrap().drain_partition(0).await.unwrap().events, 60);
    storage
}

/// Every object but the shadows', with its bytes.
async fn production_objects(storage: &Storage) -> BTreeMap<String, Bytes> {
    let mut objects = BTreeMap::new();
    for object in storage.list_after(storage.root(), None).await.unwrap() {
        let name = object.location.to_string();
        if !name.starts_with("shadows/") {
            objects.insert(name, storage.get(&object.location).await.unwrap().unwrap());
        }
    }
    objects
}

async fn outputs(root: &Storage) -> Vec<Output> {
    let mut outputs = CommittedReader::new(root.clone(), AGENT, 0).unwrap().outputs().await.unwrap();
    outputs.sort_by_key(|o| (o.event, o.index));
    outputs
}

/// Forks shadow `name` as of `from` and returns its root and the engine setting for the
/// range from the fork to production's head, narrowed to `only`.
async fn fork(production: &Storage, name: &str, from: Position, only: Option<BTreeSet<Position>>) -> (Storage, Shadow) {
    let shadow = shadow_storage(production, name).unwrap();
    let start =
        fork_partition(production, &shadow, AGENT, 0, ForkPoint { position: from, state: ShadowStart::AsOf }, "1", 0)
            .await
            .unwrap();
    let head = CommittedReader::new(production.clone(), AGENT, 0).unwrap().head().await.unwrap().unwrap();
    let range = ShadowRange { start, until: head.position(), only };
    (shadow, Shadow::new(production.clone(), AGENT, HashMap::from([(0, range)])))
}

fn shadow_engine(shadow: &Storage, setting: &Shadow) -> Engine {
    Engine::builder(shadow.clone(), AGENT, Arc::new(TestAgent::new()))
        .settings(settings())
        .shadow(setting.clone())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_from_the_state_as_of_its_start_commits_what_production_did_for_its_range() {
    let production = processed_log().await;
    let before = production_objects(&production).await;
    let committed = outputs(&production).await;

    // Production committed at 1:0 (a batch ends there); a start at 1:5 forks from that commit.
    let (shadow, setting) = fork(&production, "midway", Position::new(1, 5), None).await;
    let start = setting.range(0).unwrap().start;
    assert_eq!(start, Position::new(1, 0), "the range moves back to the commit its state is from");
    shadow_engine(&shadow, &setting).drain_partition(0).await.unwrap();
    let expected: Vec<Output> = committed.iter().filter(|o| o.event >= start).cloned().collect();
    assert_eq!(expected.len(), 40);
    assert_eq!(outputs(&shadow).await, expected, "the same outputs, per-key counts included: the state is as of 1:0");

    // A selection: only those events are handled; the others are passed over.
    let only: BTreeSet<Position> = committed.iter().map(|o| o.event).filter(|p| p.index % 3 == 0).collect();
    let (shadow, setting) = fork(&production, "every-third", Position::default(), Some(only.clone())).await;
    shadow_engine(&shadow, &setting).drain_partition(0).await.unwrap();
    let handled: BTreeSet<Position> = outputs(&shadow).await.iter().map(|o| o.event).collect();
    assert_eq!(handled, only);
    let at = ForkPoint { position: Position::default(), state: ShadowStart::Empty };
    let error = fork_partition(&production, &shadow, AGENT, 0, at, "2", 0).await.unwrap_err();
    assert!(error.to_string().contains("already has partition 0"), "{error}");
    assert_eq!(production_objects(&production).await, before, "production and the log are untouched");
}

/// A fault at request `n` of a shadow's run, then a healthy run: the shadow's outputs are a
/// fault-free shadow's, and production is untouched.
async fn check_every_fault_point(fault: Fault) {
    let production = processed_log().await;
    let (shadow, setting) = fork(&production, "baseline", Position::new(1, 0), None).await;
    let plan = Arc::new(FaultPlan::none());
    let counted = shadow.with_store(Arc::new(FaultyStore::new(shadow.store().clone(), plan.clone())));
    shadow_engine(&counted, &setting).drain_partition(0).await.unwrap();
    let baseline = outputs(&shadow).await;
    assert_eq!(baseline.len(), 40);
    let requests = plan.requests();
    assert!(requests > 20, "a multi-batch shadow run makes many requests ({requests})");

    for n in 1..=requests {
        let production = processed_log().await;
        let before = production_objects(&production).await;
        let (shadow, setting) = fork(&production, "faulty", Position::new(1, 0), None).await;
        let plan = Arc::new(FaultPlan::at(n, fault.clone()));
        let faulty_root = production.with_store(Arc::new(FaultyStore::new(production.store().clone(), plan.clone())));
        let faulty = shadow_storage(&faulty_root, "faulty").unwrap();
        let faulty_setting =
            Shadow::new(faulty_root.clone(), AGENT, HashMap::from([(0, setting.range(0).unwrap().clone())]));
        let engine = shadow_engine(&faulty, &faulty_setting);
        tokio::select! {
            result = engine.drain_partition(0) => { let _ = result; }
            () = plan.wait_crashed() => {}
        }
        shadow_engine(&shadow, &setting).drain_partition(0).await.unwrap();
        assert_eq!(outputs(&shadow).await, baseline, "fault {fault:?} at request {n}: the shadow's outputs differ");
        assert_eq!(
            production_objects(&production).await,
            before,
            "fault {fault:?} at request {n}: production was written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_at_every_request_of_a_shadow_run_leaves_each_output_once() {
    check_every_fault_point(Fault::AppliedThenError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_request_of_a_shadow_run_leaves_each_output_once() {
    check_every_fault_point(Fault::Crash).await;
}
