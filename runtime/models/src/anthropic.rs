//! Anthropic's Messages API.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, StopReason, Usage};
use crate::env::{Env, ProviderDefaults};
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings, endpoint_url, secret_header};
use crate::message::{ChatMessage, Role, ToolCall};
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{merge_extra, stop_reason};

/// The provider's name in errors and logs.
const PROVIDER: &str = "anthropic";

const ANTHROPIC_DEFAULTS: ProviderDefaults =
    ProviderDefaults { base_url: "https://api.anthropic.com", base_url_env: "ANTHROPIC_BASE_URL" };

/// The variable holding the key unless `api_key_env` names another.
const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// `max_tokens` when the options leave it unset, as the API requires one.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// An Anthropic chat model, as an agent file declares it.
///
/// ```yaml
/// provider: anthropic
/// options: { model: claude-sonnet-4-5, max_tokens: 1024 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The model and its sampling options; `max_tokens` defaults to
    /// [`ANTHROPIC_DEFAULT_MAX_TOKENS`].
    pub options: ChatOptions,
    /// Base URL; default `$ANTHROPIC_BASE_URL`, else `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The variable holding the key; default `ANTHROPIC_API_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The `anthropic-version` header.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Timeouts, retries and concurrency.
    #[serde(default)]
    pub http: HttpSettings,
}

fn default_api_version() -> String {
    "2023-06-01".to_owned()
}

impl AnthropicConfig {
    /// The chat model `model` on api.anthropic.com, with every other setting at its default.
    pub fn chat(model: impl Into<String>) -> Self {
        AnthropicConfig {
            options: ChatOptions { model: model.into(), ..ChatOptions::default() },
            base_url: None,
            api_key_env: None,
            api_version: default_api_version(),
            http: HttpSettings::default(),
        }
    }

    /// This configuration with its base URL and key from `env` where it does not name them.
    pub(crate) fn resolve(&self, env: Env) -> Result<(Self, ApiKey), ModelError> {
        let key = ApiKey::from_lookup(self.api_key_env.as_deref().unwrap_or(API_KEY_ENV), env)?;
        let base_url = Some(ANTHROPIC_DEFAULTS.base_url(self.base_url.as_deref(), env));
        Ok((AnthropicConfig { base_url, ..self.clone() }, key))
    }
}

/// A chat model behind `POST {base_url}/v1/messages`.
///
/// Structured output is a tool the model is made to call, whose input schema is the output
/// schema; the reply's text is then that call's input, as JSON.
///
/// ```no_run
/// use weir_models::{AnthropicChat, AnthropicConfig, ApiKey, ChatMessage, ChatModel, ChatRequest};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let key = ApiKey::from_env("ANTHROPIC_API_KEY")?;
/// let model = AnthropicChat::new(&AnthropicConfig::chat("claude-sonnet-4-5"), key)?;
/// let reply = model.chat(&ChatRequest { messages: vec![ChatMessage::user("Hello")], ..Default::default() }).await?;
/// println!("{}", reply.message.content);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicChat {
    endpoint: Endpoint,
    options: ChatOptions,
}

impl AnthropicChat {
    /// A client of `config`'s server with `key`; an unset base URL means api.anthropic.com.
    pub fn new(config: &AnthropicConfig, key: ApiKey) -> Result<Self, ModelError> {
        let base = config.base_url.as_deref().unwrap_or(ANTHROPIC_DEFAULTS.base_url);
        let url = endpoint_url(base, "v1/messages", &Default::default())?;
        let mut headers = HeaderMap::new();
        secret_header(&mut headers, "x-api-key", key.expose())?;
        let version = HeaderValue::from_str(&config.api_version).map_err(|_| {
            ModelError::Config(format!("anthropic api_version `{}` is not a header", config.api_version))
        })?;
        headers.insert(HeaderName::from_static("anthropic-version"), version);
        let endpoint = Endpoint::new(PROVIDER, url, headers, Some(key), &config.http)?;
        Ok(AnthropicChat { endpoint, options: config.options.clone() })
    }

    fn body(&self, request: &ChatRequest) -> Map<String, Value> {
        let options = &self.options;
        let mut body = Map::new();
        body.insert("model".into(), json!(options.model));
        body.insert("max_tokens".into(), json!(options.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)));
        let system: Vec<&str> =
            request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(wire_messages(&request.messages)));
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
            .collect();
        if let Some(schema) = &request.output_schema {
            tools.push(json!({
                "name": schema.name,
                "description": "Give your answer by calling this tool with it.",
                "input_schema": schema.schema,
            }));
            body.insert("tool_choice".into(), json!({"type": "tool", "name": schema.name}));
        }
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(temperature) = options.temperature {
            body.insert("temperature".into(), json!(temperature));
        }
        if let Some(top_p) = options.top_p {
            body.insert("top_p".into(), json!(top_p));
        }
        if !options.stop.is_empty() {
            body.insert("stop_sequences".into(), json!(options.stop));
        }
        merge_extra(&mut body, &options.extra);
        body
    }
}

#[async_trait]
impl ChatModel for AnthropicChat {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let forced_tool = request.output_schema.as_ref().map(|schema| schema.name.as_str());
        self.endpoint.call(&self.body(request), |reply| Ok(response(reply, forced_tool))).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

/// The conversation without its system messages, tool results as `tool_result` blocks of user
/// messages, consecutive ones in one message.
fn wire_messages(messages: &[ChatMessage]) -> Vec<Value> {
    let mut wire: Vec<Value> = Vec::new();
    for message in messages {
        match message.role {
            Role::System => {}
            Role::User => wire.push(json!({"role": "user", "content": message.content})),
            Role::Assistant if message.tool_calls.is_empty() => {
                wire.push(json!({"role": "assistant", "content": message.content}));
            }
            Role::Assistant => {
                let text = (!message.content.is_empty()).then(|| json!({"type": "text", "text": message.content}));
                let calls = message
                    .tool_calls
                    .iter()
                    .map(|call| json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}));
                wire.push(json!({"role": "assistant", "content": text.into_iter().chain(calls).collect::<Vec<_>>()}));
            }
            Role::Tool => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                    "content": message.content,
                });
                if message.is_error {
                    block["is_error"] = json!(true);
                }
                match wire.last_mut().and_then(tool_results) {
                    Some(results) => results.push(block),
                    None => wire.push(json!({"role": "user", "content": [block]})),
                }
            }
        }
    }
    wire
}

/// The blocks of `message` if it is a user message of tool results, which more can join.
fn tool_results(message: &mut Value) -> Option<&mut Vec<Value>> {
    let blocks = message.get_mut("content")?.as_array_mut()?;
    blocks.iter().all(|block| block["type"] == "tool_result").then_some(blocks)
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    model: String,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: MessageUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking and server-tool blocks, which the vocabulary has no place for.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct MessageUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// The reply in the shared vocabulary; a call of `forced_tool` is the structured answer.
fn response(message: Message, forced_tool: Option<&str>) -> ChatResponse {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut answered = false;
    for block in message.content {
        match block {
            Block::Text { text: part } if !answered => text.push_str(&part),
            Block::ToolUse { name, input, .. } if Some(name.as_str()) == forced_tool => {
                text = input.to_string();
                answered = true;
            }
            Block::ToolUse { id, name, input } => tool_calls.push(ToolCall { id, name, arguments: input }),
            Block::Text { .. } | Block::Other => {}
        }
    }
    let reported = match message.stop_reason.as_deref() {
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("tool_use") if !answered => StopReason::ToolUse,
        Some("refusal") => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    };
    ChatResponse {
        stop_reason: stop_reason(reported, &tool_calls),
        message: ChatMessage { tool_calls, ..ChatMessage::assistant(text) },
        usage: Usage { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens },
        model: message.model,
    }
}
