//! Per-key state: an LSM of immutable sorted runs, listed newest first by the manifest.
//!
//! See `docs/storage-format.md` ("Per-key state").

mod cache;
mod compaction;
pub mod run;

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

pub use cache::RunCache;
pub(crate) use compaction::{compact, plan_compaction};

use crate::error::{Error, Result};
use crate::manifest::{PartitionDir, RunRef};

/// Reads the current snapshots of `keys`: for each, the value in the newest run holding it,
/// `None` for a key never written or deleted.
pub(crate) async fn read_snapshots(
    dir: &PartitionDir,
    runs: &[RunRef],
    keys: &[String],
    cache: &RunCache,
) -> Result<HashMap<String, Option<Bytes>>> {
    let mut found: HashMap<String, Option<Bytes>> = HashMap::with_capacity(keys.len());
    let mut remaining: Vec<&String> = keys.iter().collect();
    for run in runs {
        if remaining.is_empty() {
            break;
        }
        let in_range: Vec<&String> = remaining
            .iter()
            .copied()
            .filter(|k| k.as_str() >= run.min_key.as_str() && k.as_str() <= run.max_key.as_str())
            .collect();
        if in_range.is_empty() {
            continue;
        }
        let index = cache.index(dir, run).await?;
        let mut by_block: BTreeMap<usize, (run::BlockRef, Vec<&String>)> = BTreeMap::new();
        for key in in_range.into_iter().filter(|k| index.may_contain(k.as_bytes())) {
            if let Some(block) = index.block_for(key.as_bytes()) {
                by_block.entry(block.index).or_insert_with(|| (block, Vec::new())).1.push(key);
            }
        }
        let blocks =
            futures::future::try_join_all(by_block.values().map(|(block, _)| cache.block(dir, run, *block))).await?;
        for ((_, (_, keys)), block) in by_block.iter().zip(blocks) {
            for key in keys {
                if let Some(value) = block.get(key.as_bytes()) {
                    found.insert((*key).clone(), value);
                }
            }
        }
        remaining.retain(|k| !found.contains_key(*k));
    }
    for key in remaining {
        found.insert(key.clone(), None);
    }
    Ok(found)
}

/// Builds a run from a batch's new snapshots (`None`: delete the key).
pub(crate) fn build_run(entries: &BTreeMap<String, Option<Bytes>>) -> Result<run::EncodedRun> {
    let mut builder = run::RunBuilder::new(16 * 1024, 10);
    for (key, value) in entries {
        builder
            .push(key.as_bytes(), value.as_deref())
            .map_err(|e| Error::InvalidInput(format!("state of key `{key}`: {e}")))?;
    }
    Ok(builder.finish())
}

/// The manifest entry of a run written at `path`.
pub(crate) fn run_ref(path: String, level: u32, run: &run::EncodedRun) -> RunRef {
    let layout = &run.layout;
    RunRef {
        path,
        level,
        key_count: layout.key_count,
        size: layout.size,
        min_key: String::from_utf8_lossy(&layout.min_key).into_owned(),
        max_key: String::from_utf8_lossy(&layout.max_key).into_owned(),
        index_offset: layout.index_offset,
        index_len: layout.index_len,
    }
}
