//! OpenAI's embeddings API, and the servers compatible with it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::chat::EmbeddingModel;
use crate::env::process_env;
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings};
use crate::openai::{OpenAiAuth, OpenAiConnection, resolve_openai};
use crate::secret::ApiKey;
use crate::stats::ModelStats;

/// An OpenAI-compatible embedding model, as an agent file declares it.
///
/// ```yaml
/// provider: openai
/// model: text-embedding-3-small
/// dimensions: 512
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiEmbeddingConfig {
    /// The model's id, such as `text-embedding-3-small`.
    pub model: String,
    /// Length of the vectors, for models that can shorten them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Base URL; default `$OPENAI_BASE_URL`, else `https://api.openai.com/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The variable holding the key; default `OPENAI_API_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// How the key is sent.
    #[serde(default)]
    pub auth: OpenAiAuth,
    /// Query parameters added to every request, such as Azure's `api-version`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Timeouts, retries and concurrency.
    #[serde(default)]
    pub http: HttpSettings,
}

impl OpenAiEmbeddingConfig {
    /// The model `model` on api.openai.com, with every other setting at its default.
    pub fn new(model: impl Into<String>) -> Self {
        OpenAiEmbeddingConfig {
            model: model.into(),
            dimensions: None,
            base_url: None,
            api_key_env: None,
            auth: OpenAiAuth::default(),
            query: BTreeMap::new(),
            http: HttpSettings::default(),
        }
    }

    /// The client, with the base URL and key from the process's environment where unset.
    pub fn build(&self) -> Result<OpenAiEmbeddings, ModelError> {
        self.build_with_env(&process_env)
    }

    /// As [`OpenAiEmbeddingConfig::build`], with variables from `env`.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<OpenAiEmbeddings, ModelError> {
        let (base_url, key) = resolve_openai(self.base_url.as_deref(), self.api_key_env.as_deref(), env)?;
        OpenAiEmbeddings::new(&OpenAiEmbeddingConfig { base_url, ..self.clone() }, key)
    }
}

/// An embedding model behind `POST {base_url}/embeddings`.
///
/// ```no_run
/// use weir_models::{ApiKey, EmbeddingModel, OpenAiEmbeddingConfig, OpenAiEmbeddings};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let config = OpenAiEmbeddingConfig::new("text-embedding-3-small");
/// let model = OpenAiEmbeddings::new(&config, ApiKey::from_env("OPENAI_API_KEY")?)?;
/// let vectors = model.embed(&["a review".to_owned()]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiEmbeddings {
    endpoint: Endpoint,
    model: String,
    dimensions: Option<u32>,
}

impl OpenAiEmbeddings {
    /// A client of `config`'s server with `key`; an unset base URL means api.openai.com.
    pub fn new(config: &OpenAiEmbeddingConfig, key: ApiKey) -> Result<Self, ModelError> {
        let connection = OpenAiConnection {
            base_url: config.base_url.as_deref(),
            auth: config.auth,
            query: &config.query,
            http: &config.http,
        };
        let endpoint = connection.endpoint("embeddings", key)?;
        Ok(OpenAiEmbeddings { endpoint, model: config.model.clone(), dimensions: config.dimensions })
    }
}

#[async_trait]
impl EmbeddingModel for OpenAiEmbeddings {
    fn name(&self) -> &str {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("input".into(), json!(texts));
        body.insert("encoding_format".into(), json!("float"));
        if let Some(dimensions) = self.dimensions {
            body.insert("dimensions".into(), json!(dimensions));
        }
        self.endpoint.call(&Value::Object(body), |reply: EmbeddingList| self.vectors(reply, texts.len())).await
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
