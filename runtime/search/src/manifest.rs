//! A knowledge base's manifest: which segments and documents make up one version of it. The
//! commit point of a change is the creation of the next manifest, with create-if-absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_engine::Storage;

use crate::error::{Result, SearchError};
use crate::layout;

/// The version of this format; a reader refuses a manifest of a later one.
const FORMAT_VERSION: u32 = 1;

/// One version of a knowledge base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KbManifest {
    pub(crate) format: u32,
    pub(crate) seq: u64,
    /// A random number of the writer that created this version: a create that reported
    /// "already there" after a retry is ours when the nonce read back is ours.
    pub(crate) writer: u64,
    /// The embedding model of every vector, if the chunks have vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) embedding: Option<EmbeddingInfo>,
    /// The segments, in the order written.
    pub(crate) segments: Vec<SegmentRef>,
    /// Every document, by id.
    pub(crate) documents: BTreeMap<String, DocumentEntry>,
}

/// A segment and how many chunks it holds, live or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentRef {
    /// Relative to the store's root.
    pub(crate) path: String,
    pub(crate) chunks: u32,
}

/// Which model made a knowledge base's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmbeddingInfo {
    pub(crate) model: String,
    pub(crate) dimensions: usize,
}

/// A document's version and where its chunks are. A segment's chunk is live only while its
/// document's entry names that segment: a document replaced or removed needs no segment
/// rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DocumentEntry {
    pub(crate) hash: String,
    pub(crate) segment: String,
    pub(crate) chunks: u32,
}

impl KbManifest {
    /// The version before the first: no segment, no document.
    pub(crate) fn empty() -> Self {
        KbManifest {
            format: FORMAT_VERSION,
            seq: 0,
            writer: 0,
            embedding: None,
            segments: Vec::new(),
            documents: BTreeMap::new(),
        }
    }

    /// The chunks live in the knowledge base.
    pub(crate) fn live_chunks(&self) -> u64 {
        self.documents.values().map(|d| u64::from(d.chunks)).sum()
    }

    /// The chunks its segments hold that no document names any more.
    pub(crate) fn dead_chunks(&self) -> u64 {
        self.segments.iter().map(|s| u64::from(s.chunks)).sum::<u64>().saturating_sub(self.live_chunks())
    }
}

/// The newest manifest of knowledge base `name`, if it has any.
pub(crate) async fn latest(storage: &Storage, name: &str) -> Result<Option<KbManifest>> {
    let prefix = storage.path(&layout::manifest_prefix(name));
    let listed = storage.list_after(&prefix, None).await?;
    let newest = listed.iter().filter_map(|meta| layout::manifest_seq(meta.location.filename()?)).max();
    match newest {
        Some(seq) => read(storage, name, seq).await.map(Some),
        None => Ok(None),
    }
}

/// Manifest `seq` of knowledge base `name`.
pub(crate) async fn read(storage: &Storage, name: &str, seq: u64) -> Result<KbManifest> {
    let object = layout::manifest(name, seq);
    let corrupt = |reason: String| SearchError::Corrupt { kb: name.to_string(), object: object.clone(), reason };
    let bytes = storage.get(&storage.path(&object)).await?.ok_or_else(|| corrupt("listed but gone".into()))?;
    let manifest: KbManifest = serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("does not decode: {e}")))?;
    if manifest.format > FORMAT_VERSION {
        return Err(corrupt(format!("format {} is newer than this weir's {FORMAT_VERSION}", manifest.format)));
    }
    if manifest.seq != seq {
        return Err(corrupt(format!("says it is version {} but is named {seq}", manifest.seq)));
    }
    Ok(manifest)
}

/// Makes `manifest` the newest version of `name`: creates it if no writer created its sequence
/// number first.
pub(crate) async fn commit(storage: &Storage, name: &str, manifest: &KbManifest) -> Result<()> {
    let object = layout::manifest(name, manifest.seq);
    let bytes = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    if storage.create(&storage.path(&object), bytes.into()).await? {
        return Ok(());
    }
    // "Already there" may be our own create, retried after a lost reply.
    let there = read(storage, name, manifest.seq).await?;
    if there.writer == manifest.writer {
        return Ok(());
    }
    Err(SearchError::Conflict { kb: name.to_string(), seq: manifest.seq })
}
