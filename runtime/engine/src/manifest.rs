//! The commit chain: one manifest object per commit, created with create-if-absent.

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::budget::PartitionSpend;
use crate::error::{Error, Result};
use crate::layout;
use crate::position::Position;
use crate::storage::Storage;
pub use crate::wait::WaitsRef;

/// The objects of one agent's processing of one partition: `agents/<agent>/p<P>/`.
#[derive(Debug, Clone)]
pub struct PartitionDir {
    storage: Storage,
    base: Path,
    partition: u32,
}

impl PartitionDir {
    /// The directory of `agent` for `partition`; the agent name must be a plain path segment.
    pub fn new(storage: Storage, agent: &str, partition: u32) -> Result<Self> {
        validate_agent_name(agent)?;
        let base = storage.path(&layout::partition_dir(agent, partition));
        Ok(PartitionDir { storage, base, partition })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// A path relative to this directory.
    pub fn path(&self, relative: &str) -> Path {
        relative.split('/').fold(self.base.clone(), |p, part| p.join(part))
    }

    /// The directory itself.
    pub fn base(&self) -> &Path {
        &self.base
    }

    fn manifest_path(&self, seq: u64) -> Path {
        self.path(&layout::manifest(seq))
    }

    /// Reads manifest `seq`; `None` if absent.
    pub async fn read_manifest(&self, seq: u64) -> Result<Option<Manifest>> {
        let path = self.manifest_path(seq);
        let Some(bytes) = self.storage.get(&path).await? else { return Ok(None) };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
        if manifest.format != 1 || manifest.seq != seq {
            return Err(Error::corrupt(
                &path,
                format!("format {} seq {} in a file named {seq}", manifest.format, manifest.seq),
            ));
        }
        Ok(Some(manifest))
    }

    /// The sequence numbers of the manifests present after `after` (all if `None`), in order.
    pub async fn manifest_seqs(&self, after: Option<u64>) -> Result<Vec<u64>> {
        let offset = after.map(|s| self.manifest_path(s));
        let objects = self.storage.list_after(&self.path(layout::MANIFESTS), offset.as_ref()).await?;
        Ok(manifest_seqs(&objects))
    }

    /// The sequence numbers of all manifests, in order, if one listing page holds them.
    async fn manifest_seqs_in_one_page(&self) -> Result<Option<Vec<u64>>> {
        let objects = self.storage.list_if_fewer(&self.path(layout::MANIFESTS), LIST_PAGE).await?;
        Ok(objects.as_deref().map(manifest_seqs))
    }

    /// The head of the chain: the manifest with the highest sequence number.
    ///
    /// The first page of the listing is read together with `head-hint.json`: a chain that
    /// collection keeps short is listed whole in that one round trip. A longer one is listed
    /// only after the manifest the hint names.
    pub async fn latest(&self) -> Result<Option<Manifest>> {
        let (hint, first_page) = futures::future::join(self.head_hint(), self.manifest_seqs_in_one_page()).await;
        let mut after = hint?;
        let mut listed = match first_page? {
            Some(all) => all,
            None => self.manifest_seqs(after).await?,
        };
        loop {
            let Some(seq) = listed.last().copied().or(after) else { return Ok(None) };
            if let Some(manifest) = self.read_manifest(seq).await? {
                return Ok(Some(manifest));
            }
            // Collection took what we looked at (it only takes manifests older than the
            // head): list them all.
            after = None;
            listed = self.manifest_seqs(None).await?;
        }
    }

    async fn head_hint(&self) -> Result<Option<u64>> {
        let path = self.path(layout::HEAD_HINT);
        match self.storage.get(&path).await? {
            Some(bytes) => {
                Ok(Some(serde_json::from_slice::<HeadHint>(&bytes).map_err(|e| Error::corrupt(&path, e))?.seq))
            }
            None => Ok(None),
        }
    }

    /// Records a committed manifest as a starting point for the next cold reader. Best
    /// effort: a stale hint costs list pages, never correctness.
    pub async fn write_head_hint(&self, seq: u64) {
        let body = Bytes::from(serde_json::to_vec(&HeadHint { seq }).expect("hint serializes"));
        if let Err(e) = self.storage.put(&self.path(layout::HEAD_HINT), body).await {
            tracing::warn!(partition = self.partition, seq, error = %e, "could not write the head hint");
        }
    }

    /// Creates `manifest` as the next link of the chain: the commit point.
    ///
    /// `Ok(true)`: committed. `Ok(false)`: another invocation holds that sequence number.
    /// A create that reports a conflict although our own retried request won is read back
    /// and recognised by its nonce.
    pub async fn commit(&self, manifest: &Manifest) -> Result<bool> {
        let path = self.manifest_path(manifest.seq);
        let body = Bytes::from(serde_json::to_vec_pretty(manifest).expect("manifest serializes"));
        if self.storage.create(&path, body).await? {
            return Ok(true);
        }
        let winner = self.read_manifest(manifest.seq).await?;
        Ok(winner.is_some_and(|w| w.writer == manifest.writer))
    }

    /// The lowest manifest sequence number still valid, as collection last recorded it.
    pub async fn gc_boundary(&self) -> Result<u64> {
        let path = self.path(layout::GC_BOUNDARY);
        match self.storage.get(&path).await? {
            Some(bytes) => {
                let b: GcBoundary = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
                Ok(b.lowest_valid_seq)
            }
            None => Ok(0),
        }
    }

    /// Records a new collection boundary (collection is the only writer of this object).
    pub async fn set_gc_boundary(&self, lowest_valid_seq: u64) -> Result<()> {
        let body = serde_json::to_vec(&GcBoundary { lowest_valid_seq }).expect("boundary serializes");
        self.storage.put(&self.path(layout::GC_BOUNDARY), Bytes::from(body)).await
    }
}

/// Keys in one page of an S3 listing: the most a cold claim lists while it reads the hint.
const LIST_PAGE: usize = 1000;

/// The sequence numbers of listed manifests, in the listing's order.
fn manifest_seqs(objects: &[object_store::ObjectMeta]) -> Vec<u64> {
    objects.iter().filter_map(|o| layout::manifest_seq(o.location.filename()?)).collect()
}

/// Checks that `agent` can name an agent's directory: 1 to 64 ASCII letters, digits, `-` or
/// `_`, not starting with `-`.
///
/// ```
/// assert!(weir_engine::validate_agent_name("review-analysis").is_ok());
/// assert!(weir_engine::validate_agent_name("../etc").is_err());
/// ```
pub fn validate_agent_name(agent: &str) -> Result<()> {
    validate_name("agent", agent)
}

/// Checks a name that becomes a directory (an agent's, a shadow's): 1 to 64 ASCII letters,
/// digits, `-` or `_`, not starting with `-`.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} name `{name}`: use 1 to 64 ASCII letters, digits, `-` or `_`, not starting with `-`"
        )))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HeadHint {
    seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct GcBoundary {
    lowest_valid_seq: u64,
}

/// The invocation that wrote a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// The sequence number of the invocation's claim.
    pub epoch: u64,
    /// 16 random hex digits, unique to the invocation.
    pub nonce: String,
}

/// Why a manifest was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitKind {
    /// An invocation took the partition over.
    Claim,
    /// A micro-batch was processed.
    Batch,
    /// State runs were merged.
    Compaction,
    /// The writer let its lease go: the next claim need not wait for it.
    Release,
    /// A shadow's first commit: production's state at a position (`docs/replay.md`).
    Fork,
}

/// A state run the manifest makes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    /// Path relative to the partition directory.
    pub path: String,
    /// Compaction level: 0 for a batch's run.
    pub level: u32,
    /// How many keys (and tombstones) it holds.
    pub key_count: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its smallest key.
    pub min_key: String,
    /// Its largest key.
    pub max_key: String,
    /// Where its index region starts.
    pub index_offset: u64,
    /// How long its index region is.
    pub index_len: u64,
}

/// A data file a manifest commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path relative to the partition directory.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
}

/// Cumulative counts over the chain, for inspection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Input events processed.
    pub events: u64,
    /// Outputs committed.
    pub outputs: u64,
    /// Dead letters committed.
    pub dead_letters: u64,
}

/// One link of the commit chain. See `docs/storage-format.md` for every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version: 1.
    pub format: u32,
    /// Sequence number.
    pub seq: u64,
    /// Who wrote it.
    pub writer: Writer,
    /// Why.
    pub kind: CommitKind,
    /// The first log position not yet processed.
    pub position: Position,
    /// The live state runs, newest first.
    pub runs: Vec<RunRef>,
    /// This commit's outputs.
    pub outputs: Option<FileRef>,
    /// This commit's dead letters.
    pub dead_letters: Option<FileRef>,
    /// This commit's trace (absent in manifests written before the trace existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<FileRef>,
    /// This commit's journal carry file (entries for events beyond its batch).
    pub journal_carry: Option<String>,
    /// Cumulative counts.
    pub totals: Totals,
    /// Wall-clock time of the commit, milliseconds since the epoch.
    pub created_at_ms: u64,
    /// Until when the writer may run, milliseconds since the epoch: no claim takes the
    /// partition before then. `None`: no lease (released, or never taken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
    /// The live waits object: the suspended keys and the earliest time one is due
    /// (docs/waits.md). Absent when no key waits; carried on by every successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits: Option<WaitsRef>,
    /// What the partition spent in the agent budget's current period (docs/observability.md,
    /// "Budgets per agent"). Absent when the agent has no budget; carried on by every successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<PartitionSpend>,
}

impl Manifest {
    /// The manifest before any commit: position zero, no state.
    pub fn genesis() -> Self {
        Manifest {
            format: 1,
            seq: 0,
            writer: Writer { epoch: 0, nonce: String::new() },
            kind: CommitKind::Claim,
            position: Position::default(),
            runs: Vec::new(),
            outputs: None,
            dead_letters: None,
            trace: None,
            journal_carry: None,
            totals: Totals::default(),
            created_at_ms: 0,
            lease_until_ms: None,
            waits: None,
            spend: None,
        }
    }

    /// The files this commit wrote that are its own (outputs, dead letters, trace): they go
    /// when the commit expires.
    pub(crate) fn commit_files(&self) -> impl Iterator<Item = &FileRef> {
        self.outputs.iter().chain(&self.dead_letters).chain(&self.trace)
    }

    /// The next link: same state, written by `writer`, with this commit's files cleared.
    pub fn successor(&self, writer: Writer, kind: CommitKind, now_ms: u64) -> Self {
        Manifest {
            seq: self.seq + 1,
            writer,
            kind,
            outputs: None,
            dead_letters: None,
            trace: None,
            journal_carry: None,
            created_at_ms: now_ms,
            ..self.clone()
        }
    }
}
