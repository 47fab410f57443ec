//! A writer that stalls longer than collection's grace period, and finds that collection has
//! deleted the manifest number it is about to create, learns that it is fenced (the boundary
//! check of `docs/storage-format.md`, after SlateDB's RFC 0026).

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use weir_engine::{
    Clock, Engine, EngineSettings, ErrorKind, EventLog, GcSettings, ManualClock, PartitionDir, Storage, SystemClock,
    collect_partition,
};
use weir_tests::{TestAgent, review_events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_cannot_commit_over_collected_history() {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    log.append("b0", &review_events(10, false)).await.unwrap();
    let settings = EngineSettings { max_batch_events: 5, journal_flush_window_ms: 1, ..Default::default() };
    let zombie_clock = ManualClock::new(SystemClock.now_ms());
    let zombie_engine = Engine::builder(storage.clone(), "reviews", Arc::new(TestAgent::new()))
        .settings(settings.clone())
        .clock(zombie_clock.clone())
        .build()
        .unwrap();
    // The zombie claims (manifest 1) and then stalls.
    let mut zombie = zombie_engine.claim(0).await.unwrap();
    assert_eq!(zombie.head().seq, 1);

    // Meanwhile a healthy invocation takes over and commits manifests 2.. and more.
    let healthy = Engine::builder(storage.clone(), "reviews", Arc::new(TestAgent::new()))
        .settings(settings.clone())
        .build()
        .unwrap();
    healthy.drain_partition(0).await.unwrap();
    log.append("b1", &review_events(10, false)).await.unwrap();
    healthy.drain_partition(0).await.unwrap();

    // Collection with no retention deletes every manifest but the head, manifest 2 included.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let dir = PartitionDir::new(storage.clone(), "reviews", 0).unwrap();
    let eager = GcSettings { grace_ms: 0, output_retention_ms: 0, log_retention_ms: 0 };
    collect_partition(&dir, &eager, &SystemClock).await.unwrap();
    assert_eq!(dir.read_manifest(2).await.unwrap(), None);
    let head = dir.latest().await.unwrap().unwrap();

    // The zombie wakes up after longer than half the grace period and commits manifest 2.
    zombie_clock.advance(Duration::from_millis(settings.gc_grace_ms));
    let err = zombie.process_batch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
    assert_eq!(dir.read_manifest(2).await.unwrap(), None, "the void manifest is removed");
    assert_eq!(dir.latest().await.unwrap().unwrap(), head, "the chain is untouched");
}
