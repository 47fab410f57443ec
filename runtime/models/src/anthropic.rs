//! Anthropic's Messages API.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anthropic_batch::AnthropicBatch;
use crate::batch::BatchApi;
use crate::chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, StopReason, Usage};
use crate::env::{Env, ProviderDefaults};
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings, endpoint_url, secret_header};
use crate::message::{ChatMessage, Role, ToolCall};
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{WithExtra, stop_reason, tool_call};

/// The provider's name in errors and logs.
const PROVIDER: &str = "anthropic";

const ANTHROPIC_DEFAULTS: ProviderDefaults =
    ProviderDefaults { base_url: "https://api.anthropic.com", base_url_env: "ANTHROPIC_BASE_URL" };

/// The variable holding the key unless `api_key_env` names another.
const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// The `anthropic-version` header unless `api_version` names another.
const API_VERSION: &str = "2023-06-01";

/// `max_tokens` when the options leave it unset, as the API requires one.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// An Anthropic model, as an agent file declares it: a chat model with [`ChatOptions`]
/// (Anthropic has no embedding API).
///
/// Body fields this configuration has no name for go in the options' `extra`, merged into
/// the request, such as `metadata: {user_id: ...}`.
///
/// ```yaml
/// provider: anthropic
/// options: { model: claude-sonnet-4-5, max_tokens: 1024 }
/// api_version: "2023-06-01"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig<Options = ChatOptions> {
    /// The model and how it is asked; a chat model's `max_tokens` defaults to
    /// [`ANTHROPIC_DEFAULT_MAX_TOKENS`].
    pub options: Options,
    /// Base URL; default `$ANTHROPIC_BASE_URL`, else `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The variable holding the key; default `ANTHROPIC_API_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The `anthropic-version` header; default `2023-06-01`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Timeouts, retries and concurrency.
    #[serde(default)]
    pub http: HttpSettings,
    /// Answer through Anthropic's Message Batches API (docs/batch-calls.md): half the token
    /// price, results within a day.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

fn default_api_version() -> String {
    API_VERSION.to_owned()
}

impl<Options> AnthropicConfig<Options> {
    /// `options` on api.anthropic.com, with every other setting at its default.
    pub fn with_options(options: Options) -> Self {
        AnthropicConfig {
            options,
            base_url: None,
            api_key_env: None,
            api_version: default_api_version(),
            http: HttpSettings::default(),
            batch: false,
        }
    }

    /// This configuration with its base URL and key from `env` where it does not name them.
    pub(crate) fn resolve(&self, env: Env) -> Result<(Self, ApiKey), ModelError>
    where
        Options: Clone,
    {
        let key = ApiKey::from_lookup(self.api_key_env.as_deref().unwrap_or(API_KEY_ENV), env)?;
        let base_url = Some(ANTHROPIC_DEFAULTS.base_url(self.base_url.as_deref(), env));
        Ok((AnthropicConfig { base_url, ..self.clone() }, key))
    }

    /// The endpoint at `path` of this server, sending `key` and the API version; an unset base
    /// URL means api.anthropic.com.
    pub(crate) fn endpoint(&self, path: &str, key: ApiKey) -> Result<Endpoint, ModelError> {
        let headers = self.headers(&key)?;
        Endpoint::new(PROVIDER, self.url(path)?, headers, Some(key), &self.http)
    }

    /// The URL of `path` on this server; an unset base URL means api.anthropic.com.
    pub(crate) fn url(&self, path: &str) -> Result<url::Url, ModelError> {
        endpoint_url(self.base_url.as_deref().unwrap_or(ANTHROPIC_DEFAULTS.base_url), path, &Default::default())
    }

    /// The headers every request sends: the key and the API version.
    pub(crate) fn headers(&self, key: &ApiKey) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        secret_header(&mut headers, "x-api-key", key.expose())?;
        let version = HeaderValue::from_str(&self.api_version).map_err(|_| {
            ModelError::Config(format!("{PROVIDER} api_version `{}` is not a header", self.api_version))
        })?;
        headers.insert(HeaderName::from_static("anthropic-version"), version);
        Ok(headers)
    }
}

impl AnthropicConfig<ChatOptions> {
    /// The chat model `model` on api.anthropic.com, with every other setting at its default.
    pub fn chat(model: impl Into<String>) -> Self {
        Self::with_options(ChatOptions { model: model.into(), ..ChatOptions::default() })
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
    batch: Option<Arc<AnthropicBatch>>,
}

impl AnthropicChat {
    /// A client of `config`'s server with `key`; an unset base URL means api.anthropic.com.
    pub fn new(config: &AnthropicConfig, key: ApiKey) -> Result<Self, ModelError> {
        let endpoint = config.endpoint("v1/messages", key.clone())?;
        let mut chat = AnthropicChat { endpoint, options: config.options.clone(), batch: None };
        if config.batch {
            chat.batch = Some(Arc::new(AnthropicBatch::new(config, key, chat.clone())?));
        }
        Ok(chat)
    }

    /// The request body, borrowing the request: the system messages go to `system`, an output
    /// schema becomes a tool the model must call.
    pub(crate) fn body<'r>(&'r self, request: &'r ChatRequest) -> WithExtra<'r, Body<'r>> {
        let options = &self.options;
        let system: Vec<&str> =
            request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
        let mut tools: Vec<WireTool> = request
            .tools
            .iter()
            .map(|tool| WireTool { name: &tool.name, description: &tool.description, input_schema: &tool.parameters })
            .collect();
        let tool_choice = request.output_schema.as_ref().map(|schema| {
            tools.push(WireTool {
                name: &schema.name,
                description: "Give your answer by calling this tool with it.",
                input_schema: &schema.schema,
            });
            ToolChoice { kind: "tool", name: &schema.name }
        });
        let body = Body {
            model: &options.model,
            max_tokens: options.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages: wire_messages(&request.messages),
            tools,
            tool_choice,
            temperature: options.temperature,
            top_p: options.top_p,
            stop_sequences: &options.stop,
        };
        WithExtra::new(body, &options.extra)
    }
}

#[async_trait]
impl ChatModel for AnthropicChat {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let forced_tool = request.output_schema.as_ref().map(|schema| schema.name.as_str());
        self.endpoint.call(&self.body(request), |message| self.response(message, forced_tool)).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }

    fn batch(&self) -> Option<Arc<dyn BatchApi>> {
        self.batch.clone().map(|batch| batch as Arc<dyn BatchApi>)
    }
}

/// A Messages request body.
#[derive(Serialize)]
pub(crate) struct Body<'r> {
    model: &'r str,
    max_tokens: u32,
    /// The system messages, joined: the API takes instructions apart from the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'r>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoice<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'r [String],
}

#[derive(Serialize)]
struct WireTool<'r> {
    name: &'r str,
    description: &'r str,
    input_schema: &'r Value,
}

#[derive(Serialize)]
struct ToolChoice<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'r str,
}

/// A message as the Messages API takes it: a user or assistant turn, its content a string or
/// a list of blocks.
#[derive(Serialize)]
struct WireMessage<'r> {
    role: Role,
    content: WireContent<'r>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'r> {
    Text(&'r str),
    Blocks(Vec<WireBlock<'r>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'r> {
    Text {
        text: &'r str,
    },
    ToolUse {
        id: &'r str,
        name: &'r str,
        input: &'r Value,
    },
    ToolResult {
        tool_use_id: &'r str,
        content: &'r str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

/// The conversation without its system messages, tool results as `tool_result` blocks of user
/// messages, consecutive ones in one message.
fn wire_messages(messages: &[ChatMessage]) -> Vec<WireMessage<'_>> {
    let mut wire: Vec<WireMessage> = Vec::new();
    for message in messages {
        let (role, content) = match message.role {
            Role::System => continue,
            Role::User => (Role::User, WireContent::Text(&message.content)),
            Role::Assistant if message.tool_calls.is_empty() => (Role::Assistant, WireContent::Text(&message.content)),
            Role::Assistant => {
                let text = (!message.content.is_empty()).then_some(WireBlock::Text { text: &message.content });
                let calls = message.tool_calls.iter().map(|call| WireBlock::ToolUse {
                    id: &call.id,
                    name: &call.name,
                    input: &call.arguments,
                });
                (Role::Assistant, WireContent::Blocks(text.into_iter().chain(calls).collect()))
            }
            Role::Tool => {
                let result = WireBlock::ToolResult {
                    tool_use_id: message.tool_call_id.as_deref().unwrap_or_default(),
                    content: &message.content,
                    is_error: message.is_error,
                };
                match wire.last_mut().and_then(tool_results) {
                    Some(results) => {
                        results.push(result);
                        continue;
                    }
                    None => (Role::User, WireContent::Blocks(vec![result])),
                }
            }
        };
        wire.push(WireMessage { role, content });
    }
    wire
}

/// The blocks of `message` if it is a user message of tool results, which more can join.
fn tool_results<'m, 'r>(message: &'m mut WireMessage<'r>) -> Option<&'m mut Vec<WireBlock<'r>>> {
    match &mut message.content {
        WireContent::Blocks(blocks) if blocks.iter().all(|block| matches!(block, WireBlock::ToolResult { .. })) => {
            Some(blocks)
        }
        _ => None,
    }
}

/// A Messages reply.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
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
    /// Reasoning (this and the next), which the vocabulary has no place for.
    Thinking {},
    RedactedThinking {},
    /// Blocks of features this client does not ask for (server tools, ...): skipped, unless
    /// they are all the reply has.
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

impl AnthropicChat {
    /// The reply in the shared vocabulary; a call of `forced_tool` is the structured answer.
    pub(crate) fn response(&self, message: Message, forced_tool: Option<&str>) -> Result<ChatResponse, ModelError> {
        let mut text = String::new();
        let mut tool_calls: Vec<ToolCall> = Vec::new();
        let mut answered = false;
        let mut skipped = 0;
        for block in message.content {
            match block {
                Block::Text { text: part } if !answered => text.push_str(&part),
                Block::ToolUse { id, name, input } => {
                    let call = tool_call(id, name, input).map_err(|problem| self.endpoint.malformed(problem))?;
                    if Some(call.name.as_str()) == forced_tool {
                        text = call.arguments.to_string();
                        answered = true;
                    } else {
                        tool_calls.push(call);
                    }
                }
                Block::Other => skipped += 1,
                Block::Text { .. } | Block::Thinking {} | Block::RedactedThinking {} => {}
            }
        }
        if skipped > 0 && text.is_empty() && tool_calls.is_empty() {
            let problem = format!("the reply's only content is {skipped} block(s) of types this client does not read");
            return Err(self.endpoint.malformed(problem));
        }
        let reported = match message.stop_reason.as_deref() {
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("tool_use") if !answered => StopReason::ToolUse,
            Some("refusal") => StopReason::ContentFilter,
            _ => StopReason::EndTurn,
        };
        Ok(ChatResponse {
            stop_reason: stop_reason(reported, &tool_calls),
            message: ChatMessage { tool_calls, ..ChatMessage::assistant(text) },
            usage: Usage { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens },
            model: message.model,
        })
    }
}
