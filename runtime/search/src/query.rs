//! A search and what it finds.

use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;
use crate::filter::MetadataFilter;

/// How chunks are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Hybrid when the knowledge base has vectors and the caller an embedding model (or a
    /// query vector); BM25 otherwise.
    #[default]
    Auto,
    /// Words alone: no model.
    Bm25,
    /// Meaning alone: nearest vectors.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

/// What to look for: a text (and, optionally, its vector already computed), how many chunks
/// to return and which ones may be returned.
///
/// ```
/// use weir_search::{MetadataFilter, SearchMode, SearchQuery};
///
/// let query = SearchQuery::new("disk full on the database host")
///     .top_k(3)
///     .mode(SearchMode::Bm25)
///     .filter(MetadataFilter::default().and("service", "postgres"));
/// assert_eq!(query.top_k, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// The query's text: what BM25 matches, and what is embedded when no vector is given.
    pub text: String,
    /// The query's vector, if the caller embedded it already.
    pub vector: Option<Vec<f32>>,
    /// How many chunks to return at most.
    pub top_k: usize,
    /// How to rank.
    pub mode: SearchMode,
    /// Which chunks may be returned.
    pub filter: MetadataFilter,
    /// How many IVF lists to scan per indexed segment; unset means a tenth of them (at least 8),
    /// which keeps recall@10 above 0.95 (BENCHMARKS.md).
    pub nprobe: Option<usize>,
}

impl SearchQuery {
    /// A search for `text`, top 5, ranked as [`SearchMode::Auto`] decides, unfiltered.
    pub fn new(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            vector: None,
            top_k: 5,
            mode: SearchMode::Auto,
            filter: MetadataFilter::default(),
            nprobe: None,
        }
    }

    /// The same search returning at most `k` chunks.
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// The same search ranked by `mode`.
    pub fn mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same search restricted by `filter`.
    pub fn filter(mut self, filter: MetadataFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The same search with its vector computed already.
    pub fn vector(mut self, vector: Vec<f32>) -> Self {
        self.vector = Some(vector);
        self
    }

    /// The same search scanning `nprobe` IVF lists per indexed segment.
    pub fn nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = Some(nprobe);
        self
    }
}

/// A chunk found, with its score: a cosine, a BM25 score or a fused reciprocal-rank score,
/// as the mode was; higher is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The chunk.
    pub chunk: Chunk,
    /// Its score.
    pub score: f32,
}
