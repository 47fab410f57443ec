//! Garbage collection: deletes what no manifest at or after the head can reach.
//!
//! See `docs/storage-format.md` ("Garbage collection") for the rules and why they are safe
//! while invocations run.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use object_store::ObjectMeta;
use xxhash_rust::xxh3::xxh3_64;

use crate::clock::Clock;
use crate::engine::EngineSettings;
use crate::error::Result;
use crate::layout;
use crate::log::EventLog;
use crate::manifest::{CommitKind, Manifest, PartitionDir, Writer};
use crate::position::Position;
use crate::storage::{Storage, relative_to};

/// What a collection deleted; reports add up (`total += report`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Superseded or orphaned state runs.
    pub runs: usize,
    /// Superseded or orphaned waits objects.
    pub waits: usize,
    /// Journal files of committed batches or failed invocations.
    pub journal_files: usize,
    /// Intent objects of at-most-once calls of committed events.
    pub intents: usize,
    /// Orphaned output, dead-letter and trace files.
    pub orphan_files: usize,
    /// Manifests past retention, with their outputs, dead letters and traces.
    pub manifests: usize,
    /// Log segments.
    pub segments: usize,
    /// Usage records of invocations (`weir cost`) past the outputs' retention.
    pub usage_records: usize,
}

impl std::ops::AddAssign for GcReport {
    fn add_assign(&mut self, report: GcReport) {
        self.runs += report.runs;
        self.waits += report.waits;
        self.journal_files += report.journal_files;
        self.intents += report.intents;
        self.orphan_files += report.orphan_files;
        self.manifests += report.manifests;
        self.segments += report.segments;
        self.usage_records += report.usage_records;
    }
}

fn older_than(object: &ObjectMeta, now_ms: u64, age_ms: u64) -> bool {
    let modified = object.last_modified.timestamp_millis().max(0) as u64;
    now_ms.saturating_sub(modified) > age_ms
}

/// Collects `agent`'s objects on `partition`, keeping what `settings` retain and nothing
/// younger than their grace period (refused below its floor).
pub async fn collect_partition(
    storage: &Storage,
    agent: &str,
    partition: u32,
    settings: &EngineSettings,
    clock: &dyn Clock,
) -> Result<GcReport> {
    settings.validate()?;
    let dir = &PartitionDir::new(storage.clone(), agent, partition)?;
    let mut report = GcReport::default();
    let Some(head) = dir.latest().await? else { return Ok(report) };
    let storage = dir.storage();
    let now = clock.now_ms();
    let old = |o: &ObjectMeta| older_than(o, now, settings.gc_grace_ms);
    let mut doomed = Vec::new();
    let folders =
        [layout::STATE, layout::OUTPUTS, layout::DEAD_LETTERS, layout::TRACES, layout::WAITS].map(|f| dir.path(f));
    let listed = futures::future::try_join_all(folders.iter().map(|folder| storage.list_after(folder, None))).await?;
    let [runs, outputs, dead_letters, traces, waits]: [Vec<ObjectMeta>; 5] = listed.try_into().expect("five folders");
    let head = release_dead_writer(dir, head, [&runs, &outputs, &dead_letters, &traces, &waits], settings, now).await?;

    // A run numbered after the head may belong to a commit still to come (a stalled
    // writer's): it is spared until collection has taken its number.
    for object in runs {
        let relative = relative_to(dir.base(), &object.location);
        let committed = file_seq(&object).is_some_and(|seq| seq <= head.seq);
        if old(&object) && committed && !head.runs.iter().any(|r| r.path == relative) {
            doomed.push(object.location);
            report.runs += 1;
        }
    }
    // Waits objects likewise: only the head's is live (docs/waits.md).
    for object in waits {
        let relative = relative_to(dir.base(), &object.location);
        let committed = file_seq(&object).is_some_and(|seq| seq <= head.seq);
        if old(&object) && committed && head.waits.as_ref().is_none_or(|w| w.path != relative) {
            doomed.push(object.location);
            report.waits += 1;
        }
    }

    // A waiting event is behind the head's position but not done: the intents of its calls
    // stay until the commit that ends its wait (docs/waits.md).
    let waiting: HashSet<Position> =
        crate::wait::load(dir, head.waits.as_ref()).await?.values().map(|s| s.event.event).collect();
    for (folder, count) in [(layout::JOURNAL, &mut report.journal_files), (layout::INTENTS, &mut report.intents)] {
        for object in storage.list_after(&dir.path(folder), None).await? {
            let relative = relative_to(dir.base(), &object.location);
            let position = layout::prefix_position(&relative);
            let waits = folder == layout::INTENTS && position.is_some_and(|p| waiting.contains(&p));
            if old(&object) && position.is_some_and(|p| p < head.position) && !waits {
                doomed.push(object.location);
                *count += 1;
            }
        }
    }

    // Manifests past retention go with their files, newest kept. Only a prefix of the chain
    // expires, so that the boundary never hides a manifest that is kept (invocations'
    // clocks may disagree about creation times).
    let boundary = dir.gc_boundary().await?;
    let mut new_boundary = boundary;
    let mut manifests: HashMap<u64, Option<Manifest>> = HashMap::from([(head.seq, Some(head.clone()))]);
    for seq in dir.manifest_seqs(None).await?.into_iter().filter(|&s| s < head.seq) {
        let manifest = dir.read_manifest(seq).await?;
        let past_retention =
            manifest.as_ref().is_some_and(|m| now.saturating_sub(m.created_at_ms) > settings.output_retention_ms);
        if !(past_retention || seq < boundary) {
            break;
        }
        if let Some(manifest) = &manifest {
            doomed.extend(manifest.commit_files().map(|f| dir.path(&f.path)));
        }
        doomed.push(dir.path(&layout::manifest(seq)));
        report.manifests += 1;
        new_boundary = seq + 1;
        manifests.insert(seq, manifest);
    }
    // The boundary goes first, so that a writer that stalled and re-creates one of these
    // numbers learns that its commit is void.
    if new_boundary > boundary {
        dir.set_gc_boundary(new_boundary).await?;
    }

    // Output, dead-letter and trace files that no manifest names: losers of a commit race,
    // or files of a stalled writer.
    for files in [outputs, dead_letters, traces] {
        for object in files {
            let Some(seq) = file_seq(&object) else { continue };
            if seq > head.seq || !old(&object) {
                continue;
            }
            let manifest = match manifests.entry(seq) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unknown) => unknown.insert(dir.read_manifest(seq).await?),
            };
            let relative = relative_to(dir.base(), &object.location);
            let named = manifest.as_ref().is_some_and(|m| m.commit_files().any(|f| f.path == relative));
            if !named {
                doomed.push(object.location);
                report.orphan_files += 1;
            }
        }
    }
    storage.delete_all(doomed).await?;
    tracing::info!(partition = dir.partition(), ?report, "collected");
    Ok(report)
}

/// Takes number `head.seq + 1` when files numbered after the head exist and all are older
/// than the grace period: their writer died between writing a commit's files and creating
/// its manifest, and on an idle partition no claim would ever take that number. Creating it
/// as a `release` of the head (same state, no lease) fences a writer that is only stalled,
/// and leaves those files at most the head's number, where collection takes them
/// (`docs/storage-format.md`, "Garbage collection"). Returns the head as it is after.
async fn release_dead_writer(
    dir: &PartitionDir,
    head: Manifest,
    listed: [&[ObjectMeta]; 5],
    settings: &EngineSettings,
    now: u64,
) -> Result<Manifest> {
    let mut after_head = listed.into_iter().flatten().filter(|o| file_seq(o).is_some_and(|seq| seq > head.seq));
    let Some(first) = after_head.next() else { return Ok(head) };
    if !std::iter::once(first).chain(after_head).all(|o| older_than(o, now, settings.gc_grace_ms)) {
        return Ok(head);
    }
    let seq = head.seq + 1;
    // Deterministic, so that a simulation replays it; unique enough among collections.
    let nonce = format!("{:016x}", xxh3_64(format!("collection\0{}\0{seq}\0{now}", dir.base()).as_bytes()));
    let mut release = head.successor(Writer { epoch: seq, nonce }, CommitKind::Release, now);
    release.lease_until_ms = None;
    if dir.commit(&release).await? {
        tracing::warn!(partition = dir.partition(), seq, "took the number of a commit its writer never made");
        return Ok(release);
    }
    // Another invocation took the number meanwhile: its commit decides.
    Ok(dir.latest().await?.unwrap_or(head))
}

/// Collects log segments that every agent has processed and that are past retention.
/// The newest segment of a partition is always kept: appenders find the tail from it.
/// Every agent's usage records older than the outputs' retention go too: they are what
/// `weir cost` reads beside the committed traces, which live as long.
pub async fn collect_log(log: &EventLog, settings: &EngineSettings, clock: &dyn Clock) -> Result<GcReport> {
    settings.validate()?;
    let mut report = GcReport::default();
    let agents = agent_names(log.storage()).await?;
    let now = clock.now_ms();
    for agent in &agents {
        report.usage_records +=
            crate::usage::collect_usage(log.storage(), agent, settings.output_retention_ms, now).await?;
    }
    for partition in 0..log.partitions() {
        let mut lowest: Option<Position> = None;
        for agent in &agents {
            let dir = PartitionDir::new(log.storage().clone(), agent, partition)?;
            let position = dir.latest().await?.map(|m| m.position).unwrap_or_default();
            lowest = Some(lowest.map_or(position, |l| l.min(position)));
        }
        let Some(lowest) = lowest else { continue };
        let segments = log.segment_objects(partition).await?;
        let Some(&(newest, _)) = segments.last() else { continue };
        let expired: Vec<u64> = segments
            .iter()
            .filter(|(seq, object)| {
                *seq < lowest.segment && *seq < newest && older_than(object, now, settings.log_retention_ms)
            })
            .map(|(seq, _)| *seq)
            .collect();
        log.delete_segments(partition, &expired).await?;
        report.segments += expired.len();
    }
    Ok(report)
}

async fn agent_names(storage: &Storage) -> Result<Vec<String>> {
    let listing = storage.store().list_with_delimiter(Some(&storage.path(layout::AGENTS))).await?;
    Ok(listing.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect())
}

/// The manifest sequence number a commit's file is named after.
fn file_seq(object: &ObjectMeta) -> Option<u64> {
    layout::commit_file_seq(object.location.filename()?)
}
