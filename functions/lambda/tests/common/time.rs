//! The passing of time, as collection sees it: objects in a directory store made older.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Every file under `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { found.extend(files(&path)) } else { found.push(path) }
    }
    found
}

/// Makes every object under `root` `by` older.
pub fn age(root: &Path, by: Duration) {
    for file in files(root) {
        let modified = file.metadata().unwrap().modified().unwrap();
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(modified.checked_sub(by).unwrap_or(SystemTime::UNIX_EPOCH)).unwrap();
    }
}
