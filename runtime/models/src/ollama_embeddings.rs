//! Ollama's embeddings API.

use async_trait::async_trait;
use serde::Deserialize;

use crate::chat::{EmbeddingModel, EmbeddingOptions};
use crate::error::ModelError;
use crate::http::Endpoint;
use crate::ollama::OllamaEmbeddingConfig;
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{EmbeddingBody, WithExtra};

impl OllamaEmbeddingConfig {
    /// The embedding model `model` on the local Ollama, with every other setting at its default.
    pub fn embeddings(model: impl Into<String>) -> Self {
        Self::with_options(EmbeddingOptions { model: model.into(), ..EmbeddingOptions::default() })
    }
}

/// An embedding model behind `POST {base_url}/api/embed`.
///
/// ```no_run
/// use weir_models::{EmbeddingModel, OllamaEmbeddingConfig, OllamaEmbeddings};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let model = OllamaEmbeddings::new(&OllamaEmbeddingConfig::embeddings("all-minilm"), None)?;
/// let vectors = model.embed(&["a review".to_owned()]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OllamaEmbeddings {
    endpoint: Endpoint,
    options: EmbeddingOptions,
}

impl OllamaEmbeddings {
    /// A client of `config`'s server, sending `key` as a bearer token if given; an unset base
    /// URL means the local Ollama.
    pub fn new(config: &OllamaEmbeddingConfig, key: Option<ApiKey>) -> Result<Self, ModelError> {
        let endpoint = config.endpoint("api/embed", key)?;
        Ok(OllamaEmbeddings { endpoint, options: config.options.clone() })
    }
}

#[async_trait]
impl EmbeddingModel for OllamaEmbeddings {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let body = EmbeddingBody::new(&self.options, texts, None);
        self.endpoint.call(&WithExtra::new(body, &self.options.extra), |reply| self.vectors(reply, texts.len())).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

#[derive(Debug, Deserialize)]
struct EmbedReply {
    embeddings: Vec<Vec<f32>>,
}

impl OllamaEmbeddings {
    /// The vectors, one for each of the `inputs` texts.
    fn vectors(&self, reply: EmbedReply, inputs: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        if reply.embeddings.len() != inputs {
            let problem = format!("{inputs} texts were sent but {} vectors came back", reply.embeddings.len());
            return Err(self.endpoint.malformed(problem));
        }
        Ok(reply.embeddings)
    }
}
