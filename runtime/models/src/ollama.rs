//! Ollama's native chat API.

use std::borrow::Cow;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, EmbeddingOptions, StopReason, Usage};
use crate::env::{Env, ProviderDefaults};
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings, endpoint_url, secret_header};
use crate::message::{ChatMessage, Role};
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{FunctionTool, WithExtra, stop_reason, tool_call, tool_result_text};

/// The provider's name in errors and logs.
const PROVIDER: &str = "ollama";

const OLLAMA_DEFAULTS: ProviderDefaults =
    ProviderDefaults { base_url: "http://127.0.0.1:11434", base_url_env: "OLLAMA_HOST" };

/// An Ollama model, as an agent file declares it: a chat model with [`ChatOptions`], an
/// embedding model ([`OllamaEmbeddingConfig`]) with [`EmbeddingOptions`].
///
/// ```yaml
/// provider: ollama
/// options: { model: llama3.2, temperature: 0, extra: { options: { num_ctx: 8192 } } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaConfig<Options = ChatOptions> {
    /// The model and how it is asked.
    pub options: Options,
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

/// An Ollama embedding model, as an agent file declares it.
///
/// ```yaml
/// provider: ollama
/// options: { model: all-minilm }
/// ```
pub type OllamaEmbeddingConfig = OllamaConfig<EmbeddingOptions>;

impl<Options> OllamaConfig<Options> {
    /// `options` on the local Ollama, with every other setting at its default.
    pub fn with_options(options: Options) -> Self {
        OllamaConfig { options, base_url: None, api_key_env: None, http: HttpSettings::default() }
    }

    /// This configuration with its base URL from `env` where unset, and its key if it names a
    /// variable.
    pub(crate) fn resolve(&self, env: Env) -> Result<(Self, Option<ApiKey>), ModelError>
    where
        Options: Clone,
    {
        let key = self.api_key_env.as_deref().map(|var| ApiKey::from_lookup(var, env)).transpose()?;
        let base_url = Some(OLLAMA_DEFAULTS.base_url(self.base_url.as_deref(), env));
        Ok((OllamaConfig { base_url, ..self.clone() }, key))
    }

    /// The endpoint at `path` of this server, with `key` as a bearer token if there is one;
    /// an unset base URL means the local Ollama.
    pub(crate) fn endpoint(&self, path: &str, key: Option<ApiKey>) -> Result<Endpoint, ModelError> {
        let url =
            endpoint_url(self.base_url.as_deref().unwrap_or(OLLAMA_DEFAULTS.base_url), path, &Default::default())?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &key {
            secret_header(&mut headers, "authorization", &format!("Bearer {}", key.expose()))?;
        }
        Endpoint::new(PROVIDER, url, headers, key, &self.http)
    }
}

impl OllamaConfig<ChatOptions> {
    /// The chat model `model` on the local Ollama, with every other setting at its default.
    pub fn chat(model: impl Into<String>) -> Self {
        Self::with_options(ChatOptions { model: model.into(), ..ChatOptions::default() })
    }
}

/// A chat model behind `POST {base_url}/api/chat`, not streamed.
///
/// Ollama gives tool calls no ids: the client names them `call_0`, `call_1`, ... in reply
/// order, and finds a tool result's tool name from its call id when sending it back.
///
/// ```no_run
/// use weir_models::{ChatMessage, ChatModel, ChatRequest, OllamaChat, OllamaConfig};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let model = OllamaChat::new(&OllamaConfig::chat("llama3.2"), None)?;
/// let reply = model.chat(&ChatRequest { messages: vec![ChatMessage::user("Hello")], ..Default::default() }).await?;
/// println!("{}", reply.message.content);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OllamaChat {
    endpoint: Endpoint,
    options: ChatOptions,
}

impl OllamaChat {
    /// A client of `config`'s server, sending `key` as a bearer token if given; an unset base
    /// URL means the local Ollama.
    pub fn new(config: &OllamaConfig, key: Option<ApiKey>) -> Result<Self, ModelError> {
        let endpoint = config.endpoint("api/chat", key)?;
        Ok(OllamaChat { endpoint, options: config.options.clone() })
    }

    /// The request body, borrowing the request: a tool result names its tool, found from its
    /// call id earlier in the conversation, as Ollama's tool calls have no ids.
    fn body<'r>(&'r self, request: &'r ChatRequest) -> WithExtra<'r, Body<'r>> {
        let options = &self.options;
        let sampling = Sampling {
            temperature: options.temperature,
            top_p: options.top_p,
            num_predict: options.max_tokens,
            stop: &options.stop,
        };
        let body = Body {
            model: &options.model,
            messages: request
                .messages
                .iter()
                .enumerate()
                .map(|(at, message)| wire_message(message, &request.messages[..at]))
                .collect(),
            stream: false,
            tools: request.tools.iter().map(FunctionTool::new).collect(),
            format: request.output_schema.as_ref().map(|schema| &*schema.schema),
            options: (!sampling.is_empty()).then_some(sampling),
        };
        WithExtra::new(body, &options.extra)
    }
}

#[async_trait]
impl ChatModel for OllamaChat {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.endpoint.call(&self.body(request), |reply| self.response(reply)).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

/// A `/api/chat` request body.
#[derive(Serialize)]
struct Body<'r> {
    model: &'r str,
    messages: Vec<WireMessage<'r>>,
    /// One reply, not a stream of chunks.
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<FunctionTool<'r>>,
    /// The output schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'r Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Sampling<'r>>,
}

/// The body's `options`: Ollama's names for the sampling options.
#[derive(Serialize)]
struct Sampling<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'r [String],
}

impl Sampling<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.top_p.is_none() && self.num_predict.is_none() && self.stop.is_empty()
    }
}

/// A message as Ollama takes it: tool calls with object arguments and no ids, a tool result
/// with the name of its tool.
#[derive(Serialize)]
struct WireMessage<'r> {
    role: Role,
    content: Cow<'r, str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCall<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'r str>,
}

#[derive(Serialize)]
struct WireCall<'r> {
    function: WireCallFunction<'r>,
}

#[derive(Serialize)]
struct WireCallFunction<'r> {
    name: &'r str,
    arguments: &'r Value,
}

/// `message` on the wire; `earlier` is the conversation before it, where a tool result's call
/// is found.
fn wire_message<'r>(message: &'r ChatMessage, earlier: &'r [ChatMessage]) -> WireMessage<'r> {
    let plain = WireMessage {
        role: message.role,
        content: Cow::Borrowed(&message.content),
        tool_calls: Vec::new(),
        tool_name: None,
    };
    match message.role {
        Role::Tool => {
            let call_id = message.tool_call_id.as_deref();
            let mut calls = earlier.iter().rev().flat_map(|earlier| &earlier.tool_calls);
            let call = calls.find(|call| Some(call.id.as_str()) == call_id);
            WireMessage {
                content: Cow::Owned(tool_result_text(message)),
                tool_name: call.map(|call| call.name.as_str()),
                ..plain
            }
        }
        _ => {
            let calls = message
                .tool_calls
                .iter()
                .map(|call| WireCall { function: WireCallFunction { name: &call.name, arguments: &call.arguments } });
            WireMessage { tool_calls: calls.collect(), ..plain }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    model: String,
    message: ReplyMessage,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: u64,
    #[serde(default)]
    eval_count: u64,
}

#[derive(Debug, Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    /// Absent from Ollama's documented replies; used when a server sends one.
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    /// An object; a string of JSON from some compatible servers.
    #[serde(default)]
    arguments: Value,
}

impl OllamaChat {
    fn response(&self, reply: Reply) -> Result<ChatResponse, ModelError> {
        let calls = reply.message.tool_calls.unwrap_or_default().into_iter().enumerate();
        let tool_calls = calls
            .map(|(at, WireToolCall { id, function })| {
                tool_call(id.unwrap_or_else(|| format!("call_{at}")), function.name, function.arguments)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| self.endpoint.malformed(problem))?;
        let reported = match reply.done_reason.as_deref() {
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::EndTurn,
        };
        Ok(ChatResponse {
            stop_reason: stop_reason(reported, &tool_calls),
            message: ChatMessage { tool_calls, ..ChatMessage::assistant(reply.message.content) },
            usage: Usage { input_tokens: reply.prompt_eval_count, output_tokens: reply.eval_count },
            model: reply.model,
        })
    }
}
