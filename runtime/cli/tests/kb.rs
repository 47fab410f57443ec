//! `weir kb` as a user runs it: add a directory of runbooks (again: nothing to do), change
//! one, sync away another, search with a filter, list, drop; and one-line errors.

mod common;

use common::{TempDir, fails, ok, weir};

fn copy_runbooks(dir: &TempDir) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions/ops-diagnosis/runbooks");
    let target = dir.join("runbooks");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
    }
    target
}

#[test]
fn add_search_list_and_drop_a_knowledge_base() {
    let dir = TempDir::new("kb");
    let runbooks = copy_runbooks(&dir);
    let store = dir.store("store");
    let runbooks = runbooks.to_str().unwrap();
    let kb = |args: &[&str]| {
        let mut command = weir(&["--store", &store, "kb"]);
        command.args(args).env_remove("WEIR_EMBEDDING_MODEL_DIR");
        command
    };

    let added = ok(kb(&["add", "runbooks", runbooks]));
    assert!(added.contains("version 1: 12 added"), "{added}");
    let again = ok(kb(&["add", "runbooks", runbooks]));
    assert!(again.contains("version 1: 0 added, 0 replaced, 12 unchanged, 0 removed; 0 chunks written"), "{again}");

    let found = ok(kb(&["search", "runbooks", "remaining connection slots are reserved", "--top-k", "1"]));
    assert!(found.lines().nth(1).unwrap().contains("database-connections.md"), "{found}");
    let json = ok(kb(&[
        "search",
        "runbooks",
        "kubectl",
        "--top-k",
        "50",
        "--json",
        "--filter",
        "section=Executor heartbeat timeout > Remediation",
    ]));
    let hits: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(hits.len(), 1, "{json}");
    assert!(hits[0]["chunk"]["document"].as_str().unwrap().ends_with("heartbeat-timeout.md"));

    std::fs::write(dir.join("runbooks/oom.md"), "# Out of memory\nRaise the quokka limit.").unwrap();
    std::fs::remove_file(dir.join("runbooks/gpu-xid.md")).unwrap();
    let synced = ok(kb(&["add", "runbooks", runbooks, "--sync"]));
    assert!(synced.contains("version 2: 0 added, 1 replaced, 10 unchanged, 1 removed; 1 chunks written"), "{synced}");
    assert!(ok(kb(&["search", "runbooks", "quokka"])).contains("oom.md"));

    let listed = ok(kb(&["list"]));
    let row = listed.lines().find(|l| l.starts_with("runbooks")).unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["runbooks", "2", "11", "41", "2", "none", "(BM25)"],
        "{listed}"
    );

    let collected = ok(kb(&["gc", "runbooks", "--grace-secs", "0"]));
    assert!(collected.contains("deleted 1 manifests, 0 segments"), "{collected}");
    assert!(ok(kb(&["search", "runbooks", "quokka"])).contains("oom.md"), "still found after collection");

    assert!(ok(kb(&["drop", "runbooks"])).contains("dropped"));
    let error = fails(kb(&["search", "runbooks", "disk"]));
    assert!(error.contains("knowledge base `runbooks` does not exist"), "{error}");
}

#[test]
fn bad_input_is_one_line_naming_it() {
    let dir = TempDir::new("kb-errors");
    let store = dir.store("store");
    let kb = |args: &[&str]| {
        let mut command = weir(&["--store", &store, "kb"]);
        command.args(args).env_remove("WEIR_EMBEDDING_MODEL_DIR");
        command
    };
    let missing = dir.join("nowhere.md");
    let error = fails(kb(&["add", "notes", missing.to_str().unwrap()]));
    assert!(error.contains("cannot read document") && error.contains("nowhere.md"), "{error}");
    let error = fails(kb(&["add", "Bad/Name", dir.path().to_str().unwrap()]));
    assert!(error.contains("invalid knowledge base name `Bad/Name`"), "{error}");
    // A usage error is clap's: exit code 2 and its usage hint.
    let usage = kb(&["search", "notes", "x", "--mode", "fuzzy"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("`fuzzy` is not one of auto, bm25, vector, hybrid"));
    let error = fails(kb(&["add", "notes", dir.path().to_str().unwrap(), "--model-dir", missing.to_str().unwrap()]));
    assert!(error.contains("config.json"), "{error}");
}

/// `weir kb add` and `search` against an AWS S3 Vectors index (the fake of its wire format),
/// with real embeddings: runbooks put, found by meaning with a filter, and errors in one line.
#[test]
fn runbooks_go_into_an_s3_vectors_index_and_are_found_by_meaning() {
    let model = std::env::var("WEIR_MINILM_DIR").expect(
        "WEIR_MINILM_DIR is not set: run `.ci/run`'s install part, which unpacks all-MiniLM-L6-v2 into .ci/models",
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = runtime.block_on(weir_tests::fake_s3_vectors::FakeS3Vectors::start());
    service.create_index("ops-vectors", "runbooks", 384, "cosine", &["text"]);
    let dir = TempDir::new("kb-s3-vectors");
    let runbooks = copy_runbooks(&dir);
    let kb = |args: &[&str]| {
        let mut command = weir(&["--store", &dir.store("store"), "kb"]);
        command
            .args(args)
            .args(["--s3-vectors", "ops-vectors", "--model-dir", &model])
            .env("AWS_ENDPOINT_URL_S3VECTORS", service.url())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE");
        command
    };

    let added = ok(kb(&["add", "runbooks", runbooks.to_str().unwrap()]));
    assert!(added.contains("s3vectors://ops-vectors/runbooks: 12 documents"), "{added}");
    let keys = service.keys("ops-vectors", "runbooks");
    assert!(keys.iter().any(|k| k.ends_with("disk-full.md#0")), "{keys:?}");

    let found = ok(kb(&["search", "runbooks", "the node ran out of disk space", "--top-k", "1", "--json"]));
    let hit: serde_json::Value = serde_json::from_str(found.lines().next().unwrap()).unwrap();
    assert!(hit["metadata"]["document"].as_str().unwrap().ends_with("disk-full.md"), "{found}");
    let section = "Job killed for running out of memory > Remediation";
    let filtered = ok(kb(&["search", "runbooks", "disk", "--json", "--filter", &format!("section={section}")]));
    for line in filtered.lines() {
        let hit: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(hit["metadata"]["section"], section, "{filtered}");
    }

    let error = fails(kb(&["search", "nowhere", "disk"]));
    assert!(error.contains("s3vectors://ops-vectors/nowhere") && error.contains("does not exist"), "{error}");
    let error = fails(kb(&["add", "runbooks", runbooks.to_str().unwrap(), "--sync"]));
    assert!(error.contains("--sync"), "{error}");
    drop(service);
}
