//! A model as a declarative agent file names it: the provider, then that provider's settings.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::anthropic::{AnthropicChat, AnthropicConfig};
use crate::chat::{ChatModel, EmbeddingModel};
use crate::env::process_env;
use crate::error::ModelError;
use crate::ollama::{OllamaChat, OllamaConfig, OllamaEmbeddingConfig};
use crate::ollama_embeddings::OllamaEmbeddings;
use crate::openai::{OpenAiChat, OpenAiConfig, OpenAiEmbeddingConfig};
use crate::openai_embeddings::OpenAiEmbeddings;

/// A chat model's configuration, tagged by `provider`.
///
/// ```
/// use weir_models::ModelConfig;
///
/// let yaml_as_json = r#"{
///     "provider": "openai",
///     "options": {"model": "gpt-4o-mini", "max_tokens": 500},
///     "base_url": "http://127.0.0.1:8000/v1",
///     "api_key_env": "VLLM_API_KEY",
///     "http": {"max_concurrency": 4}
/// }"#;
/// let config: ModelConfig = serde_json::from_str(yaml_as_json).unwrap();
/// let model = config.build_with_env(&|name| (name == "VLLM_API_KEY").then(|| "key".to_owned())).unwrap();
/// assert_eq!(model.name(), "gpt-4o-mini");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ModelConfig {
    /// OpenAI or an OpenAI-compatible server.
    OpenAi(OpenAiConfig),
    /// Anthropic's Messages API.
    Anthropic(AnthropicConfig),
    /// Ollama's native API.
    Ollama(OllamaConfig),
}

impl ModelConfig {
    /// The model the environment asks for, as the functions read it (docs/configuration.md):
    /// `WEIR_MODEL_PROVIDER` (`openai`, `anthropic`, `ollama` or `offline`), else the first
    /// provider whose usual variable is set (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
    /// `OLLAMA_HOST`); `WEIR_MODEL` and `WEIR_MODEL_BASE_URL` override the model id and URL;
    /// `WEIR_MODEL_BATCH=1` makes it answer through the provider's batch API
    /// (docs/batch-calls.md). `None` means offline: no provider is configured.
    ///
    /// ```
    /// use weir_models::ModelConfig;
    ///
    /// let env = |name: &str| (name == "ANTHROPIC_API_KEY").then(|| "key".to_owned());
    /// let config = ModelConfig::from_environment(&env).unwrap().unwrap();
    /// assert!(matches!(config, ModelConfig::Anthropic(_)));
    /// assert_eq!(ModelConfig::from_environment(&|_: &str| None).unwrap(), None);
    /// ```
    pub fn from_environment(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, ModelError> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let provider = match set("WEIR_MODEL_PROVIDER") {
            Some(provider) => provider.trim().to_ascii_lowercase(),
            None if set("OPENAI_API_KEY").is_some() => "openai".into(),
            None if set("ANTHROPIC_API_KEY").is_some() => "anthropic".into(),
            None if set("OLLAMA_HOST").is_some() => "ollama".into(),
            None => return Ok(None),
        };
        let (model, base_url) = (set("WEIR_MODEL"), set("WEIR_MODEL_BASE_URL"));
        let batch = match set("WEIR_MODEL_BATCH").as_deref().map(str::trim) {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(ModelError::Config(format!("WEIR_MODEL_BATCH=`{other}` is not one of 1, true, 0, false")));
            }
        };
        let config = match provider.as_str() {
            "offline" => return Ok(None),
            "openai" => {
                let mut config = OpenAiConfig::chat(model.unwrap_or_else(|| "gpt-4o-mini".into()));
                config.base_url = base_url;
                config.batch = batch;
                ModelConfig::OpenAi(config)
            }
            "anthropic" => {
                let mut config = AnthropicConfig::chat(model.unwrap_or_else(|| "claude-3-5-haiku-latest".into()));
                config.base_url = base_url;
                config.batch = batch;
                ModelConfig::Anthropic(config)
            }
            "ollama" if batch => {
                return Err(ModelError::Config("WEIR_MODEL_BATCH: Ollama has no batch API".into()));
            }
            "ollama" => {
                let mut config = OllamaConfig::chat(model.unwrap_or_else(|| "llama3.2".into()));
                config.base_url = base_url;
                ModelConfig::Ollama(config)
            }
            other => {
                return Err(ModelError::Config(format!(
                    "WEIR_MODEL_PROVIDER=`{other}` is not one of openai, anthropic, ollama, offline"
                )));
            }
        };
        Ok(Some(config))
    }

    /// The client of the model the environment configures ([`ModelConfig::from_environment`]),
    /// with keys read through `env`; else `offline()`, for agents that ship a built-in model.
    pub fn build_from_environment(
        env: &dyn Fn(&str) -> Option<String>,
        offline: impl FnOnce() -> Arc<dyn ChatModel>,
    ) -> Result<Arc<dyn ChatModel>, ModelError> {
        Ok(match Self::from_environment(env)? {
            Some(config) => config.build_with_env(env)?,
            None => offline(),
        })
    }

    /// The client, with base URLs and keys from the process's environment where unset; a
    /// missing key is a [`ModelError::Config`] naming its variable.
    pub fn build(&self) -> Result<Arc<dyn ChatModel>, ModelError> {
        self.build_with_env(&process_env)
    }

    /// As [`ModelConfig::build`], with variables from `env`.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn ChatModel>, ModelError> {
        Ok(match self {
            ModelConfig::OpenAi(config) => {
                let (config, key) = config.resolve(env)?;
                Arc::new(OpenAiChat::new(&config, key)?)
            }
            ModelConfig::Anthropic(config) => {
                let (config, key) = config.resolve(env)?;
                Arc::new(AnthropicChat::new(&config, key)?)
            }
            ModelConfig::Ollama(config) => {
                let (config, key) = config.resolve(env)?;
                Arc::new(OllamaChat::new(&config, key)?)
            }
        })
    }
}

/// An embedding model's configuration, tagged by `provider`.
///
/// ```
/// use weir_models::EmbeddingConfig;
///
/// let config: EmbeddingConfig = serde_json::from_str(r#"{"provider": "ollama", "options": {"model": "all-minilm"}}"#).unwrap();
/// assert_eq!(config.build().unwrap().name(), "all-minilm");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum EmbeddingConfig {
    /// OpenAI or an OpenAI-compatible server.
    OpenAi(OpenAiEmbeddingConfig),
    /// Ollama's native API.
    Ollama(OllamaEmbeddingConfig),
    /// A sentence-embedding model run in-process from a directory, with no network
    /// (all-MiniLM-L6-v2); needs weir-models' `local-embeddings` feature.
    Local(LocalEmbeddingConfig),
}

/// Where a model run in-process lives, and how many texts it embeds per forward pass.
///
/// ```
/// use weir_models::EmbeddingConfig;
///
/// let config: EmbeddingConfig =
///     serde_json::from_str(r#"{"provider": "local", "model_dir": "models/all-MiniLM-L6-v2"}"#).unwrap();
/// assert!(matches!(config, EmbeddingConfig::Local(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEmbeddingConfig {
    /// The directory holding `config.json`, `model.safetensors` and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// Texts per forward pass; 32 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
}

impl EmbeddingConfig {
    /// The client, with base URLs and keys from the process's environment where unset.
    pub fn build(&self) -> Result<Arc<dyn EmbeddingModel>, ModelError> {
        self.build_with_env(&process_env)
    }

    /// As [`EmbeddingConfig::build`], with variables from `env`.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn EmbeddingModel>, ModelError> {
        Ok(match self {
            EmbeddingConfig::OpenAi(config) => {
                let (config, key) = config.resolve(env)?;
                Arc::new(OpenAiEmbeddings::new(&config, key)?)
            }
            EmbeddingConfig::Ollama(config) => {
                let (config, key) = config.resolve(env)?;
                Arc::new(OllamaEmbeddings::new(&config, key)?)
            }
            #[cfg(feature = "local-embeddings")]
            EmbeddingConfig::Local(config) => Arc::new(crate::local_embeddings::LocalEmbeddings::from_config(config)?),
            #[cfg(not(feature = "local-embeddings"))]
            EmbeddingConfig::Local(config) => {
                return Err(ModelError::Config(format!(
                    "the local model in {} needs weir-models built with the `local-embeddings` feature",
                    config.model_dir.display()
                )));
            }
        })
    }
}
