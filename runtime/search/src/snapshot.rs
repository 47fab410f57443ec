//! One version of a knowledge base loaded in memory: its live chunks, their vectors, a BM25
//! index over them, and the searches over all that.

use std::sync::OnceLock;

use weir_engine::Storage;

use crate::bm25::Bm25Index;
use crate::chunk::Chunk;
use crate::error::{Result, SearchError};
use crate::filter::MetadataFilter;
use crate::fusion::reciprocal_rank_fusion;
use crate::manifest::KbManifest;
use crate::segment::Segment;
use crate::vector::{dot, top_k};

/// How many times top-k each ranking contributes to a hybrid fusion.
const FUSION_DEPTH: usize = 4;

/// A loaded version. Chunks are numbered across segments (live ones only), in manifest order.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) name: String,
    pub(crate) manifest: KbManifest,
    segments: Vec<LoadedSegment>,
    /// Each live chunk's segment and row.
    locations: Vec<(u32, u32)>,
    /// Built on the first BM25 search: a function that searches by vector alone never pays
    /// for it (a third of a cold start at 100,000 chunks).
    bm25: OnceLock<Bm25Index>,
}

#[derive(Debug)]
struct LoadedSegment {
    segment: Segment,
    /// For each row, its number among the live chunks, if it is live.
    live: Vec<Option<u32>>,
}

impl Snapshot {
    /// Reads every segment `manifest` names, concurrently.
    pub(crate) async fn load(storage: &Storage, name: &str, manifest: KbManifest) -> Result<Self> {
        let reads = manifest.segments.iter().map(|segment| {
            let path = storage.path(&segment.path);
            async move {
                let corrupt = |reason: String| SearchError::Corrupt {
                    kb: name.to_string(),
                    object: segment.path.clone(),
                    reason,
                };
                let bytes =
                    storage.get(&path).await?.ok_or_else(|| corrupt("named by the manifest but missing".into()))?;
                // Decoding 100,000 chunks takes some tens of milliseconds: off the async workers.
                let segment = tokio::task::spawn_blocking(move || Segment::decode(&bytes))
                    .await
                    .map_err(|e| corrupt(e.to_string()))?
                    .map_err(corrupt)?;
                Ok::<_, SearchError>(segment)
            }
        });
        let segments = futures::future::try_join_all(reads).await?;
        Ok(Self::from_segments(name, manifest, segments))
    }

    /// A snapshot of segments already in memory, `manifest`'s in its order.
    pub(crate) fn from_segments(name: &str, manifest: KbManifest, segments: Vec<Segment>) -> Self {
        let mut locations = Vec::new();
        let mut loaded = Vec::with_capacity(segments.len());
        for (s, (segment, reference)) in segments.into_iter().zip(&manifest.segments).enumerate() {
            let live = segment
                .chunks
                .iter()
                .enumerate()
                .map(|(row, chunk)| {
                    let is_live = manifest.documents.get(&chunk.document).is_some_and(|d| d.segment == reference.path);
                    is_live.then(|| {
                        locations.push((s as u32, row as u32));
                        (locations.len() - 1) as u32
                    })
                })
                .collect();
            loaded.push(LoadedSegment { segment, live });
        }
        Snapshot { name: name.to_string(), manifest, segments: loaded, locations, bm25: OnceLock::new() }
    }

    /// The live chunk numbered `id`.
    pub(crate) fn chunk(&self, id: u32) -> &Chunk {
        let (segment, row) = self.locations[id as usize];
        &self.segments[segment as usize].segment.chunks[row as usize]
    }

    /// The vector of live chunk `id`, if the knowledge base has vectors.
    pub(crate) fn vector(&self, id: u32) -> Option<&[f32]> {
        let (segment, row) = self.locations[id as usize];
        let segment = &self.segments[segment as usize].segment;
        (segment.dimensions > 0).then(|| segment.vector(row as usize))
    }

    /// How many chunks are live.
    pub(crate) fn len(&self) -> usize {
        self.locations.len()
    }

    /// The chunks best matching `query`'s words.
    pub(crate) fn bm25(&self, query: &str, k: usize, filter: &MetadataFilter) -> Vec<(f32, u32)> {
        let bm25 = self.bm25.get_or_init(|| {
            let mut index = Bm25Index::default();
            (0..self.len() as u32).for_each(|id| index.add(&self.chunk(id).text));
            index
        });
        let scores = bm25.scores(query, |id| filter.is_empty() || filter.matches(&self.chunk(id).metadata));
        top_k(scores, k)
    }

    /// The chunks whose vectors are nearest to `query` (a unit vector): in indexed segments
    /// among the `nprobe` nearest lists, elsewhere all of them. With a filter that leaves
    /// fewer than `k` in the lists probed, the segment is scanned whole.
    pub(crate) fn nearest(
        &self,
        query: &[f32],
        k: usize,
        filter: &MetadataFilter,
        nprobe: Option<usize>,
    ) -> Result<Vec<(f32, u32)>> {
        let expected = self.manifest.embedding.as_ref().map_or(0, |e| e.dimensions);
        if expected != query.len() {
            return Err(SearchError::DimensionMismatch {
                kb: self.name.clone(),
                expected,
                got: query.len(),
                what: "the query vector".into(),
            });
        }
        let mut found = Vec::new();
        for loaded in &self.segments {
            let segment = &loaded.segment;
            if segment.dimensions == 0 {
                continue;
            }
            let score_rows = |rows: &mut dyn Iterator<Item = u32>| -> Vec<(f32, u32)> {
                let scored = rows.filter_map(|row| {
                    let id = loaded.live[row as usize]?;
                    let accepted = filter.is_empty() || filter.matches(&segment.chunks[row as usize].metadata);
                    accepted.then(|| (dot(segment.vector(row as usize), query), id))
                });
                top_k(scored.collect(), k)
            };
            let mut best = match &segment.index {
                Some(index) => {
                    let probes = nprobe.unwrap_or((index.list_count() / 10).max(8));
                    score_rows(&mut index.candidates(query, probes))
                }
                None => Vec::new(),
            };
            if segment.index.is_none() || best.len() < k {
                best = score_rows(&mut (0..segment.chunks.len() as u32));
            }
            found.extend(best);
        }
        Ok(top_k(found, k))
    }

    /// Both rankings fused by reciprocal rank.
    pub(crate) fn hybrid(
        &self,
        text: &str,
        vector: &[f32],
        k: usize,
        filter: &MetadataFilter,
        nprobe: Option<usize>,
    ) -> Result<Vec<(f32, u32)>> {
        let depth = k.saturating_mul(FUSION_DEPTH);
        let by_vector: Vec<u32> = self.nearest(vector, depth, filter, nprobe)?.into_iter().map(|(_, id)| id).collect();
        let by_words: Vec<u32> = self.bm25(text, depth, filter).into_iter().map(|(_, id)| id).collect();
        Ok(reciprocal_rank_fusion(&[by_vector, by_words], k))
    }
}
