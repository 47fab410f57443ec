//! Ollama's embeddings API.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::chat::EmbeddingModel;
use crate::env::process_env;
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings};
use crate::ollama::{ollama_endpoint, resolve_ollama};
use crate::secret::ApiKey;
use crate::stats::ModelStats;

/// An Ollama embedding model, as an agent file declares it.
///
/// ```yaml
/// provider: ollama
/// model: all-minilm
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaEmbeddingConfig {
    /// The model's name, such as `all-minilm`.
    pub model: String,
    /// Base URL; default `$OLLAMA_HOST`, else `http://127.0.0.1:11434`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// A variable holding a bearer token, for an Ollama behind an authenticating proxy; none
    /// by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Timeouts, retries and concurrency.
    #[serde(default)]
    pub http: HttpSettings,
}

impl OllamaEmbeddingConfig {
    /// The model `model` on the local Ollama, with every other setting at its default.
    pub fn new(model: impl Into<String>) -> Self {
        OllamaEmbeddingConfig { model: model.into(), base_url: None, api_key_env: None, http: HttpSettings::default() }
    }

    /// The client, with the base URL from the process's environment where unset.
    pub fn build(&self) -> Result<OllamaEmbeddings, ModelError> {
        self.build_with_env(&process_env)
    }

    /// As [`OllamaEmbeddingConfig::build`], with variables from `env`.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<OllamaEmbeddings, ModelError> {
        let (base_url, key) = resolve_ollama(self.base_url.as_deref(), self.api_key_env.as_deref(), env)?;
        OllamaEmbeddings::new(&OllamaEmbeddingConfig { base_url, ..self.clone() }, key)
    }
}

/// An embedding model behind `POST {base_url}/api/embed`.
///
/// ```no_run
/// use weir_models::{EmbeddingModel, OllamaEmbeddingConfig, OllamaEmbeddings};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let model = OllamaEmbeddings::new(&OllamaEmbeddingConfig::new("all-minilm"), None)?;
/// let vectors = model.embed(&["a review".to_owned()]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OllamaEmbeddings {
    endpoint: Endpoint,
    model: String,
}

impl OllamaEmbeddings {
    /// A client of `config`'s server, sending `key` as a bearer token if given; an unset base
    /// URL means the local Ollama.
    pub fn new(config: &OllamaEmbeddingConfig, key: Option<ApiKey>) -> Result<Self, ModelError> {
        let endpoint = ollama_endpoint(config.base_url.as_deref(), "api/embed", key, &config.http)?;
        Ok(OllamaEmbeddings { endpoint, model: config.model.clone() })
    }
}

#[async_trait]
impl EmbeddingModel for OllamaEmbeddings {
    fn name(&self) -> &str {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({"model": self.model, "input": texts});
        self.endpoint
            .call(&body, |reply: EmbedReply| {
                if reply.embeddings.len() == texts.len() {
                    Ok(reply.embeddings)
                } else {
                    let message =
                        format!("{} texts were sent but {} vectors came back", texts.len(), reply.embeddings.len());
                    Err(self.endpoint.malformed(message))
                }
            })
            .await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

#[derive(Debug, Deserialize)]
struct EmbedReply {
    embeddings: Vec<Vec<f32>>,
}
