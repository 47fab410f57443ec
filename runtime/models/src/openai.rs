//! OpenAI's Chat Completions API, and the servers compatible with it (Azure OpenAI, vLLM,
//! LiteLLM, ...), which differ only in base URL, auth header and query parameters.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch::BatchApi;
use crate::chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, EmbeddingOptions, StopReason, Usage};
use crate::env::{Env, ProviderDefaults};
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings, endpoint_url, secret_header};
use crate::message::{ChatMessage, Role};
use crate::openai_batch::OpenAiBatch;
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{FunctionTool, WithExtra, stop_reason, tool_call, tool_result_text};

/// The provider's name in errors and logs.
const PROVIDER: &str = "openai";

const OPENAI_DEFAULTS: ProviderDefaults =
    ProviderDefaults { base_url: "https://api.openai.com/v1", base_url_env: "OPENAI_BASE_URL" };

/// How the key is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenAiAuth {
    /// `Authorization: Bearer <key>`: OpenAI and most compatible servers.
    #[default]
    Bearer,
    /// `api-key: <key>`: Azure OpenAI.
    ApiKey,
}

/// The variable holding the key unless `api_key_env` names another.
const API_KEY_ENV: &str = "OPENAI_API_KEY";

/// An OpenAI-compatible model, as an agent file declares it: a chat model with
/// [`ChatOptions`], an embedding model ([`OpenAiEmbeddingConfig`]) with [`EmbeddingOptions`].
///
/// Body fields this configuration has no name for go in the options' `extra`, merged into
/// the request: `max_tokens` for servers that predate `max_completion_tokens`, or
/// `response_format: {json_schema: {strict: false}}` for a schema strict mode rejects.
///
/// ```yaml
/// provider: openai
/// options: { model: gpt-4o-mini, temperature: 0.2 }
/// base_url: https://my-resource.openai.azure.com/openai/deployments/gpt-4o-mini
/// api_key_env: AZURE_OPENAI_API_KEY
/// auth: api-key
/// query: { api-version: "2024-10-21" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig<Options = ChatOptions> {
    /// The model and how it is asked.
    pub options: Options,
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
    /// Answer through OpenAI's Batch API, at half the price, within hours (chat models only;
    /// docs/batch-calls.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// An OpenAI-compatible embedding model, as an agent file declares it.
///
/// ```yaml
/// provider: openai
/// options: { model: text-embedding-3-small, dimensions: 512 }
/// ```
pub type OpenAiEmbeddingConfig = OpenAiConfig<EmbeddingOptions>;

impl<Options> OpenAiConfig<Options> {
    /// `options` on api.openai.com, with every other setting at its default.
    pub fn with_options(options: Options) -> Self {
        OpenAiConfig {
            options,
            base_url: None,
            api_key_env: None,
            auth: OpenAiAuth::default(),
            query: BTreeMap::new(),
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
        let base_url = Some(OPENAI_DEFAULTS.base_url(self.base_url.as_deref(), env));
        Ok((OpenAiConfig { base_url, ..self.clone() }, key))
    }

    /// The endpoint at `path` of this server, sending `key` as `auth` says; an unset base URL
    /// means api.openai.com.
    pub(crate) fn endpoint(&self, path: &str, key: ApiKey) -> Result<Endpoint, ModelError> {
        let url = self.url(path)?;
        Endpoint::new(PROVIDER, url, self.auth_headers(&key)?, Some(key), &self.http)
    }

    /// `path` on this server, with the configured query.
    pub(crate) fn url(&self, path: &str) -> Result<url::Url, ModelError> {
        endpoint_url(self.base_url.as_deref().unwrap_or(OPENAI_DEFAULTS.base_url), path, &self.query)
    }

    /// The headers that send `key` as `auth` says.
    pub(crate) fn auth_headers(&self, key: &ApiKey) -> Result<HeaderMap, ModelError> {
        let mut headers = HeaderMap::new();
        match self.auth {
            OpenAiAuth::Bearer => secret_header(&mut headers, "authorization", &format!("Bearer {}", key.expose()))?,
            OpenAiAuth::ApiKey => secret_header(&mut headers, "api-key", key.expose())?,
        }
        Ok(headers)
    }
}

impl OpenAiConfig<ChatOptions> {
    /// The chat model `model` on api.openai.com, with every other setting at its default.
    pub fn chat(model: impl Into<String>) -> Self {
        Self::with_options(ChatOptions { model: model.into(), ..ChatOptions::default() })
    }
}

/// A chat model behind `POST {base_url}/chat/completions`.
///
/// ```no_run
/// use weir_models::{ApiKey, ChatMessage, ChatModel, ChatRequest, OpenAiChat, OpenAiConfig};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let model = OpenAiChat::new(&OpenAiConfig::chat("gpt-4o-mini"), ApiKey::from_env("OPENAI_API_KEY")?)?;
/// let reply = model.chat(&ChatRequest { messages: vec![ChatMessage::user("Hello")], ..Default::default() }).await?;
/// println!("{}", reply.message.content);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    endpoint: Endpoint,
    options: ChatOptions,
    batch: Option<Arc<OpenAiBatch>>,
}

impl OpenAiChat {
    /// A client of `config`'s server with `key`; an unset base URL means api.openai.com.
    pub fn new(config: &OpenAiConfig, key: ApiKey) -> Result<Self, ModelError> {
        let endpoint = config.endpoint("chat/completions", key.clone())?;
        let mut chat = OpenAiChat { endpoint, options: config.options.clone(), batch: None };
        if config.batch {
            chat.batch = Some(Arc::new(OpenAiBatch::new(config, key, chat.clone())?));
        }
        Ok(chat)
    }

    /// The request body, borrowing the request: a conversation's messages, schema and tool
    /// parameters are written straight to the wire, not copied into a JSON tree first.
    pub(crate) fn body<'r>(&'r self, request: &'r ChatRequest) -> WithExtra<'r, Body<'r>> {
        let options = &self.options;
        let response_format = request.output_schema.as_ref().map(|schema| ResponseFormat {
            kind: "json_schema",
            json_schema: JsonSchemaFormat { name: &schema.name, schema: &schema.schema, strict: true },
        });
        let body = Body {
            model: &options.model,
            messages: request.messages.iter().map(wire_message).collect(),
            tools: request.tools.iter().map(FunctionTool::new).collect(),
            response_format,
            temperature: options.temperature,
            top_p: options.top_p,
            max_completion_tokens: options.max_tokens,
            stop: &options.stop,
        };
        WithExtra::new(body, &options.extra)
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.endpoint.call(&self.body(request), |completion| self.response(completion)).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }

    fn batch(&self) -> Option<Arc<dyn BatchApi>> {
        self.batch.clone().map(|batch| batch as Arc<dyn BatchApi>)
    }
}

/// A Chat Completions request body.
#[derive(Serialize)]
pub(crate) struct Body<'r> {
    model: &'r str,
    messages: Vec<WireMessage<'r>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<FunctionTool<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'r [String],
}

#[derive(Serialize)]
struct ResponseFormat<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchemaFormat<'r>,
}

#[derive(Serialize)]
struct JsonSchemaFormat<'r> {
    name: &'r str,
    schema: &'r Value,
    strict: bool,
}

/// A message as Chat Completions takes it: `content` is null for an assistant message that
/// only calls tools.
#[derive(Serialize)]
struct WireMessage<'r> {
    role: Role,
    content: Option<Cow<'r, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCall<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'r str>,
}

#[derive(Serialize)]
struct WireCall<'r> {
    id: &'r str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireCallFunction<'r>,
}

#[derive(Serialize)]
struct WireCallFunction<'r> {
    name: &'r str,
    /// The wire carries the arguments as a JSON string, not an object.
    arguments: String,
}

fn wire_message(message: &ChatMessage) -> WireMessage<'_> {
    let content = Some(Cow::Borrowed(message.content.as_str()));
    let plain = WireMessage { role: message.role, content, tool_calls: Vec::new(), tool_call_id: None };
    match message.role {
        Role::System | Role::User => plain,
        Role::Assistant if message.tool_calls.is_empty() => plain,
        Role::Assistant => {
            let calls = message.tool_calls.iter().map(|call| WireCall {
                id: &call.id,
                kind: "function",
                function: WireCallFunction { name: &call.name, arguments: call.arguments.to_string() },
            });
            let content = (!message.content.is_empty()).then_some(Cow::Borrowed(message.content.as_str()));
            WireMessage { content, tool_calls: calls.collect(), ..plain }
        }
        Role::Tool => WireMessage {
            content: Some(Cow::Owned(tool_result_text(message))),
            tool_call_id: Some(message.tool_call_id.as_deref().unwrap_or_default()),
            ..plain
        },
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    #[serde(default)]
    model: String,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: ReplyMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    /// A string of JSON.
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Deserialize)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl OpenAiChat {
    pub(crate) fn response(&self, completion: Completion) -> Result<ChatResponse, ModelError> {
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(self.endpoint.malformed("the reply has no choices"));
        };
        let tool_calls = choice.message.tool_calls.unwrap_or_default().into_iter();
        let tool_calls = tool_calls
            .map(|WireToolCall { id, function }| tool_call(id, function.name, function.arguments))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| self.endpoint.malformed(problem))?;
        let refused = choice.message.refusal.is_some();
        let reported = match choice.finish_reason.as_deref() {
            _ if refused => StopReason::ContentFilter,
            Some("length") => StopReason::MaxTokens,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("content_filter") => StopReason::ContentFilter,
            _ => StopReason::EndTurn,
        };
        let content = choice.message.content.or(choice.message.refusal).unwrap_or_default();
        let usage = completion.usage.map_or_else(Usage::default, |usage| Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
        });
        Ok(ChatResponse {
            stop_reason: stop_reason(reported, &tool_calls),
            message: ChatMessage { tool_calls, ..ChatMessage::assistant(content) },
            usage,
            model: completion.model,
        })
    }
}
