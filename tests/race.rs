//! Two to sixteen invocations racing on one partition commit the same outputs as one, each
//! sequence number is committed once, and no at-most-once call is made twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use weir_engine::format::PartitionDir;
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{CommittedReader, Engine, EngineSettings, ErrorKind, EventLog, Output, Storage};
use weir_tests::{TestAgent, review_events};

fn settings() -> EngineSettings {
    EngineSettings { max_batch_events: 7, journal_flush_window_ms: 1, compaction_fanout: 3, ..Default::default() }
}

async fn committed(storage: &Storage) -> Vec<Output> {
    let mut outputs = CommittedReader::new(storage.clone(), "reviews", 0).unwrap().outputs().await.unwrap();
    outputs.sort_by_key(|o| (o.event, o.index));
    outputs
}

async fn seeded_storage() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    for (i, chunk) in review_events(150, false).chunks(30).enumerate() {
        log.append(&format!("b{i}"), chunk).await.unwrap();
    }
    storage
}

/// One invocation: claims and processes until caught up. When fenced it claims again after
/// a jittered pause, at most three times, then exits as a fenced Lambda invocation would.
async fn invocation(storage: Storage, agent: TestAgent) -> usize {
    // Latency on every request interleaves the invocations' requests.
    let slow = storage.with_store(Arc::new(FaultyStore::new(
        storage.store().clone(),
        Arc::new(FaultPlan::every(Fault::Latency(Duration::from_millis(1)))),
    )));
    let engine = Engine::builder(slow, "reviews", Arc::new(agent)).settings(settings()).build().unwrap();
    let mut fenced = 0;
    while fenced < 4 {
        match engine.drain_partition(0).await {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::Fenced => fenced += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(fastrand_ms())).await;
    }
    fenced
}

fn fastrand_ms() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) % 20
}

/// One invocation with the partition to itself, until it is caught up.
async fn drain_alone(storage: &Storage, agent: TestAgent) {
    let engine = Engine::builder(storage.clone(), "reviews", Arc::new(agent)).settings(settings()).build().unwrap();
    engine.drain_partition(0).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_invocations_commit_like_one() {
    let single = seeded_storage().await;
    drain_alone(&single, TestAgent::new()).await;
    let baseline = committed(&single).await;
    assert_eq!(baseline.len(), 150);

    for racers in [2, 4, 8, 16] {
        let storage = seeded_storage().await;
        let agent = TestAgent::new();
        let runs = (0..racers).map(|_| tokio::spawn(invocation(storage.clone(), agent.clone())));
        let fenced: usize = futures::future::try_join_all(runs).await.unwrap().into_iter().sum();
        // Whatever the racers left, the next scheduled invocation finishes.
        drain_alone(&storage, agent.clone()).await;
        assert_eq!(committed(&storage).await, baseline, "{racers} racers");

        // The chain is contiguous, one manifest per number, each committing its own files.
        let dir = PartitionDir::new(storage.clone(), "reviews", 0).unwrap();
        let seqs = dir.manifest_seqs(None).await.unwrap();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        let mut referenced = HashSet::new();
        let mut previous = None;
        for seq in seqs {
            let manifest = dir.read_manifest(seq).await.unwrap().unwrap();
            if let Some(prev) = previous {
                assert!(manifest.position >= prev, "positions never go back");
            }
            previous = Some(manifest.position);
            referenced.extend(manifest.outputs.map(|f| f.path));
        }
        let out_files = storage.list_after(&dir.path("out"), None).await.unwrap();
        let mut per_seq = std::collections::HashMap::<String, usize>::new();
        for file in &out_files {
            let name = file.location.filename().unwrap().to_string();
            if referenced.contains(&format!("out/{name}")) {
                *per_seq.entry(name[..20].to_string()).or_default() += 1;
            }
        }
        assert!(per_seq.values().all(|&n| n == 1), "one committed output file per sequence number");

        // At-most-once calls: at most one per event, whichever racer made it.
        let mut notifications = std::collections::HashMap::<_, usize>::new();
        for call in agent.service.calls().into_iter().filter(|c| c.name == "notify") {
            *notifications.entry((call.key, call.event)).or_default() += 1;
        }
        let twice: Vec<_> = notifications.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{racers} racers: at-most-once calls made twice: {twice:?}");
        let low_scores = baseline.iter().filter(|o| o.payload["score"] == 1).count();
        println!(
            "{racers} racers: {fenced} fenced attempts, {} orphan output files, {} of {low_scores} notifications made",
            out_files.len() - referenced.len(),
            notifications.len()
        );
    }
}
