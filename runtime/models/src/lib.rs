//! Chat and embedding models for weir agents.
//!
//! One vocabulary — [`ChatMessage`], [`ToolCall`], [`ToolSpec`], [`ChatRequest`],
//! [`ChatResponse`] — shared by every provider, so that an agent, its journal and its tests
//! never depend on which provider answers.
//!
//! The clients — [`OpenAiChat`] (and every OpenAI-compatible server), [`AnthropicChat`],
//! [`OllamaChat`], [`OpenAiEmbeddings`], [`OllamaEmbeddings`] — share one HTTP layer
//! ([`HttpSettings`]): timeouts, retries with backoff honouring `Retry-After`, a concurrency
//! limit per client, and counters ([`ModelStats`]). Requests go over HTTP/1.1 keep-alive
//! connections (TLS with the system's certificates for `https`) that the calling task drives
//! itself, or through reqwest when `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` names a proxy for
//! the provider's URL. Keys ([`ApiKey`]) never reach a log or an error. An agent file declares its model as a [`ModelConfig`]:
//!
//! ```
//! use weir_models::ModelConfig;
//!
//! let config: ModelConfig = serde_json::from_value(serde_json::json!({
//!     "provider": "ollama",
//!     "options": {"model": "llama3.2", "temperature": 0.0},
//! })).unwrap();
//! let model = config.build().unwrap();
//! assert_eq!(model.name(), "llama3.2");
//! ```
//!
//! Modules: `message` and `chat`, the shared vocabulary and the [`ChatModel`] and
//! [`EmbeddingModel`] traits; `openai`, `anthropic` and `ollama`, one per provider and all of
//! one shape: its config ([`OpenAiConfig`], [`AnthropicConfig`], [`OllamaConfig`], each generic
//! over its options, with `with_options` and `chat`), its chat client, the request body as
//! structs borrowing the request, and the reply as structs read by a parser that fails with
//! [`ModelError::Malformed`] saying what was wrong; `openai_embeddings` and
//! `ollama_embeddings`, the same for embeddings;
//! `local_embeddings` (feature `local-embeddings`), `LocalEmbeddings`: all-MiniLM-L6-v2 run
//! in-process with candle, no network; `config`, the agent file's model declaration;
//! `batch`, the [`BatchApi`] of providers' batch APIs, `openai_batch`, OpenAI's, and
//! `anthropic_batch`, Anthropic's Message Batches;
//! `http` over `transport`, `retry` (the [`RetryPolicy`] HTTP tools share) and `stats`, the one HTTP layer; `wire`, rules every wire
//! format follows and the pieces two providers share; `env`, where a provider is by default;
//! `secret`, keys that never print; `error`, [`ModelError`].

mod anthropic;
mod anthropic_batch;
mod batch;
mod breaker;
mod chat;
mod config;
mod env;
mod error;
mod http;
#[cfg(feature = "local-embeddings")]
mod local_embeddings;
mod message;
mod ollama;
mod ollama_embeddings;
mod openai;
mod openai_batch;
mod openai_embeddings;
mod retry;
mod secret;
mod stats;
mod transport;
mod wire;

pub use anthropic::{ANTHROPIC_DEFAULT_MAX_TOKENS, AnthropicChat, AnthropicConfig};
pub use batch::{BatchApi, BatchRequest, BatchStatus};
pub use chat::{
    ChatModel, ChatOptions, ChatRequest, ChatResponse, EmbeddingModel, EmbeddingOptions, OutputSchema, Price,
    StopReason, Usage,
};
pub use config::{EmbeddingConfig, LocalEmbeddingConfig, ModelConfig};
pub use error::ModelError;
pub use http::HttpSettings;
#[cfg(feature = "local-embeddings")]
pub use local_embeddings::LocalEmbeddings;
pub use message::{ChatMessage, Role, ToolCall, ToolSpec};
pub use ollama::{OllamaChat, OllamaConfig, OllamaEmbeddingConfig};
pub use ollama_embeddings::OllamaEmbeddings;
pub use openai::{OpenAiAuth, OpenAiChat, OpenAiConfig, OpenAiEmbeddingConfig};
pub use openai_embeddings::OpenAiEmbeddings;
pub use retry::RetryPolicy;
pub use secret::ApiKey;
pub use stats::ModelStats;
