//! Ollama's native chat API.

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, StopReason, Usage};
use crate::env::{Env, ProviderDefaults, process_env};
use crate::error::ModelError;
use crate::http::{Endpoint, HttpSettings, endpoint_url, secret_header};
use crate::message::{ChatMessage, Role, ToolCall};
use crate::secret::ApiKey;
use crate::stats::ModelStats;
use crate::wire::{merge_extra, stop_reason, tool_result_text};

/// The provider's name in errors and logs.
const PROVIDER: &str = "ollama";

const OLLAMA_DEFAULTS: ProviderDefaults =
    ProviderDefaults { base_url: "http://127.0.0.1:11434", base_url_env: "OLLAMA_HOST" };

/// The endpoint at `path` of an Ollama server, with `key` as a bearer token if there is one
/// (a proxy in front of Ollama); shared by chat and embeddings.
pub(crate) fn ollama_endpoint(
    base_url: Option<&str>,
    path: &str,
    key: Option<ApiKey>,
    http: &HttpSettings,
) -> Result<Endpoint, ModelError> {
    let url = endpoint_url(base_url.unwrap_or(OLLAMA_DEFAULTS.base_url), path, &Default::default())?;
    let mut headers = HeaderMap::new();
    if let Some(key) = &key {
        secret_header(&mut headers, "authorization", &format!("Bearer {}", key.expose()))?;
    }
    Endpoint::new(PROVIDER, url, headers, key, http)
}

/// The base URL and key (only if a variable is named) of an Ollama configuration, from `env`
/// where it does not name them.
pub(crate) fn resolve_ollama(
    base_url: Option<&str>,
    api_key_env: Option<&str>,
    env: Env,
) -> Result<(Option<String>, Option<ApiKey>), ModelError> {
    let key = api_key_env.map(|var| ApiKey::from_lookup(var, env)).transpose()?;
    Ok((Some(OLLAMA_DEFAULTS.base_url(base_url, env)), key))
}

/// An Ollama chat model, as an agent file declares it.
///
/// ```yaml
/// provider: ollama
/// options: { model: llama3.2, temperature: 0, extra: { options: { num_ctx: 8192 } } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OllamaConfig {
    /// The model and its sampling options.
    pub options: ChatOptions,
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

impl OllamaConfig {
    /// The model `model` on the local Ollama, with every other setting at its default.
    pub fn new(model: impl Into<String>) -> Self {
        OllamaConfig {
            options: ChatOptions { model: model.into(), ..ChatOptions::default() },
            base_url: None,
            api_key_env: None,
            http: HttpSettings::default(),
        }
    }

    /// The client, with the base URL from the process's environment where unset.
    pub fn build(&self) -> Result<OllamaChat, ModelError> {
        self.build_with_env(&process_env)
    }

    /// As [`OllamaConfig::build`], with variables from `env`.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<OllamaChat, ModelError> {
        let (base_url, key) = resolve_ollama(self.base_url.as_deref(), self.api_key_env.as_deref(), env)?;
        OllamaChat::new(&OllamaConfig { base_url, ..self.clone() }, key)
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
/// let model = OllamaChat::new(&OllamaConfig::new("llama3.2"), None)?;
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
        let endpoint = ollama_endpoint(config.base_url.as_deref(), "api/chat", key, &config.http)?;
        Ok(OllamaChat { endpoint, options: config.options.clone() })
    }

    fn body(&self, request: &ChatRequest) -> Map<String, Value> {
        let options = &self.options;
        let mut body = Map::new();
        body.insert("model".into(), json!(options.model));
        let messages =
            request.messages.iter().enumerate().map(|(at, message)| wire_message(message, &request.messages[..at]));
        body.insert("messages".into(), messages.collect());
        body.insert("stream".into(), json!(false));
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters,
                }})
            });
            body.insert("tools".into(), tools.collect());
        }
        if let Some(schema) = &request.output_schema {
            body.insert("format".into(), schema.schema.clone());
        }
        let mut sampling = Map::new();
        if let Some(temperature) = options.temperature {
            sampling.insert("temperature".into(), json!(temperature));
        }
        if let Some(top_p) = options.top_p {
            sampling.insert("top_p".into(), json!(top_p));
        }
        if let Some(max_tokens) = options.max_tokens {
            sampling.insert("num_predict".into(), json!(max_tokens));
        }
        if !options.stop.is_empty() {
            sampling.insert("stop".into(), json!(options.stop));
        }
        if !sampling.is_empty() {
            body.insert("options".into(), Value::Object(sampling));
        }
        merge_extra(&mut body, &options.extra);
        body
    }
}

#[async_trait]
impl ChatModel for OllamaChat {
    fn name(&self) -> &str {
        &self.options.model
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.endpoint.call(&self.body(request), |reply| Ok(response(reply))).await
    }

    fn stats(&self) -> ModelStats {
        self.endpoint.stats()
    }
}

/// `message` on the wire; `earlier` is the conversation before it, where a tool result's call
/// is found.
fn wire_message(message: &ChatMessage, earlier: &[ChatMessage]) -> Value {
    match message.role {
        Role::Tool => {
            let mut wire = json!({"role": "tool", "content": tool_result_text(message)});
            let call_id = message.tool_call_id.as_deref();
            let calls = earlier.iter().rev().flat_map(|earlier| &earlier.tool_calls);
            if let Some(call) = calls.into_iter().find(|call| Some(call.id.as_str()) == call_id) {
                wire["tool_name"] = json!(call.name);
            }
            wire
        }
        _ => {
            let mut wire = json!({"role": message.role, "content": message.content});
            if !message.tool_calls.is_empty() {
                let calls = message
                    .tool_calls
                    .iter()
                    .map(|call| json!({"function": {"name": call.name, "arguments": call.arguments}}));
                wire["tool_calls"] = calls.collect();
            }
            wire
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
    #[serde(default)]
    arguments: Value,
}

fn response(reply: Reply) -> ChatResponse {
    let calls = reply.message.tool_calls.unwrap_or_default().into_iter().enumerate();
    let tool_calls: Vec<ToolCall> = calls
        .map(|(at, call)| ToolCall {
            id: call.id.unwrap_or_else(|| format!("call_{at}")),
            name: call.function.name,
            arguments: match call.function.arguments {
                Value::Null => Value::Object(Map::new()),
                arguments => arguments,
            },
        })
        .collect();
    let reported = match reply.done_reason.as_deref() {
        Some("length") => StopReason::MaxTokens,
        _ => StopReason::EndTurn,
    };
    ChatResponse {
        stop_reason: stop_reason(reported, &tool_calls),
        message: ChatMessage { tool_calls, ..ChatMessage::assistant(reply.message.content) },
        usage: Usage { input_tokens: reply.prompt_eval_count, output_tokens: reply.eval_count },
        model: reply.model,
    }
}
