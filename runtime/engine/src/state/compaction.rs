//! Size-tiered compaction of state runs.
//!
//! Runs are listed newest first and their levels ascend along the list, so the runs of one
//! level are contiguous and merging them never reorders versions of a key.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::cache::RunCache;
use super::run;
use crate::error::{Error, Result};
use crate::manifest::{PartitionDir, RunRef};

/// The runs to merge next: the lowest level holding at least `fanout` runs.
pub(crate) fn plan_compaction(runs: &[RunRef], fanout: usize) -> Option<std::ops::Range<usize>> {
    let fanout = fanout.max(2);
    let mut start = 0;
    while start < runs.len() {
        let level = runs[start].level;
        let end = start + runs[start..].iter().take_while(|r| r.level == level).count();
        if end - start >= fanout {
            return Some(start..end);
        }
        start = end;
    }
    None
}

/// Merges `runs[range]` into one run (or none, when only tombstones remain) of the next level.
///
/// Returns the encoded run, if any; the caller writes it and commits the new run list.
pub(crate) async fn compact(
    dir: &PartitionDir,
    runs: &[RunRef],
    range: std::ops::Range<usize>,
    cache: &RunCache,
) -> Result<Option<(u32, run::EncodedRun)>> {
    let includes_oldest = range.end == runs.len();
    let level = runs[range.start].level + 1;
    let selected = &runs[range];
    let contents = futures::future::try_join_all(selected.iter().map(|r| cache.whole(dir, r))).await?;
    let mut merged: BTreeMap<Bytes, Option<Bytes>> = BTreeMap::new();
    // Newest first: the first version of a key seen wins.
    for (run_ref, bytes) in selected.iter().zip(contents) {
        for (key, value) in run::read_all(&bytes).map_err(|e| Error::corrupt(&run_ref.path, e))? {
            merged.entry(key).or_insert(value);
        }
    }
    let mut builder = run::RunBuilder::new(16 * 1024, 10);
    for (key, value) in &merged {
        if value.is_none() && includes_oldest {
            continue;
        }
        builder.push(key, value.as_deref()).map_err(|e| Error::corrupt(dir.base(), e))?;
    }
    if builder.is_empty() {
        return Ok(None);
    }
    Ok(Some((level, builder.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(level: u32) -> RunRef {
        RunRef {
            path: format!("l{level}"),
            level,
            key_count: 1,
            size: 1,
            min_key: "a".into(),
            max_key: "z".into(),
            index_offset: 0,
            index_len: 0,
        }
    }

    #[test]
    fn plans_the_lowest_full_level() {
        let runs: Vec<_> = [0, 0, 1, 1, 1, 1, 2].into_iter().map(run).collect();
        assert_eq!(plan_compaction(&runs, 4), Some(2..6));
        assert_eq!(plan_compaction(&runs, 2), Some(0..2));
        assert_eq!(plan_compaction(&runs[..2], 4), None);
    }
}
