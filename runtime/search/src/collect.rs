//! Collection: deleting the manifests and segments of a knowledge base that no reader can
//! need any more, so that storage grows with what it holds, not with its history.

use std::collections::BTreeSet;

use weir_engine::Storage;

use crate::error::Result;
use crate::knowledge_base::KnowledgeBase;
use crate::layout;
use crate::manifest;

/// What a collection deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CollectReport {
    /// Superseded manifests.
    pub manifests: usize,
    /// Segments no kept manifest names (replaced, compacted, or written by an add that lost
    /// a race).
    pub segments: usize,
}

impl std::ops::AddAssign for CollectReport {
    fn add_assign(&mut self, other: CollectReport) {
        self.manifests += other.manifests;
        self.segments += other.segments;
    }
}

/// Collects every knowledge base under `storage` (`collect` each, on the same grace), as the
/// deployed collect function does on its schedule. A knowledge base that fails is named in the
/// error after the others are collected.
pub async fn collect_all(storage: &Storage, grace_ms: u64, now_ms: u64) -> Result<CollectReport> {
    let mut report = CollectReport::default();
    let mut failed = None;
    for summary in KnowledgeBase::list(storage).await? {
        let kb = KnowledgeBase::new(storage.clone(), &summary.name)?;
        match collect(&kb, grace_ms, now_ms).await {
            Ok(collected) => report += collected,
            Err(e) => {
                tracing::warn!(kb = summary.name, error = %e, "knowledge base not collected");
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Deletes what `kb` no longer needs, as of `now_ms` (ms since the epoch): every manifest
/// superseded more than `grace_ms` ago (the newest is always kept), and every segment that no
/// kept manifest names and that was written more than `grace_ms` ago.
///
/// A reader that listed the manifests just before a newer one was committed may still be
/// reading the older one's segments: the grace, longer than any reader runs (on Lambda, more
/// than the 15-minute limit), keeps them for it; and an add that has written its segment but
/// not yet its manifest is younger than the grace.
pub async fn collect(kb: &KnowledgeBase, grace_ms: u64, now_ms: u64) -> Result<CollectReport> {
    let storage = kb.storage();
    let name = kb.name();
    let prefix = storage.path(&layout::manifest_prefix(name));
    let mut manifests: Vec<(u64, object_store::ObjectMeta)> = storage
        .list_after(&prefix, None)
        .await?
        .into_iter()
        .filter_map(|meta| Some((layout::manifest_seq(meta.location.filename()?)?, meta)))
        .collect();
    manifests.sort_by_key(|(seq, _)| *seq);
    let Some(newest) = manifests.last().map(|(seq, _)| *seq) else { return Ok(CollectReport::default()) };
    let written_ms = |meta: &object_store::ObjectMeta| meta.last_modified.timestamp_millis().max(0) as u64;
    let old = |at_ms: u64| at_ms.saturating_add(grace_ms) <= now_ms;

    // A manifest is superseded when the next one is written.
    let mut kept = Vec::new();
    let mut retired = Vec::new();
    for (i, (seq, meta)) in manifests.iter().enumerate() {
        let superseded_at = manifests.get(i + 1).map(|(_, next)| written_ms(next));
        match superseded_at {
            Some(at) if *seq != newest && old(at) => retired.push(meta.location.clone()),
            _ => kept.push(*seq),
        }
    }
    let mut named = BTreeSet::new();
    for seq in kept {
        named.extend(manifest::read(storage, name, seq).await?.segments.into_iter().map(|s| s.path));
    }
    let segments = segments_to_delete(storage, name, &named, &old, &written_ms).await?;
    let report = CollectReport { manifests: retired.len(), segments: segments.len() };
    // Segments first: a manifest still listed keeps naming what it named until it goes.
    storage.delete_all(segments).await?;
    storage.delete_all(retired).await?;
    tracing::info!(kb = name, manifests = report.manifests, segments = report.segments, "knowledge base collected");
    Ok(report)
}

async fn segments_to_delete(
    storage: &Storage,
    name: &str,
    named: &BTreeSet<String>,
    old: &dyn Fn(u64) -> bool,
    written_ms: &dyn Fn(&object_store::ObjectMeta) -> u64,
) -> Result<Vec<object_store::path::Path>> {
    let root = storage.path("");
    let listed = storage.list_after(&storage.path(&layout::segment_prefix(name)), None).await?;
    Ok(listed
        .into_iter()
        .filter(|meta| {
            let relative = meta
                .location
                .prefix_match(&root)
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"));
            let relative = relative.unwrap_or_default();
            !named.contains(&relative) && old(written_ms(meta))
        })
        .map(|meta| meta.location)
        .collect())
}
