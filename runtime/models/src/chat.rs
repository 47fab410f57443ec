//! Chat requests and responses, and the traits every model implements.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::batch::BatchApi;
use crate::error::ModelError;
use crate::message::{ChatMessage, Role, ToolCall, ToolSpec};
use crate::stats::ModelStats;

/// Sampling options of a chat model; unset fields take the provider's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatOptions {
    /// The model's id at its provider, such as `gpt-4o-mini`.
    pub model: String,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The most tokens the reply may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that end the reply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Provider fields passed through as they are, merged into the request body.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A JSON Schema the reply must conform to (structured output).
///
/// The schema is shared, not copied, by the requests and events that carry it: an agent
/// sends the same one with every request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// A name for the schema, as providers require one.
    pub name: String,
    /// The JSON Schema.
    pub schema: Arc<Value>,
}

impl OutputSchema {
    /// The schema `schema`, named `name`.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        OutputSchema { name: name.into(), schema: Arc::new(schema) }
    }
}

/// One turn of a conversation, sent to a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// The tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// The schema the reply must follow, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<OutputSchema>,
}

/// Why a model stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    #[default]
    EndTurn,
    /// It wants tools called.
    ToolUse,
    /// It hit the token limit.
    MaxTokens,
    /// It produced a stop sequence.
    StopSequence,
    /// The provider filtered the reply.
    ContentFilter,
}

/// Tokens a call used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub input_tokens: u64,
    /// Tokens of the reply.
    pub output_tokens: u64,
}

/// What a model's tokens cost, per million, in one currency (the price table's).
///
/// ```
/// use weir_models::{Price, Usage};
///
/// let price = Price { input_per_million: 0.15, output_per_million: 0.60 };
/// let cost = price.cost(Usage { input_tokens: 2_000, output_tokens: 500 });
/// assert!((cost - 0.0006).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The price of a million prompt tokens.
    pub input_per_million: f64,
    /// The price of a million reply tokens.
    pub output_per_million: f64,
}

impl Price {
    /// What `usage` costs.
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_million + usage.output_tokens as f64 * self.output_per_million)
            / 1e6
    }

    /// The price of the same tokens through the provider's batch API: half, as OpenAI and
    /// Anthropic both charge.
    ///
    /// ```
    /// use weir_models::Price;
    ///
    /// let price = Price { input_per_million: 0.15, output_per_million: 0.60 };
    /// assert_eq!(price.batch(), Price { input_per_million: 0.075, output_per_million: 0.30 });
    /// ```
    pub fn batch(&self) -> Price {
        Price { input_per_million: self.input_per_million / 2.0, output_per_million: self.output_per_million / 2.0 }
    }
}

/// A model's reply. It is journaled, so it serializes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The assistant message: text, tool calls or both.
    pub message: ChatMessage,
    /// Why it stopped.
    #[serde(default)]
    pub stop_reason: StopReason,
    /// Tokens used.
    #[serde(default)]
    pub usage: Usage,
    /// The model that answered, as the provider names it.
    #[serde(default)]
    pub model: String,
}

impl ChatRequest {
    /// The result the conversation holds for the tool call `call_id`, if it was answered.
    ///
    /// ```
    /// use weir_models::{ChatMessage, ChatRequest};
    ///
    /// let request = ChatRequest {
    ///     messages: vec![ChatMessage::user("hi"), ChatMessage::tool_result("call-1", "42", false)],
    ///     ..ChatRequest::default()
    /// };
    /// assert_eq!(request.tool_result("call-1").map(|m| m.content.as_str()), Some("42"));
    /// assert!(request.tool_result("call-2").is_none());
    /// ```
    pub fn tool_result(&self, call_id: &str) -> Option<&ChatMessage> {
        self.messages.iter().find(|m| m.role == Role::Tool && m.tool_call_id.as_deref() == Some(call_id))
    }
}

impl ChatResponse {
    /// A final text answer from `model`, with no token usage: what offline models and fakes
    /// reply.
    ///
    /// ```
    /// use weir_models::{ChatResponse, StopReason};
    ///
    /// let answer = ChatResponse::answer("offline", r#"{"score":4}"#);
    /// assert_eq!(answer.stop_reason, StopReason::EndTurn);
    /// assert_eq!(answer.message.content, r#"{"score":4}"#);
    /// ```
    pub fn answer(model: impl Into<String>, content: impl Into<String>) -> Self {
        ChatResponse {
            message: ChatMessage::assistant(content),
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
            model: model.into(),
        }
    }

    /// A reply from `model` that calls `calls`, with no text and no token usage.
    ///
    /// ```
    /// use serde_json::json;
    /// use weir_models::{ChatResponse, StopReason, ToolCall};
    ///
    /// let reply = ChatResponse::calling("offline", [ToolCall::new("call-1", "lookup", json!({"q": "x"}))]);
    /// assert_eq!(reply.stop_reason, StopReason::ToolUse);
    /// assert_eq!(reply.message.tool_calls[0].name, "lookup");
    /// ```
    pub fn calling(model: impl Into<String>, calls: impl IntoIterator<Item = ToolCall>) -> Self {
        let mut reply = Self::answer(model, "");
        reply.message.tool_calls = calls.into_iter().collect();
        reply.stop_reason = StopReason::ToolUse;
        reply
    }
}

/// A chat model: a provider's client, a fake, or an offline model.
#[async_trait]
pub trait ChatModel: Debug + Send + Sync + 'static {
    /// The model's name, for metrics and logs.
    fn name(&self) -> &str;

    /// Sends one turn and returns the reply.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;

    /// Calls, requests, retries, failures and latency so far; zeros for a model that keeps none.
    fn stats(&self) -> ModelStats {
        ModelStats::default()
    }

    /// The provider's batch API, when the model is configured to answer through it
    /// (`batch: true`, docs/batch-calls.md); `None`: every call is an ordinary one.
    fn batch(&self) -> Option<Arc<dyn BatchApi>> {
        None
    }
}

/// What an embedding model is and how it is asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingOptions {
    /// The model's id at its provider, such as `text-embedding-3-small`.
    pub model: String,
    /// Length of the vectors, for models that can shorten them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Provider fields passed through as they are, merged into the request body.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Turns texts into vectors, one per text, in the order given.
#[async_trait]
pub trait EmbeddingModel: Debug + Send + Sync + 'static {
    /// The model's name, for metrics and logs.
    fn name(&self) -> &str;

    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError>;

    /// Calls, requests, retries, failures and latency so far; zeros for a model that keeps none.
    fn stats(&self) -> ModelStats {
        ModelStats::default()
    }
}
