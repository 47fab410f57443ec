//! Contextual search: the vector-store trait the retrieval action and tools search through,
//! and its implementation over a weir knowledge base on object storage.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;
use weir_search::{KnowledgeBase, MetadataFilter, SearchError, SearchQuery};

use crate::event::builtin::Document;

/// A store of documents searchable by meaning or words, as agents see it: the built-in
/// retrieval action ([`RetrievalRequestEvent`](crate::RetrievalRequestEvent)) and
/// [`knowledge_base_tool`](crate::knowledge_base_tool) search through it, by the name it is
/// registered under ([`WorkflowAgentBuilder::vector_store`](crate::WorkflowAgentBuilder::vector_store)).
///
/// weir's own [`KnowledgeBase`] implements it, and `S3VectorsStore` (feature `s3-vectors`).
/// Another store (OpenSearch, a hosted vector database) is added by implementing this one
/// method, without touching agents: return at most `query.top_k` documents matching every
/// condition of `query.filter`, best first, with a score where higher is better (a store that
/// ranks one way only refuses the other [`SearchMode`](weir_search::SearchMode)s as
/// [`SearchError::InvalidQuery`]); report a failure as a [`SearchError`] (a store that
/// refused as [`SearchError::Remote`], one that cannot be reached as `Remote` with
/// `unavailable: true`, so that the event waits instead of being dead-lettered). The retrieval
/// action journals the result, so a replayed event is answered from the journal, not by
/// searching again. docs/search.md has an example over OpenSearch.
///
/// ```
/// use weir_agent::{Document, VectorStore};
/// use weir_search::{SearchError, SearchQuery};
///
/// #[derive(Debug)]
/// struct OneAnswer;
///
/// #[async_trait::async_trait]
/// impl VectorStore for OneAnswer {
///     async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError> {
///         let answer = Document { id: "faq#1".into(), content: format!("about {}", query.text), score: 1.0, metadata: Default::default() };
///         Ok(vec![answer].into_iter().take(query.top_k).collect())
///     }
/// }
/// ```
#[async_trait]
pub trait VectorStore: Debug + Send + Sync + 'static {
    /// The documents best matching `query` (its text, filter and mode), best first, at most
    /// `query.top_k`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError>;
}

#[async_trait]
impl VectorStore for KnowledgeBase {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError> {
        let hits = KnowledgeBase::search(self, query).await?;
        Ok(hits
            .into_iter()
            .map(|hit| {
                let mut metadata: serde_json::Map<String, Value> =
                    hit.chunk.metadata.into_iter().map(|(key, value)| (key, Value::String(value))).collect();
                metadata.insert("document".into(), Value::String(hit.chunk.document.clone()));
                Document {
                    id: format!("{}#{}", hit.chunk.document, hit.chunk.ordinal),
                    content: hit.chunk.text,
                    score: hit.score,
                    metadata: Value::Object(metadata),
                }
            })
            .collect())
    }
}

/// The search of a retrieval request or a tool call: `text`, at most `top_k`, with the
/// `filter` map's conditions.
pub(crate) fn query_of(text: &str, top_k: usize, conditions: &BTreeMap<String, String>) -> SearchQuery {
    let filter = conditions.iter().fold(MetadataFilter::default(), |filter, (key, value)| filter.and(key, value));
    SearchQuery::new(text).top_k(top_k).filter(filter)
}
