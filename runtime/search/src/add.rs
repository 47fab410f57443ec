//! Adding documents: only what changed is chunked, embedded and written, in one commit.

use std::collections::{BTreeMap, BTreeSet};

use crate::chunk::Chunk;
use crate::chunking::{ChunkingOptions, chunk_document};
use crate::error::{Result, SearchError};
use crate::knowledge_base::KnowledgeBase;
use crate::layout;
use crate::manifest::{self, DocumentEntry, EmbeddingInfo, KbManifest, SegmentRef};
use crate::segment::Segment;
use crate::snapshot::Snapshot;
use crate::source::SourceDocument;
use crate::vector::normalized;

/// Texts per call to the embedding model.
const EMBED_BATCH: usize = 64;
/// Past this many segments, an add compacts them into one.
const MAX_SEGMENTS: usize = 8;

/// How to add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// How to cut documents into chunks.
    pub chunking: ChunkingOptions,
    /// Whether the documents given are the whole knowledge base: every document not among them
    /// is removed.
    pub sync: bool,
}

/// What an add did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Documents new to the knowledge base.
    pub added: usize,
    /// Documents whose content changed: their chunks were replaced.
    pub replaced: usize,
    /// Documents already there with the same content: they cost nothing.
    pub unchanged: usize,
    /// Documents removed (with [`AddOptions::sync`]).
    pub removed: usize,
    /// Chunks written (and embedded).
    pub chunks_written: usize,
    /// Whether the segments were compacted into one.
    pub compacted: bool,
    /// The knowledge base's version afterwards (unchanged if nothing changed).
    pub version: u64,
}

/// Told how an add progresses, for a progress bar.
pub trait AddProgress: Send + Sync {
    /// `total` chunks are to be embedded and written.
    fn started(&self, _total: u64) {}
    /// `count` more chunks were embedded.
    fn advanced(&self, _count: u64) {}
}

impl AddProgress for () {}

/// Adds `documents` to `kb` (see [`KnowledgeBase::add`]).
pub(crate) async fn add(
    kb: &KnowledgeBase,
    documents: Vec<SourceDocument>,
    options: AddOptions,
    progress: &dyn AddProgress,
) -> Result<AddReport> {
    let name = kb.name();
    let current = manifest::latest(kb.storage(), name).await?.unwrap_or_else(KbManifest::empty);
    let embedding = check_model(kb, &current)?;

    // The last of several documents with one id wins, as a later add would.
    let documents: BTreeMap<String, SourceDocument> = documents.into_iter().map(|d| (d.id.clone(), d)).collect();
    let mut report = AddReport { version: current.seq, ..AddReport::default() };
    let mut changed = Vec::new();
    for (id, document) in &documents {
        let hash = document.content_hash();
        match current.documents.get(id) {
            Some(entry) if entry.hash == hash => report.unchanged += 1,
            Some(_) => {
                report.replaced += 1;
                changed.push((document, hash));
            }
            None => {
                report.added += 1;
                changed.push((document, hash));
            }
        }
    }
    let removed: BTreeSet<String> = if options.sync {
        current.documents.keys().filter(|id| !documents.contains_key(*id)).cloned().collect()
    } else {
        BTreeSet::new()
    };
    report.removed = removed.len();
    if changed.is_empty() && removed.is_empty() {
        return Ok(report);
    }

    let mut chunks = Vec::new();
    let mut per_document = Vec::new();
    for (document, hash) in &changed {
        let cut = chunk_document(document, options.chunking);
        per_document.push((document.id.clone(), hash.clone(), cut.len() as u32));
        chunks.extend(cut);
    }
    progress.started(chunks.len() as u64);
    let vectors = embed(kb, &chunks, embedding.as_ref(), progress).await?;
    let embedding = embedding.or_else(|| {
        let model = kb.embedder()?.name().to_string();
        Some(EmbeddingInfo { model, dimensions: vectors.first()?.len() })
    });

    let mut next = KbManifest {
        seq: current.seq + 1,
        writer: fastrand::u64(..),
        embedding: if vectors.is_empty() { current.embedding.clone() } else { embedding },
        ..current.clone()
    };
    let segment_path = layout::segment(name, next.seq, fastrand::u64(..));
    for id in &removed {
        next.documents.remove(id);
    }
    for (id, hash, count) in per_document {
        next.documents.insert(id, DocumentEntry { hash, segment: segment_path.clone(), chunks: count });
    }
    next.segments.push(SegmentRef { path: segment_path.clone(), chunks: chunks.len() as u32 });
    // Segments none of whose chunks is live any more drop out of the version.
    next.segments.retain(|s| next.documents.values().any(|d| d.segment == s.path));

    report.chunks_written = chunks.len();
    let mut segment = Segment::new(chunks, vectors, next.seq);
    if next.segments.len() > MAX_SEGMENTS || next.dead_chunks() > next.live_chunks() {
        segment = compact(kb, &current, &mut next, segment, &segment_path).await?;
        report.compacted = true;
    }
    if next.segments.iter().any(|s| s.path == segment_path) {
        kb.storage().put(&kb.storage().path(&segment_path), segment.encode()).await?;
    }
    manifest::commit(kb.storage(), name, &next).await?;
    tracing::info!(
        kb = name,
        version = next.seq,
        added = report.added,
        replaced = report.replaced,
        removed = report.removed,
        chunks = report.chunks_written,
        compacted = report.compacted,
        "knowledge base committed"
    );
    kb.forget_snapshot();
    report.version = next.seq;
    Ok(report)
}

/// The knowledge base's embedding, if it has vectors, after checking that `kb` embeds with
/// the same model: a knowledge base's vectors all come from one model, or none.
fn check_model(kb: &KnowledgeBase, current: &KbManifest) -> Result<Option<EmbeddingInfo>> {
    let mismatch = |problem: String| SearchError::ModelMismatch { kb: kb.name().to_string(), problem };
    match (&current.embedding, kb.embedder()) {
        (Some(info), Some(model)) if info.model != model.name() => Err(mismatch(format!(
            "its vectors come from `{}`, not `{}`: add with the same model, or drop it and add again",
            info.model,
            model.name()
        ))),
        (Some(info), None) => {
            Err(mismatch(format!("its chunks have vectors from `{}`: adding needs that embedding model", info.model)))
        }
        (None, Some(model)) if !current.documents.is_empty() => Err(mismatch(format!(
            "it holds text without vectors: `{}` cannot embed only part of it; drop it and add again with the model",
            model.name()
        ))),
        (embedding, _) => Ok(embedding.clone()),
    }
}

/// The unit vectors of `chunks`, batch by batch; none when `kb` has no embedding model.
async fn embed(
    kb: &KnowledgeBase,
    chunks: &[Chunk],
    embedding: Option<&EmbeddingInfo>,
    progress: &dyn AddProgress,
) -> Result<Vec<Vec<f32>>> {
    let Some(model) = kb.embedder() else { return Ok(Vec::new()) };
    let mut expected = embedding.map(|e| e.dimensions);
    let mut vectors = Vec::with_capacity(chunks.len());
    for batch in chunks.chunks(EMBED_BATCH) {
        let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
        let embedded = model.embed(&texts).await?;
        for (chunk, vector) in batch.iter().zip(embedded) {
            let dimensions = *expected.get_or_insert(vector.len());
            if vector.len() != dimensions || dimensions == 0 {
                return Err(SearchError::DimensionMismatch {
                    kb: kb.name().to_string(),
                    expected: dimensions,
                    got: vector.len(),
                    what: format!("chunk {} of `{}` from `{}`", chunk.ordinal, chunk.document, model.name()),
                });
            }
            vectors.push(normalized(vector));
        }
        progress.advanced(batch.len() as u64);
    }
    Ok(vectors)
}

/// One segment of every live chunk of `next`: the new `segment` and those still live in
/// `current`'s segments, which are read back.
async fn compact(
    kb: &KnowledgeBase,
    current: &KbManifest,
    next: &mut KbManifest,
    segment: Segment,
    segment_path: &str,
) -> Result<Segment> {
    let old = Snapshot::load(kb.storage(), kb.name(), current.clone()).await?;
    let mut chunks = Vec::new();
    let mut vectors = Vec::new();
    for id in 0..old.len() as u32 {
        let chunk = old.chunk(id);
        // Still live in the next version, and not rewritten by this add.
        if next.documents.get(&chunk.document).is_some_and(|d| d.segment != segment_path) {
            chunks.push(chunk.clone());
            vectors.extend(old.vector(id).map(<[f32]>::to_vec));
        }
    }
    for row in 0..segment.chunks.len() {
        chunks.push(segment.chunks[row].clone());
        if segment.dimensions > 0 {
            vectors.push(segment.vector(row).to_vec());
        }
    }
    for entry in next.documents.values_mut() {
        entry.segment = segment_path.to_string();
    }
    next.segments = vec![SegmentRef { path: segment_path.to_string(), chunks: chunks.len() as u32 }];
    Ok(Segment::new(chunks, vectors, next.seq))
}
