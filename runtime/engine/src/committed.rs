//! Reading what the commit chain made visible: commits, outputs, dead letters, state and the
//! journal. Everything outside the engine reads committed data through here, so that only
//! the engine knows how it is stored.

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::journal::{self, JournalEntry};
use crate::manifest::{CommitKind, FileRef, Manifest, PartitionDir, Totals};
use crate::outputs::{self, DeadLetter, Output};
use crate::position::Position;
use crate::storage::Storage;
use crate::trace::{self, EventTrace};
use crate::wait::WaitingKey;

/// Commits read at once.
const COMMITS_AT_ONCE: usize = 16;

/// One commit of a partition's chain, as a reader sees it.
///
/// The head commit is also where a claim can start ([`Engine::claim_from`](crate::Engine::claim_from)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    manifest: Manifest,
}

impl Commit {
    pub(crate) fn new(manifest: Manifest) -> Self {
        Commit { manifest }
    }

    /// The commit before any other: position zero, no state.
    pub fn genesis() -> Self {
        Commit::new(Manifest::genesis())
    }

    pub(crate) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub(crate) fn into_manifest(self) -> Manifest {
        self.manifest
    }

    /// Its sequence number in the chain.
    pub fn seq(&self) -> u64 {
        self.manifest.seq
    }

    /// Why it was written.
    pub fn kind(&self) -> CommitKind {
        self.manifest.kind
    }

    /// The first log position it had not processed.
    pub fn position(&self) -> Position {
        self.manifest.position
    }

    /// Events, outputs and dead letters over the chain up to and including this commit.
    pub fn totals(&self) -> Totals {
        self.manifest.totals
    }

    /// Outputs this commit wrote.
    pub fn outputs(&self) -> u64 {
        rows(&self.manifest.outputs)
    }

    /// Dead letters this commit wrote.
    pub fn dead_letters(&self) -> u64 {
        rows(&self.manifest.dead_letters)
    }

    /// State runs live after it.
    pub fn state_runs(&self) -> usize {
        self.manifest.runs.len()
    }

    /// Until when its writer's lease holds the partition, in milliseconds since the epoch.
    pub fn lease_until_ms(&self) -> Option<u64> {
        self.manifest.lease_until_ms
    }
}

fn rows(file: &Option<FileRef>) -> u64 {
    file.as_ref().map_or(0, |f| f.rows)
}

/// The outputs of one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOutputs {
    pub partition: u32,
    /// The commit's sequence number.
    pub seq: u64,
    /// Outputs the partition committed before this commit.
    pub outputs_before: u64,
    /// This commit's outputs, in the order it wrote them (none for most claims and releases).
    pub outputs: Vec<Output>,
}

/// Reads the committed results of one agent on one partition.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use futures::TryStreamExt;
///
/// let storage = weir_engine::Storage::from_url("memory://").unwrap();
/// let reader = weir_engine::CommittedReader::new(storage, "my-agent", 0).unwrap();
/// assert!(reader.outputs().await.unwrap().is_empty());
/// let commits: Vec<_> = reader.outputs_from(1).try_collect().await.unwrap();
/// assert!(commits.is_empty());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CommittedReader {
    dir: PartitionDir,
}

impl CommittedReader {
    /// A reader of `agent`'s commits on `partition`.
    pub fn new(storage: Storage, agent: &str, partition: u32) -> Result<Self> {
        Ok(CommittedReader { dir: PartitionDir::new(storage, agent, partition)? })
    }

    /// The valid commits, oldest first (those below collection's boundary are void).
    pub async fn commits(&self) -> Result<Vec<Commit>> {
        self.commits_after(None).try_collect().await
    }

    /// The head of the chain.
    pub async fn head(&self) -> Result<Option<Commit>> {
        Ok(self.dir.latest().await?.map(Commit::new))
    }

    /// The commits from sequence number `seq` on, each with its outputs, read ahead a few at
    /// a time: what a dispatcher delivers after its cursor.
    ///
    /// Commits are numbered from 1 without gaps, so the first one yielded is `seq` unless
    /// collection has taken it (outputs are kept for `output_retention_ms`).
    pub fn outputs_from(&self, seq: u64) -> BoxStream<'_, Result<CommittedOutputs>> {
        self.commits_after(seq.checked_sub(1))
            .map_ok(move |commit| async move {
                let manifest = commit.manifest();
                let outputs = match &manifest.outputs {
                    Some(file) => self.read_file(file, outputs::decode_outputs).await?,
                    None => Vec::new(),
                };
                Ok(CommittedOutputs {
                    partition: self.dir.partition(),
                    seq: manifest.seq,
                    outputs_before: manifest.totals.outputs.saturating_sub(commit.outputs()),
                    outputs,
                })
            })
            .try_buffered(COMMITS_AT_ONCE)
            .boxed()
    }

    /// Every committed output still retained, in commit order.
    pub async fn outputs(&self) -> Result<Vec<Output>> {
        let commits: Vec<CommittedOutputs> = self.outputs_from(0).try_collect().await?;
        Ok(commits.into_iter().flat_map(|c| c.outputs).collect())
    }

    /// Every committed dead letter still retained, in commit order.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let files = self.commits().await?.into_iter().filter_map(|c| c.into_manifest().dead_letters);
        self.read_files(files.collect(), outputs::decode_dead_letters).await
    }

    /// The trace of every committed event still retained, in log order
    /// (`docs/observability.md`).
    pub async fn traces(&self) -> Result<Vec<EventTrace>> {
        let files = self.commits().await?.into_iter().filter_map(|c| c.into_manifest().trace);
        self.read_files(files.collect(), trace::decode_traces).await
    }

    /// The traces of the committed events from `start` until before `until`, in log order:
    /// reads only the files of the commits whose batches took events in that range.
    pub async fn traces_between(&self, start: Position, until: Position) -> Result<Vec<EventTrace>> {
        let commits = self.commits().await?;
        let batches = commits.windows(2).filter(|pair| pair[0].position() < until && start < pair[1].position());
        let files = batches.filter_map(|pair| pair[1].manifest().trace.clone()).collect();
        let traces = self.read_files(files, trace::decode_traces).await?;
        Ok(traces.into_iter().filter(|t| start <= t.event && t.event < until).collect())
    }

    /// The trace of the event at `position`, if a retained commit holds one. Reads the file
    /// of the commit whose batch took the event, where nearly every event's trace is; an event
    /// that waited (docs/waits.md) was decided by a later batch, whose files are read next,
    /// oldest first, until it is found.
    pub async fn trace(&self, position: Position) -> Result<Option<EventTrace>> {
        let commits = self.commits().await?;
        let Some(took) =
            commits.windows(2).position(|pair| pair[0].position() <= position && position < pair[1].position())
        else {
            return Ok(None);
        };
        for commit in &commits[took + 1..] {
            let Some(file) = commit.manifest().trace.clone() else { continue };
            let traces = self.read_file(&file, trace::decode_traces).await?;
            if let Some(found) = traces.into_iter().find(|t| t.event == position) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The current state snapshot of `key`, as the head's runs hold it.
    pub async fn state(&self, key: &str) -> Result<Option<bytes::Bytes>> {
        let Some(head) = self.dir.latest().await? else { return Ok(None) };
        let cache = crate::state::RunCache::new(1 << 20);
        let mut found = crate::state::read_snapshots(&self.dir, &head.runs, &[key.to_string()], &cache).await?;
        Ok(found.remove(key).flatten())
    }

    /// The keys that wait at the head, in key order (docs/waits.md).
    pub async fn waits(&self) -> Result<Vec<WaitingKey>> {
        let Some(head) = self.dir.latest().await? else { return Ok(Vec::new()) };
        let waits = crate::wait::load(&self.dir, head.waits.as_ref()).await?;
        Ok(waits.iter().map(|(key, suspension)| WaitingKey::new(key, suspension)).collect())
    }

    /// The journal entries still kept (those of batches not yet collected) of `key`'s
    /// calls, in call order.
    pub async fn journal(&self, key: &str) -> Result<Vec<JournalEntry>> {
        let all = journal::load(&self.dir, Position::default()).await?;
        let mut entries: Vec<JournalEntry> = all.into_values().filter(|e| e.call.key == key).collect();
        entries.sort_by(|a, b| a.call.cmp(&b.call));
        Ok(entries)
    }

    /// The valid commits after sequence number `after` (all if `None`), oldest first.
    fn commits_after(&self, after: Option<u64>) -> BoxStream<'_, Result<Commit>> {
        let listed = async move {
            let boundary = self.dir.gc_boundary().await?;
            let seqs = self.dir.manifest_seqs(after).await?.into_iter().filter(move |s| *s >= boundary);
            let reads = futures::stream::iter(seqs).map(|seq| self.dir.read_manifest(seq));
            Ok::<_, Error>(reads.buffered(COMMITS_AT_ONCE).try_filter_map(|m| async move { Ok(m.map(Commit::new)) }))
        };
        futures::stream::once(listed).try_flatten().boxed()
    }

    /// Reads `files` a few at a time, their rows in the order of the files.
    async fn read_files<T: Send>(
        &self,
        // Owned, not borrowed: a closure over borrowed items makes the future not `Send`.
        files: Vec<FileRef>,
        decode: fn(bytes::Bytes) -> Result<Vec<T>, String>,
    ) -> Result<Vec<T>> {
        let reads = files.into_iter().map(|file| async move { self.read_file(&file, decode).await });
        let files: Vec<Vec<T>> = futures::stream::iter(reads).buffered(COMMITS_AT_ONCE).try_collect().await?;
        Ok(files.into_iter().flatten().collect())
    }

    async fn read_file<T>(&self, file: &FileRef, decode: fn(bytes::Bytes) -> Result<Vec<T>, String>) -> Result<Vec<T>> {
        let path = self.dir.path(&file.path);
        let bytes =
            self.dir.storage().get(&path).await?.ok_or_else(|| Error::corrupt(&path, "committed file is missing"))?;
        decode(bytes).map_err(|e| Error::corrupt(&path, e))
    }
}
