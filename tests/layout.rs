//! The storage format has one owner: no object name is formatted outside the engine's
//! layout module (issue 14). Scans the sources of every crate that touches the store for
//! string literals that name a folder or a file of the format.

use std::path::{Path, PathBuf};

/// The crates that read or write the store.
const SCANNED: [&str; 4] = ["runtime/engine/src", "runtime/cli/src", "runtime/emulator/src", "functions/lambda/src"];
/// The owner, and the test doubles that only wrap a store.
const EXEMPT: [&str; 2] = ["runtime/engine/src/layout.rs", "runtime/engine/src/store"];
/// Folders and extensions of the format, as they would appear in a string literal.
const NAMES: [&str; 17] = [
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
