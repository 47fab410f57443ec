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
/// weir's own [`KnowledgeBase`] implements it. Another store (OpenSearch, a hosted vector
/// database, S3 Vectors) is added by implementing this one method, without touching agents:
/// return at most `max_results` documents matching every `filter` condition, best first, with
/// a score where higher is better; report a failure as a [`SearchError`] (a store that cannot
/// be reached as [`SearchError::Model`] with an unavailable [`weir_models::ModelError`], so that
/// the event waits instead of being dead-lettered). The retrieval action journals the result,
/// so a replayed event is answered from the journal, not by searching again.
///
/// ```
/// use weir_agent::{Document, VectorStore};
/// use weir_search::{MetadataFilter, SearchError};
///
/// #[derive(Debug)]
/// struct OneAnswer;
///
/// #[async_trait::async_trait]
/// impl VectorStore for OneAnswer {
///     async fn search(&self, query: &str, max_results: usize, _filter: &MetadataFilter) -> Result<Vec<Document>, SearchError> {
///         let answer = Document { id: "faq#1".into(), content: format!("about {query}"), score: 1.0, metadata: Default::default() };
///         Ok(vec![answer].into_iter().take(max_results).collect())
///     }
/// }
/// ```
#[async_trait]
pub trait VectorStore: Debug + Send + Sync + 'static {
    /// The documents best matching `query` and `filter`, best first, at most `max_results`.
    async fn search(
        &self,
        query: &str,
        max_results: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Document>, SearchError>;
}

#[async_trait]
impl VectorStore for KnowledgeBase {
    async fn search(
        &self,
        query: &str,
        max_results: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<Document>, SearchError> {
        let hits =
            KnowledgeBase::search(self, &SearchQuery::new(query).top_k(max_results).filter(filter.clone())).await?;
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

/// A metadata filter from a retrieval request's `filter` map.
pub(crate) fn filter_of(conditions: &BTreeMap<String, String>) -> MetadataFilter {
    conditions.iter().fold(MetadataFilter::default(), |filter, (key, value)| filter.and(key, value))
}
