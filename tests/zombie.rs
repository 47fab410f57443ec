//! A writer that stalls longer than collection's grace period, and finds that collection has
//! deleted the manifest number it is about to create, learns that it is fenced (the boundary
//! check of `docs/storage-format.md`, after SlateDB's RFC 0026).

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use weir_engine::format::PartitionDir;
use weir_engine::{
    Clock, CommittedReader, Engine, EngineSettings, ErrorKind, EventLog, ManualClock, Storage, SystemClock,
    collect_partition,
};
use weir_tests::{PolicyStore, TestAgent, review_events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_cannot_commit_over_collected_history() {
    let memory = Arc::new(InMemory::new());
    let storage = Storage::new(memory.clone(), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    // The zombie has the process function's role: it may not delete, nor write outside its
    // agent's directory.
    let role = Arc::new(PolicyStore::process_role(memory, "reviews"));
    log.append("b0", &review_events(10, false)).await.unwrap();
    let settings = EngineSettings { max_batch_events: 5, journal_flush_window_ms: 1, ..Default::default() };
    let zombie_clock = ManualClock::new(SystemClock.now_ms());
    let zombie_engine = Engine::builder(storage.with_store(role.clone()), "reviews", Arc::new(TestAgent::new()))
        .settings(settings.clone())
        .clock(zombie_clock.clone())
        .build()
        .unwrap();
    // The zombie claims (manifest 1) and then stalls.
    let mut zombie = zombie_engine.claim(0).await.unwrap();
    assert_eq!(zombie.head().seq(), 1);

    // Meanwhile a healthy invocation takes over and commits manifests 2.. and more.
    let healthy = Engine::builder(storage.clone(), "reviews", Arc::new(TestAgent::new()))
        .settings(settings.clone())
        .build()
        .unwrap();
    healthy.drain_partition(0).await.unwrap();
    log.append("b1", &review_events(10, false)).await.unwrap();
    healthy.drain_partition(0).await.unwrap();

    // Collection an hour later with no retention deletes every manifest but the head,
    // manifest 2 included.
    let later = ManualClock::new(SystemClock.now_ms() + 3_600_000);
    let dir = PartitionDir::new(storage.clone(), "reviews", 0).unwrap();
    let eager = EngineSettings { output_retention_ms: 0, ..Default::default() };
    collect_partition(&storage, "reviews", 0, &eager, later.as_ref()).await.unwrap();
    assert_eq!(dir.read_manifest(2).await.unwrap(), None);
    let head = dir.latest().await.unwrap().unwrap();

    // The zombie wakes up after longer than half the grace period and commits manifest 2.
    zombie_clock.advance(Duration::from_millis(settings.gc_grace_ms));
    let err = zombie.process_batch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
    assert_eq!(dir.latest().await.unwrap().unwrap(), head, "the chain is untouched");
    assert_eq!(role.refused(), Vec::<String>::new(), "the zombie needed nothing its role does not grant");
    // The process role may not delete: the void manifest stays below the boundary, where
    // readers skip it, until collection deletes it.
    let void = dir.read_manifest(2).await.unwrap().expect("left for collection");
    assert!(void.seq < dir.gc_boundary().await.unwrap());
    let commits = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().commits().await.unwrap();
    assert!(commits.iter().all(|c| c.seq() != 2), "readers skip it");
    later.advance(Duration::from_millis(settings.gc_grace_ms));
    collect_partition(&storage, "reviews", 0, &eager, later.as_ref()).await.unwrap();
    assert_eq!(dir.read_manifest(2).await.unwrap(), None, "collected");
}
