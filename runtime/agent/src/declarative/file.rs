//! The file's format, and parsing it with errors that name the field and the line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_models::{EmbeddingConfig, ModelConfig, Price};
use weir_tools::HttpToolConfig;
use weir_tools::mcp::McpServerConfig;

use crate::agent::TraceSettings;
use crate::budget::Budget;
use crate::error::AgentError;
use crate::prompt::{Prompt, PromptMessage};
use crate::tool_binding::ArgumentSource;

/// A declared agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// The agent's name: its commits live under `agents/<name>/`.
    pub name: String,
    /// What it is for, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// `react` or `workflow`.
    pub kind: AgentKind,
    /// Chat models by name; a ReAct agent or a step without `model` uses `default`, or the
    /// only one.
    pub models: BTreeMap<String, ModelDecl>,
    /// MCP servers whose tools and prompts the agent may use.
    #[serde(default)]
    pub mcp_servers: Vec<McpServerConfig>,
    /// The tools the model may call: the agent's allow-list.
    #[serde(default)]
    pub tools: Vec<ToolDecl>,
    /// ReAct: the prompt, filled from the input's fields, `{input}` and `{key}`.
    #[serde(default)]
    pub prompt: Option<PromptDecl>,
    /// ReAct: the JSON Schema the answer must match.
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// Workflow: chat steps run in order, each seeing the answers of those before it.
    #[serde(default)]
    pub steps: Vec<StepDecl>,
    /// The most model calls per conversation.
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// How often an answer that does not match its schema is sent back (default 2).
    #[serde(default)]
    pub max_output_retries: Option<u32>,
    /// How long short-term memory entries live.
    #[serde(default)]
    pub memory_ttl_ms: Option<u64>,
    /// Long-term memory sets by name: what each keeps, what the agent recalls of it into
    /// its prompts and remembers of its answers.
    #[serde(default)]
    pub memory_sets: BTreeMap<String, MemorySetDecl>,
    /// Configuration entries, for hidden tool arguments.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// What the trace records of calls (content, redacted fields).
    #[serde(default)]
    pub trace: TraceSettings,
    /// What each model's tokens cost, by the model's name at its provider.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// What each key may spend on model calls per period.
    #[serde(default)]
    pub key_budget: Option<Budget>,
    /// What the agent as a whole may spend on model calls per period.
    #[serde(default)]
    pub agent_budget: Option<Budget>,
}

/// Which kind of agent a file declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// A prompt, tools and an output schema, looped by the model.
    React,
    /// Chat steps in order.
    Workflow,
}

/// A model: a provider's configuration, or `environment` for whatever the environment
/// configures (`WEIR_MODEL_PROVIDER`, `OPENAI_API_KEY`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelDecl {
    /// `environment`: the model the process's environment configures.
    Environment(EnvironmentModel),
    /// A provider's configuration.
    Config(Box<ModelConfig>),
}

/// The word `environment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentModel {
    /// Whatever the environment configures.
    Environment,
}

/// A prompt: a text, a list of messages, or an MCP server's prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptDecl {
    /// A text template.
    Text(String),
    /// Message templates.
    Messages(Vec<PromptMessage>),
    /// A prompt fetched from an MCP server when the agent loads.
    Mcp {
        /// Which prompt.
        mcp: McpPromptRef,
    },
}

/// A prompt of an MCP server. Its arguments may hold `{placeholders}`, filled per event
/// after the server has rendered the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpPromptRef {
    /// The server's name in `mcp_servers`.
    pub server: String,
    /// The prompt's name.
    pub name: String,
    #[serde(default)]
    pub arguments: BTreeMap<String, String>,
}

/// A tool or tools: exactly one of `http`, `mcp` or `knowledge_base`, with arguments to hide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDecl {
    /// An HTTP endpoint.
    #[serde(default)]
    pub http: Option<HttpToolConfig>,
    /// Tools of an MCP server.
    #[serde(default)]
    pub mcp: Option<McpToolsRef>,
    /// A search tool over a knowledge base of the store (`weir kb add`).
    #[serde(default)]
    pub knowledge_base: Option<KnowledgeBaseRef>,
    /// Arguments hidden from the model, and where their values come from.
    #[serde(default)]
    pub hide: BTreeMap<String, ArgumentSource>,
}

/// A knowledge base to search, as a tool (`weir_agent::knowledge_base_tool`), and as context
/// when `context` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseRef {
    /// The knowledge base's name; with an S3 vector bucket as `store`, the index's.
    pub name: String,
    /// The store URL it lives in; the agent's store (`WEIR_STORE`) when absent. An AWS S3
    /// vector bucket is `s3vectors://BUCKET` (it then needs `embedding`).
    #[serde(default)]
    pub store: Option<String>,
    /// The tool's name; `search_<name>` when absent.
    #[serde(default)]
    pub tool: Option<String>,
    /// The embedding model its vectors come from, for hybrid search; BM25 alone when absent
    /// (a weir knowledge base only).
    #[serde(default)]
    pub embedding: Option<EmbeddingConfig>,
    /// Also as context: before the first step, the best `context` passages for the input
    /// are searched (a journaled call of the tool) and filled into the prompts as
    /// `{knowledge.<name>}`, each as `- [document] text`.
    #[serde(default)]
    pub context: Option<usize>,
}

/// A long-term memory set per key, used as context: before the first step, the memories
/// best matching the input are recalled into the prompts as `{memories.<set>}`; after the
/// output, what `remember` renders is remembered. Both as `Context::recall` and
/// `Context::remember` do: committed with the key's state, summarised in a journaled call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySetDecl {
    /// The most memories kept; past it the oldest are summarised by `summarizer`, or dropped.
    #[serde(default)]
    pub capacity: Option<usize>,
    /// How long a memory lives, in milliseconds.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// The model in `models` that summarises memories past the capacity.
    #[serde(default)]
    pub summarizer: Option<String>,
    /// The embedding model memories and queries are embedded by; by words (BM25) when absent.
    #[serde(default)]
    pub embedding: Option<EmbeddingConfig>,
    /// How many memories to recall into `{memories.<set>}`, searched by the input (default 5).
    #[serde(default)]
    pub recall: Option<usize>,
    /// What to remember of each input answered: a template over the input's fields,
    /// `{input}`, `{key}` and `{answer}`; nothing is remembered when absent.
    #[serde(default)]
    pub remember: Option<String>,
}

/// Tools of an MCP server: all of them, or those named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolsRef {
    /// The server's name in `mcp_servers`.
    pub server: String,
    /// The tools to allow; all the server's when absent.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

/// One chat step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDecl {
    /// The step's name: later prompts read its answer as `{<name>}`.
    pub name: String,
    /// The model, by name in `models`.
    #[serde(default)]
    pub model: Option<String>,
    pub prompt: PromptDecl,
    /// The tools the model may call in this step, by name.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The JSON Schema the step's answer must match; without one the answer is text.
    #[serde(default)]
    pub output_schema: Option<Value>,
}

impl PromptDecl {
    /// The prompt, unless it must be fetched from an MCP server.
    pub(crate) fn local(&self) -> Option<Prompt> {
        match self {
            PromptDecl::Text(text) => Some(Prompt::Text(text.clone())),
            PromptDecl::Messages(messages) => Some(Prompt::Messages(messages.clone())),
            PromptDecl::Mcp { .. } => None,
        }
    }
}

impl AgentFile {
    /// Parses a file: YAML (`.yaml`, `.yml`) or TOML (`.toml`) by its extension.
    pub fn parse(path: &Path, text: &str) -> Result<Self, AgentError> {
        let file = path.display();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => {
                // Through JSON: serde_yaml reads enums only as `!tags`, and the file's
                // `{stdio: {...}}` style must read as it does in TOML and JSON.
                let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
                    let line = e.location().map(|l| format!("line {}: ", l.line())).unwrap_or_default();
                    let message = e.to_string();
                    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
                    AgentError::Declaration(format!("{file}: {line}{message}"))
                })?;
                serde_path_to_error::deserialize(value).map_err(|e| {
                    let field = e.path().to_string();
                    let line = line_of_path(text, &field).map(|l| format!("line {l}: ")).unwrap_or_default();
                    AgentError::Declaration(format!("{file}: {line}field `{field}`: {}", e.into_inner()))
                })
            }
            "toml" => {
                let deserializer = toml::Deserializer::parse(text)
                    .map_err(|e| AgentError::Declaration(format!("{file}: {}", one_line(&e.to_string()))))?;
                serde_path_to_error::deserialize(deserializer).map_err(|e| {
                    let (field, inner) = (e.path().to_string(), e.into_inner());
                    let line = inner.span().map(|s| format!("line {}: ", line_at(text, s.start))).unwrap_or_default();
                    AgentError::Declaration(format!("{file}: {line}field `{field}`: {}", inner.message()))
                })
            }
            _ => Err(AgentError::Declaration(format!("{file}: an agent file ends in .yaml, .yml or .toml"))),
        }
    }
}

/// The 1-based line of byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of a field given by its path (`tools[1].http.url`): each key searched for after
/// the line of the one before, as a YAML file nests them.
fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for key in path.split('.').map(|k| k.split('[').next().unwrap_or(k)).filter(|k| !k.is_empty() && *k != "?") {
        let found = lines[at..].iter().position(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            line.starts_with(&format!("{key}:"))
                || line.contains(&format!("{{{key}:"))
                || line.contains(&format!(" {key}:"))
        })?;
        at += found;
    }
    Some(at + 1)
}

/// The first line where `needle` appears, for errors found after parsing.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|line| line.contains(needle)).map(|i| i + 1)
}

fn one_line(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
