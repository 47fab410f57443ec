//! What the `weir` tests share: running the real binary, temporary stores, DuckDB.

#![allow(dead_code)]

pub mod provider;
pub mod scoring;

use std::borrow::BorrowMut;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `weir` command with a deterministic environment: the offline model, no webhook.
pub fn weir(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .env("WEIR_MODEL_PROVIDER", "offline")
        .env_remove("WEIR_NOTIFY_URL")
        .env_remove("WEIR_STORE")
        .env_remove("WEIR_ENGINE_SETTINGS");
    command
}

/// Runs `weir` and returns its standard output, failing the test with its standard error.
pub fn ok(mut command: impl BorrowMut<Command>) -> String {
    let command = command.borrow_mut();
    let out = command.output().expect("weir runs");
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `weir`, which must fail, and returns its one-line error.
pub fn fails(mut command: impl BorrowMut<Command>) -> String {
    let command = command.borrow_mut();
    let out: Output = command.output().expect("weir runs");
    assert!(!out.status.success(), "{command:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr).expect("UTF-8 errors");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr.trim().to_string()
}

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weir-cli-{name}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file or folder in it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The `file://` URL of a store in it.
    pub fn store(&self, name: &str) -> String {
        format!("file://{}", self.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The first `n` shared product reviews as a JSON lines file in `dir`.
pub fn shared_reviews(dir: &TempDir, n: usize) -> PathBuf {
    let path = weir_tests::reviews_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().take(n).collect();
    let file = dir.join("reviews.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    file
}

/// The committed outputs `weir outputs` prints, parsed.
pub fn outputs(store: &str) -> Vec<serde_json::Value> {
    let text = ok(weir(&["outputs", "--store", store]));
    text.lines().map(|l| serde_json::from_str(l).expect("an output is JSON")).collect()
}

/// Rows DuckDB returns for `query`, `|`-separated (DuckDB from `.ci/venv`, which `.ci/run`
/// installs, or `$WEIR_PYTHON`).
pub fn duckdb(query: &str) -> String {
    let python = std::env::var_os("WEIR_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/venv/bin/python");
        assert!(venv.exists(), "no {}: run `.ci/run`, which installs DuckDB there", venv.display());
        venv
    });
    let script = format!("import duckdb\nfor row in duckdb.sql({query:?}).fetchall():\n    print(*row, sep='|')");
    let out = Command::new(python).args(["-c", &script]).output().expect("python runs");
    assert!(out.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
