//! Contextual search: vector stores and an in-memory one over an embedding model.

use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use weir_models::{EmbeddingModel, ModelError};

use crate::event::builtin::Document;

/// A store of documents searchable by meaning.
#[async_trait]
pub trait VectorStore: Debug + Send + Sync + 'static {
    /// The documents nearest to `query`, nearest first, at most `max_results`.
    async fn search(&self, query: &str, max_results: usize) -> Result<Vec<Document>, ModelError>;
}

/// Documents held in memory, embedded with an embedding model and ranked by cosine
/// similarity: for small corpora (runbooks, FAQs) that ship with an agent.
#[derive(Debug)]
pub struct InMemoryVectorStore {
    embedder: Arc<dyn EmbeddingModel>,
    documents: RwLock<Vec<(Document, Vec<f32>)>>,
}

impl InMemoryVectorStore {
    /// An empty store embedding with `embedder`.
    pub fn new(embedder: Arc<dyn EmbeddingModel>) -> Self {
        InMemoryVectorStore { embedder, documents: RwLock::new(Vec::new()) }
    }

    /// Embeds and adds documents.
    pub async fn add(&self, documents: Vec<Document>) -> Result<(), ModelError> {
        let texts: Vec<String> = documents.iter().map(|d| d.content.clone()).collect();
        let vectors = self.embedder.embed(&texts).await?;
        self.documents.write().expect("vector store").extend(documents.into_iter().zip(vectors));
        Ok(())
    }
}

#[async_trait]
impl VectorStore for InMemoryVectorStore {
    async fn search(&self, query: &str, max_results: usize) -> Result<Vec<Document>, ModelError> {
        let query = self.embedder.embed(&[query.to_string()]).await?.pop().unwrap_or_default();
        let documents = self.documents.read().expect("vector store");
        let mut scored: Vec<Document> = documents
            .iter()
            .map(|(document, vector)| Document { score: cosine(&query, vector), ..document.clone() })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(max_results);
        Ok(scored)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 { 0.0 } else { dot / denominator }
}
