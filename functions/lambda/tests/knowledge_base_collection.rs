//! The deployed collect function collects the knowledge bases under its store as `weir kb gc`
//! does, on the engine settings' grace: nothing superseded or written within it, then the
//! superseded manifest and the segment no kept manifest names; the knowledge base still
//! answers with what it holds.

use std::path::Path;
use std::time::{Duration, SystemTime};

use weir_engine::{EngineSettings, EventLog, Storage};
use weir_functions::collect::CollectFunction;
use weir_functions::config::CollectConfig;
use weir_functions::work::{Deadline, PartitionRequest};
use weir_search::{AddOptions, KnowledgeBase, SearchQuery, read_paths};
use weir_tests::backends::tempfile_guard::TempDir;

mod common;

use common::time::age;

fn write_notes(dir: &Path, words: &str) {
    for name in ["disk", "memory", "network"] {
        std::fs::write(dir.join(format!("{name}.md")), format!("# {name}\n\n{name} {words}\n")).unwrap();
    }
}

async fn collect(storage: &Storage) -> weir_functions::collect::CollectReport {
    let config = CollectConfig {
        storage: storage.clone(),
        agent: "scorer".into(),
        settings: EngineSettings::default(),
        deadline_margin: Duration::from_secs(1),
    };
    let deadline = Deadline::new(SystemTime::now() + Duration::from_secs(300), Duration::from_secs(1));
    CollectFunction::new(config).unwrap().handle(PartitionRequest::default(), deadline).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collect_function_collects_knowledge_bases_after_the_grace() {
    let (store, notes) = (TempDir::new(), TempDir::new());
    let storage = Storage::from_url(&format!("file://{}", store.path().display())).unwrap();
    EventLog::create(storage.clone(), 2).await.unwrap();
    let kb = KnowledgeBase::new(storage.clone(), "notes").unwrap();
    write_notes(notes.path(), "quokka");
    kb.add(read_paths(&[notes.path().to_path_buf()]).unwrap(), AddOptions::default(), &()).await.unwrap();
    // Every document changed twice: dead chunks outnumber live ones, so the third add
    // compacts into one new segment, and the first two are named by superseded manifests only.
    for words in ["numbat", "wombat"] {
        write_notes(notes.path(), words);
        kb.add(read_paths(&[notes.path().to_path_buf()]).unwrap(), AddOptions::default(), &()).await.unwrap();
    }
    assert_eq!(kb.summary().await.unwrap().unwrap().segments, 1, "compacted");

    let within = collect(&storage).await;
    assert_eq!(within.knowledge_bases, weir_search::CollectReport::default(), "nothing within the grace");

    age(store.path(), Duration::from_millis(EngineSettings::default().gc_grace_ms) + Duration::from_secs(60));
    let after = collect(&storage).await;
    assert_eq!(after.knowledge_bases, weir_search::CollectReport { manifests: 2, segments: 2 });
    let again = collect(&storage).await;
    assert_eq!(again.knowledge_bases, weir_search::CollectReport::default(), "nothing left to collect");

    let hits = kb.search(&SearchQuery::new("wombat")).await.unwrap();
    assert_eq!(hits.len(), 3, "the knowledge base answers with what it holds");
    assert!(kb.search(&SearchQuery::new("quokka")).await.unwrap().is_empty());
    assert!(kb.search(&SearchQuery::new("numbat")).await.unwrap().is_empty());
}
