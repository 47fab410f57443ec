//! What can go wrong with a knowledge base, each naming what was wrong.

use weir_models::ModelError;

/// A knowledge base's failure. Every variant names the knowledge base, document or object
/// concerned; none leaves anything half-written visible to readers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A knowledge base name that is not 1 to 64 of `a-z`, `0-9`, `-`, `_`.
    #[error("invalid knowledge base name `{0}`: use 1 to 64 of a-z, 0-9, `-` and `_`")]
    InvalidName(String),
    /// No knowledge base of that name exists under the store.
    #[error("knowledge base `{0}` does not exist (create it with `weir kb add {0} PATH…`)")]
    MissingKnowledgeBase(String),
    /// A document that could not be read or parsed.
    #[error("cannot read document `{path}`: {reason}")]
    Unreadable {
        /// The file, or the file and line.
        path: String,
        /// Why.
        reason: String,
    },
    /// Vectors of another length than the knowledge base's.
    #[error("knowledge base `{kb}` holds vectors of {expected} dimensions, but {what} has {got}")]
    DimensionMismatch {
        /// The knowledge base.
        kb: String,
        /// Its dimensions.
        expected: usize,
        /// The offending vector's.
        got: usize,
        /// Which vector: the query, or a chunk of which document.
        what: String,
    },
    /// The knowledge base and the caller disagree on the embedding model.
    #[error("knowledge base `{kb}`: {problem}")]
    ModelMismatch {
        /// The knowledge base.
        kb: String,
        /// What disagrees.
        problem: String,
    },
    /// A manifest or segment that does not decode: truncated, overwritten or of another format.
    #[error("knowledge base `{kb}`: object `{object}` is corrupt: {reason}")]
    Corrupt {
        /// The knowledge base.
        kb: String,
        /// The object's path.
        object: String,
        /// What check failed.
        reason: String,
    },
    /// Another writer committed to the knowledge base first; nothing of this change is visible.
    #[error("knowledge base `{kb}`: another writer committed version {seq} first; nothing was changed, run again")]
    Conflict {
        /// The knowledge base.
        kb: String,
        /// The version both wanted to create.
        seq: u64,
    },
    /// A search or filter the caller wrote wrongly.
    #[error("invalid search: {0}")]
    InvalidQuery(String),
    /// A hosted vector store (S3 Vectors) refused or failed a request: `problem` says what
    /// was wrong (a missing index, a denied permission, an invalid request) or that it was
    /// unreachable.
    #[error("vector store `{store}`: {operation}: {problem}")]
    Remote {
        /// The store and index, as a URL (`s3vectors://bucket/index`).
        store: String,
        /// The request that failed.
        operation: &'static str,
        /// What was wrong.
        problem: String,
        /// Whether it may succeed later (throttling, a timeout, a 5xx answer).
        unavailable: bool,
    },
    /// The embedding model failed.
    #[error("embedding model: {0}")]
    Model(#[from] ModelError),
    /// The object store failed.
    #[error("object store: {0}")]
    Storage(#[from] weir_engine::Error),
}

impl SearchError {
    /// Whether the failure is not the caller's input's: the embedding model or the store is
    /// down or failed transiently. An agent's event should then wait, not be dead-lettered.
    pub fn is_unavailable(&self) -> bool {
        match self {
            SearchError::Model(model) => model.is_unavailable(),
            SearchError::Remote { unavailable, .. } => *unavailable,
            SearchError::Storage(store) => {
                matches!(store.kind(), weir_engine::ErrorKind::Unavailable | weir_engine::ErrorKind::Retryable)
            }
            _ => false,
        }
    }
}

/// A knowledge base's result.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;
