//! Knowledge bases on object storage for weir agents: contextual search with no search
//! service to run.
//!
//! A [`KnowledgeBase`] is a named collection of [`Chunk`]s (text, metadata, optionally a
//! vector) under the same store URL as everything else weir keeps. Documents
//! ([`SourceDocument`], read from Markdown, text and JSON-lines files by [`read_paths`]) are
//! cut into overlapping chunks ([`chunk_document`]), embedded if the knowledge base has a
//! model, and committed in one step. Searches ([`SearchQuery`]) rank by BM25 (no model: the
//! default offline), by vector (IVF lists over unit vectors), or both fused by reciprocal
//! rank, with [`MetadataFilter`]s and a top-k. docs/search.md describes the format and why.
//!
//! Modules, one concept each: `knowledge_base` (the handle), `add` (incremental adds),
//! `source` and `chunking` (documents in), `query` (searches out), `snapshot` (a loaded
//! version and its rankings), `bm25`, `ivf`, `fusion`, `filter`, `vector` (the rankings'
//! parts), `segment` and `manifest` (the format), `collect` (deleting what no reader needs), `layout` (its object names), `error`.

mod add;
mod bm25;
mod chunk;
mod chunking;
mod collect;
mod error;
mod filter;
mod fusion;
mod ivf;
mod knowledge_base;
mod layout;
mod manifest;
mod query;
mod segment;
mod snapshot;
mod source;
mod vector;

pub use add::{AddOptions, AddProgress, AddReport};
pub use bm25::rank_texts;
pub use chunk::{Chunk, Metadata};
pub use chunking::{ChunkingOptions, chunk_document};
pub use collect::{CollectReport, collect, collect_all};
pub use error::{Result, SearchError};
pub use filter::MetadataFilter;
pub use knowledge_base::{KbSummary, KnowledgeBase};
pub use query::{SearchHit, SearchMode, SearchQuery};
pub use source::{DocumentKind, SourceDocument, read_paths};
