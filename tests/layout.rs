//! The storage format has one owner. No object name is formatted outside the engine's
//! layout module: the sources of every crate that touches the store are scanned for string
//! literals that name a folder or a file of the format. And no crate that ships reads the
//! format's objects itself: the format's types are public only under the engine's
//! `test-support` feature, which only test and benchmark crates enable.

use std::path::{Path, PathBuf};

/// The crates that read or write the store.
const SCANNED: [&str; 5] =
    ["runtime/engine/src", "runtime/cli/src", "runtime/emulator/src", "functions/lambda/src", "runtime/search/src"];
/// The owners (the engine's, and the knowledge bases' own), and the test doubles that only
/// wrap a store.
const EXEMPT: [&str; 3] = ["runtime/engine/src/layout.rs", "runtime/search/src/layout.rs", "runtime/engine/src/store"];
/// Folders and extensions of the format, as they would appear in a string literal.
const NAMES: [&str; 18] = [
    "\"manifest/",
    "\"log/",
    "\"agents/",
    "\"state/",
    "\"journal/",
    "\"intent/",
    "\"out/",
    "\"dead/",
    "\"seg/",
    "\"batch/",
    "\"cursor",
    "\"dispatch/",
    "\"waits/",
    ".json\"",
    ".parquet\"",
    ".run\"",
    ".jnl\"",
    ".probe\"",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_object_name_is_formatted_outside_the_layout_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for dir in SCANNED {
        sources(&root.join(dir), &mut files);
    }
    let mut offences = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root).unwrap().to_string_lossy().to_string();
        if EXEMPT.iter().any(|exempt| relative.starts_with(exempt)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests below `#[cfg(test)]` may spell out names to check them.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let code_part = line.split("//").next().unwrap_or_default();
            if NAMES.iter().any(|name| code_part.contains(name)) {
                offences.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "object names formatted outside runtime/engine/src/layout.rs:\n{}",
        offences.join("\n")
    );
}

/// The crates that may enable `test-support`: they never ship in a function or the CLI.
const TEST_CRATES: [&str; 2] = ["tests/Cargo.toml", "runtime/bench/Cargo.toml"];

#[test]
fn only_test_crates_see_the_format_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = workspace.split("members = [").nth(1).unwrap().split(']').next().unwrap();
    let mut offences = Vec::new();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        let manifest = format!("{member}/Cargo.toml");
        let text = std::fs::read_to_string(root.join(&manifest)).unwrap();
        let enables = text.lines().any(|line| line.starts_with("weir-engine") && line.contains("test-support"));
        if enables && !TEST_CRATES.contains(&manifest.as_str()) {
            offences.push(manifest);
        }
    }
    assert!(offences.is_empty(), "crates that ship but enable weir-engine's test-support: {offences:?}");
}
