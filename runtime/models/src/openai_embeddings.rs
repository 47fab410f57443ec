//! OpenAI's embeddings API, and the servers compatible with it.

use async_trait::async_trait;
use serde::Deserialize;

use crate::chat::{EmbeddingModel, EmbeddingOptions};
use crate::error::ModelError;
use crate::http::Endpoint;
use crate::openai::OpenAiEmbeddingConfig;
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{EmbeddingBody, WithExtra};

impl OpenAiEmbeddingConfig {
    /// The embedding model `model` on api.openai.com, with every other setting at its default.
    pub fn embeddings(model: impl Into<String>) -> Self {
        Self::with_options(EmbeddingOptions { model: model.into(), ..EmbeddingOptions::default() })
    }
}

/// An embedding model behind `POST {base_url}/embeddings`.
///
/// ```no_run
/// use weir_models::{ApiKey, EmbeddingModel, OpenAiEmbeddingConfig, OpenAiEmbeddings};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let config = OpenAiEmbeddingConfig::embeddings("text-embedding-3-small");
/// let model = OpenAiEmbeddings::new(&config, ApiKey::from_env("OPENAI_API_KEY")?)?;
/// let vectors = model.embed(&["a review".to_owned()]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiEmbeddings {
    endpoint: Endpoint,
    options: EmbeddingOptions,
}

impl OpenAiEmbeddings {
    /// A client of `config`'s server with `key`; an unset base URL means api.openai.com.
    pub fn new(config: &OpenAiEmbeddingConfig, key: ApiKey) -> Result<Self, ModelError> {
        if config.batch {
            return Err(ModelError::Config("batch: true is for chat models, not embeddings".into()));
        }
        let endpoint = config.endpoint("embeddings", key)?;
        Ok(OpenAiEmbeddings { endpoint, options: config.options.clone() })
    }
}

#[async_trait]
impl EmbeddingModel for OpenAiEmbeddings {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Floats, not base64: the only encoding this client reads.
        let body = EmbeddingBody::new(&self.options, texts, Some("float"));
        self.endpoint.call(&WithExtra::new(body, &self.options.extra), |reply| self.vectors(reply, texts.len())).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

#[derive(Debug, Deserialize)]
struct EmbeddingList {
    data: Vec<Embedding>,
}

#[derive(Debug, Deserialize)]
struct Embedding {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbeddings {
    /// The vectors in input order, which the `index` of each gives.
    fn vectors(&self, mut reply: EmbeddingList, inputs: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        reply.data.sort_by_key(|embedding| embedding.index);
        let in_order = reply.data.iter().enumerate().all(|(at, embedding)| embedding.index == at);
        if reply.data.len() != inputs || !in_order {
            return Err(self.endpoint.malformed(format!(
                "{inputs} texts were sent but the reply has vectors for indexes {:?}",
                reply.data.iter().map(|embedding| embedding.index).collect::<Vec<_>>()
            )));
        }
        Ok(reply.data.into_iter().map(|embedding| embedding.embedding).collect())
    }
}
