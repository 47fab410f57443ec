//! Knowledge bases on every backend (memory, a directory, moto's S3): adding is incremental
//! and idempotent, BM25 finds the runbook, filters and top-k hold, and bad input is refused
//! by name with nothing half-written visible.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use weir_engine::Storage;
use weir_models::{EmbeddingModel, ModelError};
use weir_search::{
    AddOptions, DocumentKind, KnowledgeBase, MetadataFilter, SearchError, SearchMode, SearchQuery, SourceDocument,
    read_paths,
};
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;

const BACKENDS: [Backend; 3] = [Backend::Memory, Backend::File, Backend::S3];

fn runbooks_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions/ops-diagnosis/runbooks"))
}

fn runbooks() -> Vec<SourceDocument> {
    let documents = read_paths(&[runbooks_dir()]).unwrap();
    assert_eq!(documents.len(), 12, "the example ships a dozen runbooks");
    documents
}

fn file_name(document: &str) -> &str {
    document.rsplit('/').next().unwrap()
}

async fn top_document(kb: &KnowledgeBase, query: SearchQuery) -> String {
    let hits = kb.search(&query).await.unwrap();
    file_name(&hits.first().unwrap_or_else(|| panic!("nothing found for `{}`", query.text)).chunk.document).to_string()
}

#[tokio::test]
async fn bm25_finds_the_runbook_on_every_backend() {
    for backend in BACKENDS {
        let (storage, _dir) = fresh_storage(backend);
        let kb = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        let report = kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
        assert_eq!((report.added, report.version), (12, 1), "{backend:?}");

        // A fresh handle, as a cold function would open it.
        let cold = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        for (query, runbook) in [
            ("No space left on device while writing shuffle spill", "disk-full.md"),
            ("remaining connection slots are reserved for non-replication superuser", "database-connections.md"),
            ("x509: certificate has expired", "certificate-expired.md"),
            ("NVRM Xid 79 GPU has fallen off the bus", "gpu-xid.md"),
            ("SlowDown: Please reduce your request rate", "s3-throttling.md"),
        ] {
            assert_eq!(
                top_document(&cold, SearchQuery::new(query).mode(SearchMode::Bm25)).await,
                runbook,
                "{backend:?}"
            );
        }
        let hits =
            cold.search(&SearchQuery::new("OutOfMemoryError exit code 137 memory limit").top_k(2)).await.unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].chunk.metadata["section"], "Job killed for running out of memory > Signals");

        let listed = KnowledgeBase::list(&storage).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].name.as_str(), listed[0].documents, listed[0].embedding_model.clone()),
            ("runbooks", 12, None)
        );
    }
}

#[tokio::test]
async fn unchanged_documents_cost_nothing_changed_ones_replace_their_chunks_and_sync_removes() {
    for backend in BACKENDS {
        let (storage, _dir) = fresh_storage(backend);
        let kb = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
        let manifests = storage.list_after(&storage.path("kb/runbooks/manifest"), None).await.unwrap().len();

        let again = kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
        assert_eq!((again.unchanged, again.chunks_written, again.version), (12, 0, 1), "{backend:?}");
        let after = storage.list_after(&storage.path("kb/runbooks/manifest"), None).await.unwrap().len();
        assert_eq!(after, manifests, "an add that changes nothing writes nothing");

        let mut changed = runbooks();
        let disk = changed.iter_mut().find(|d| d.id.ends_with("disk-full.md")).unwrap();
        disk.text = "# Node volume full\nThe zircon quota tripped: purge the scratch bucket.".into();
        let report = kb.add(changed.clone(), AddOptions::default(), &()).await.unwrap();
        assert_eq!((report.replaced, report.unchanged, report.version), (1, 11, 2));
        assert_eq!(top_document(&kb, SearchQuery::new("zircon quota")).await, "disk-full.md");
        let old = kb.search(&SearchQuery::new("No space left on device")).await.unwrap();
        assert!(old.iter().all(|hit| !hit.chunk.text.contains("No space left")), "the old chunks are gone");

        changed.retain(|d| !d.id.ends_with("gpu-xid.md"));
        let kept = kb.add(changed.clone(), AddOptions::default(), &()).await.unwrap();
        assert_eq!(kept.removed, 0, "without sync, a document not given stays");
        let synced = kb.add(changed, AddOptions { sync: true, ..AddOptions::default() }, &()).await.unwrap();
        assert_eq!((synced.removed, synced.version), (1, 3));
        let gone = kb.search(&SearchQuery::new("Xid fallen off the bus")).await.unwrap();
        assert!(gone.iter().all(|hit| !hit.chunk.document.ends_with("gpu-xid.md")), "{gone:?}");
        assert_eq!(kb.summary().await.unwrap().unwrap().documents, 11);
    }
}

#[tokio::test]
async fn filters_restrict_and_top_k_bounds_what_is_found() {
    let kb = KnowledgeBase::new(Storage::from_url("memory://").unwrap(), "tickets").unwrap();
    let tickets = (0..30).map(|i| {
        let team = if i % 3 == 0 { "payments" } else { "search" };
        SourceDocument::new(format!("t{i}"), DocumentKind::Text, format!("ticket {i}: the checkout timed out"))
            .with_metadata("team", team)
    });
    kb.add(tickets.collect(), AddOptions::default(), &()).await.unwrap();
    let query = SearchQuery::new("checkout timed out").top_k(4);
    assert_eq!(kb.search(&query).await.unwrap().len(), 4);
    let payments = query.clone().top_k(100).filter(MetadataFilter::parse(["team=payments"]).unwrap());
    let hits = kb.search(&payments).await.unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|hit| hit.chunk.metadata["team"] == "payments"));
    let nobody = query.filter(MetadataFilter::parse(["team=ops"]).unwrap());
    assert!(kb.search(&nobody).await.unwrap().is_empty());
}

#[tokio::test]
async fn many_adds_are_compacted_into_one_segment_and_still_found() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let kb = KnowledgeBase::new(storage, "notes").unwrap();
    for i in 0..12 {
        let note =
            SourceDocument::new(format!("note{i}"), DocumentKind::Text, format!("note number{i} about topic{i}"));
        let report = kb.add(vec![note], AddOptions::default(), &()).await.unwrap();
        assert_eq!(report.compacted, i == 8, "the ninth segment triggers compaction, add {i}");
    }
    let summary = kb.summary().await.unwrap().unwrap();
    assert_eq!((summary.documents, summary.segments), (12, 4));
    for i in [0, 5, 11] {
        assert_eq!(top_document(&kb, SearchQuery::new(format!("topic{i}"))).await, format!("note{i}"));
    }
}

#[tokio::test]
async fn a_missing_knowledge_base_and_bad_names_are_refused_by_name() {
    let storage = Storage::from_url("memory://").unwrap();
    let kb = KnowledgeBase::new(storage.clone(), "nothing-here").unwrap();
    let error = kb.search(&SearchQuery::new("anything")).await.unwrap_err();
    assert!(matches!(&error, SearchError::MissingKnowledgeBase(name) if name == "nothing-here"), "{error}");
    assert!(error.to_string().contains("`nothing-here` does not exist"));
    assert!(matches!(KnowledgeBase::new(storage.clone(), "../etc"), Err(SearchError::InvalidName(_))));
    assert!(!kb.drop_all().await.unwrap());
}

#[tokio::test]
async fn unreadable_documents_are_named_and_nothing_is_added() {
    let dir = std::env::temp_dir().join(format!("weir-kb-unreadable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.md");
    let error = read_paths(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(&error, SearchError::Unreadable { path, .. } if path.ends_with("missing.md")), "{error}");

    let binary = dir.join("binary.txt");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x81]).unwrap();
    let error = read_paths(&[binary]).unwrap_err();
    assert!(error.to_string().contains("binary.txt") && error.to_string().contains("UTF-8"), "{error}");

    let jsonl = dir.join("faq.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"q1\", \"text\": \"How do I reset?\", \"lang\": \"en\"}\n\n{\"title\": \"no text\"}\n",
    )
    .unwrap();
    let error = read_paths(std::slice::from_ref(&jsonl)).unwrap_err();
    assert!(error.to_string().contains("faq.jsonl:3") && error.to_string().contains("`text`"), "{error}");

    std::fs::write(&jsonl, "{\"id\": \"q1\", \"text\": \"How do I reset?\", \"lang\": \"en\", \"votes\": 3}\n")
        .unwrap();
    let documents = read_paths(&[jsonl]).unwrap();
    assert_eq!(documents.len(), 1);
    assert!(documents[0].id.ends_with("faq.jsonl#q1"));
    assert_eq!((documents[0].metadata["lang"].as_str(), documents[0].metadata["votes"].as_str()), ("en", "3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_corrupt_segment_or_manifest_is_named() {
    for backend in [Backend::Memory, Backend::File] {
        let (storage, _dir) = fresh_storage(backend);
        let kb = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
        let objects = storage.list_after(&storage.path("kb/runbooks/segment"), None).await.unwrap();
        let segment = &objects[0].location;
        let mut bytes = storage.get(segment).await.unwrap().unwrap().to_vec();
        bytes.truncate(bytes.len() / 2);
        storage.put(segment, bytes.into()).await.unwrap();
        let fresh = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        let error = fresh.search(&SearchQuery::new("disk")).await.unwrap_err();
        match &error {
            SearchError::Corrupt { kb, object, reason } => {
                assert_eq!(kb, "runbooks");
                assert!(segment.as_ref().ends_with(object.as_str()), "{object}");
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }

        let manifest = storage.path("kb/runbooks/manifest/00000000000000000001");
        storage.put(&manifest, "{\"format\": 1, \"seq\": ".into()).await.unwrap();
        let error = fresh.search(&SearchQuery::new("disk")).await.unwrap_err();
        assert!(
            matches!(&error, SearchError::Corrupt { object, .. } if object.ends_with("00000000000000000001")),
            "{error}"
        );
    }
}

/// An embedding model whose vectors count letters: enough to search by, with any length.
#[derive(Debug)]
struct LetterCounts {
    name: &'static str,
    dimensions: usize,
}

#[async_trait]
impl EmbeddingModel for LetterCounts {
    fn name(&self) -> &str {
        self.name
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = vec![0.0; self.dimensions];
                text.bytes()
                    .filter(u8::is_ascii_lowercase)
                    .for_each(|b| vector[(b - b'a') as usize % self.dimensions] += 1.0);
                vector
            })
            .collect())
    }
}

#[tokio::test]
async fn a_dimension_or_model_mismatch_is_refused_and_leaves_the_knowledge_base_as_it_was() {
    let storage = Storage::from_url("memory://").unwrap();
    let letters = |name, dimensions| -> Arc<dyn EmbeddingModel> { Arc::new(LetterCounts { name, dimensions }) };
    let kb = KnowledgeBase::new(storage.clone(), "runbooks").unwrap().with_embedder(letters("letters", 26));
    kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
    let summary = kb.summary().await.unwrap().unwrap();
    assert_eq!((summary.embedding_model.as_deref(), summary.dimensions), (Some("letters"), Some(26)));

    let error = kb.search(&SearchQuery::new("disk").vector(vec![1.0; 3])).await.unwrap_err();
    assert!(
        matches!(error, SearchError::DimensionMismatch { expected: 26, got: 3, ref what, .. } if what == "the query vector"),
        "{error}"
    );

    let shorter = KnowledgeBase::new(storage.clone(), "runbooks").unwrap().with_embedder(letters("letters", 20));
    let extra = SourceDocument::new("new.md", DocumentKind::Markdown, "# New\nsomething");
    let error = shorter.add(vec![extra.clone()], AddOptions::default(), &()).await.unwrap_err();
    assert!(
        matches!(&error, SearchError::DimensionMismatch { expected: 26, got: 20, what, .. } if what.contains("new.md")),
        "{error}"
    );

    let other = KnowledgeBase::new(storage.clone(), "runbooks").unwrap().with_embedder(letters("other", 26));
    let error = other.add(vec![extra.clone()], AddOptions::default(), &()).await.unwrap_err();
    assert!(matches!(&error, SearchError::ModelMismatch { problem, .. } if problem.contains("`letters`")), "{error}");
    let words_only = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
    assert!(matches!(
        words_only.add(vec![extra], AddOptions::default(), &()).await,
        Err(SearchError::ModelMismatch { .. })
    ));
    let error = words_only.search(&SearchQuery::new("disk").mode(SearchMode::Vector)).await.unwrap_err();
    assert!(error.to_string().contains("needs its embedding model `letters`"), "{error}");

    assert_eq!(kb.summary().await.unwrap().unwrap(), summary, "nothing of the refused adds is visible");
    let orphans = storage.list_after(&storage.path("kb/runbooks/segment"), None).await.unwrap();
    assert_eq!(orphans.len(), 1, "a refused add wrote no segment");
}

#[tokio::test]
async fn of_two_racing_writers_one_commits_and_the_other_is_told_to_run_again() {
    for backend in [Backend::File, Backend::S3] {
        let (storage, _dir) = fresh_storage(backend);
        let first = KnowledgeBase::new(storage.clone(), "race").unwrap();
        first
            .add(vec![SourceDocument::new("a", DocumentKind::Text, "alpha")], AddOptions::default(), &())
            .await
            .unwrap();
        let writers = (0..2).map(|i| {
            let kb = KnowledgeBase::new(storage.clone(), "race").unwrap();
            async move {
                kb.add(
                    vec![SourceDocument::new(format!("w{i}"), DocumentKind::Text, "beta")],
                    AddOptions::default(),
                    &(),
                )
                .await
            }
        });
        let results = futures::future::join_all(writers).await;
        let committed = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results.iter().filter(|r| matches!(r, Err(SearchError::Conflict { seq: 2, .. }))).count();
        // Both may also commit one after the other when the second lists after the first commits.
        assert!(committed >= 1 && committed + conflicts == 2, "{backend:?}: {results:?}");
        let summary = first.summary().await.unwrap().unwrap();
        assert_eq!(summary.documents, 1 + committed, "{backend:?}: only committed adds are visible");
    }
}

#[tokio::test]
async fn drop_removes_everything() {
    for backend in BACKENDS {
        let (storage, _dir) = fresh_storage(backend);
        let kb = KnowledgeBase::new(storage.clone(), "runbooks").unwrap();
        kb.add(runbooks(), AddOptions::default(), &()).await.unwrap();
        assert!(kb.drop_all().await.unwrap());
        assert!(storage.list_after(&storage.path("kb/runbooks"), None).await.unwrap().is_empty(), "{backend:?}");
        assert!(KnowledgeBase::list(&storage).await.unwrap().is_empty());
        assert!(matches!(kb.search(&SearchQuery::new("disk")).await, Err(SearchError::MissingKnowledgeBase(_))));
    }
}

#[tokio::test]
async fn collection_deletes_what_no_reader_needs_after_the_grace_and_nothing_before() {
    for backend in [Backend::File, Backend::S3] {
        let (storage, _dir) = fresh_storage(backend);
        let kb = KnowledgeBase::new(storage.clone(), "notes").unwrap();
        for i in 0..10 {
            let note = SourceDocument::new(format!("note{i}"), DocumentKind::Text, format!("note about topic{i}"));
            kb.add(vec![note], AddOptions::default(), &()).await.unwrap();
        }
        // Replace one note: its old chunk's segment is named by older manifests only.
        let changed = SourceDocument::new("note9", DocumentKind::Text, "note about something else");
        kb.add(vec![changed], AddOptions::default(), &()).await.unwrap();
        let count = |prefix: &'static str| {
            let storage = storage.clone();
            async move { storage.list_after(&storage.path(prefix), None).await.unwrap().len() }
        };
        let (manifests, segments) = (count("kb/notes/manifest").await, count("kb/notes/segment").await);
        assert_eq!((manifests, segments), (11, 11), "{backend:?}");
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;

        let within_grace = weir_search::collect(&kb, 20 * 60 * 1000, now_ms).await.unwrap();
        assert_eq!(
            within_grace,
            weir_search::CollectReport::default(),
            "{backend:?}: everything is younger than the grace"
        );

        let report = weir_search::collect(&kb, 0, now_ms + 1000).await.unwrap();
        let live = kb.summary().await.unwrap().unwrap().segments;
        assert_eq!(report.manifests, 10, "{backend:?}: all but the newest");
        assert_eq!(report.segments, 11 - live, "{backend:?}");
        assert_eq!((count("kb/notes/manifest").await, count("kb/notes/segment").await), (1, live));
        let fresh = KnowledgeBase::new(storage.clone(), "notes").unwrap();
        assert_eq!(top_document(&fresh, SearchQuery::new("topic3")).await, "note3");
        assert_eq!(top_document(&fresh, SearchQuery::new("something else")).await, "note9");
    }
}

#[test]
fn a_store_or_model_outage_is_unavailable_and_bad_input_is_not() {
    let down = weir_models::ModelError::Status { provider: "ollama".into(), status: 503, message: "busy".into() };
    assert!(SearchError::Model(down).is_unavailable());
    assert!(!SearchError::MissingKnowledgeBase("x".into()).is_unavailable());
    assert!(!SearchError::Corrupt { kb: "x".into(), object: "o".into(), reason: "r".into() }.is_unavailable());
}
