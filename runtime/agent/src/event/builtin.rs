//! The built-in events: input and output, chat, tools, retrieval, and action notifications.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_models::{ChatMessage, OutputSchema, ToolCall, Usage};

use super::{Event, EventType};

macro_rules! event_type {
    ($ty:ty, $name:literal) => {
        impl EventType for $ty {
            const TYPE: &'static str = $name;
        }
    };
}

/// The event a run starts with: one input from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputEvent {
    /// The input's key.
    pub key: String,
    /// The producer's payload.
    pub input: Value,
}
event_type!(InputEvent, "input");

/// An output of the agent: committed with the batch, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputEvent {
    pub output: Value,
}
event_type!(OutputEvent, "output");

/// Asks the built-in chat action to converse with a model until it answers, running the
/// tools it calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequestEvent {
    /// The registered name of the model.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// The tools the model may call (each must be on the agent's allow-list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// A schema the reply must follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<OutputSchema>,
    /// Anything the sender wants back with the response (an attempt count, a correlation).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
}
event_type!(ChatRequestEvent, "chat_request");

/// The model's final answer to a [`ChatRequestEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponseEvent {
    /// The id of the request event.
    pub request_id: String,
    /// The registered name of the model.
    pub model: String,
    /// The answer.
    pub message: ChatMessage,
    /// The whole conversation: the request's messages, tool calls and results, the answer.
    pub messages: Vec<ChatMessage>,
    /// Tokens used over all the turns.
    pub usage: Usage,
    /// The request's `context`, echoed.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
}
event_type!(ChatResponseEvent, "chat_response");

/// Asks the built-in tool action to run tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRequestEvent {
    /// The calls, run concurrently.
    pub calls: Vec<ToolCall>,
}
event_type!(ToolRequestEvent, "tool_request");

/// The results of a [`ToolRequestEvent`], in the order of its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponseEvent {
    /// The id of the request event.
    pub request_id: String,
    /// One result per call.
    pub results: Vec<ToolResult>,
}
event_type!(ToolResponseEvent, "tool_response");

/// The result of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    /// The tool.
    pub name: String,
    /// What it returned, or the error message.
    pub content: Value,
    /// Whether the call failed.
    #[serde(default)]
    pub is_error: bool,
}

/// Asks the built-in retrieval action for the documents nearest to a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRequestEvent {
    /// The registered name of the vector store.
    pub store: String,
    /// What to look for.
    pub query: String,
    /// How many documents at most.
    #[serde(default = "default_max_results")]
    pub max_results: usize,
    /// Only documents whose metadata has these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
}
event_type!(RetrievalRequestEvent, "retrieval_request");

fn default_max_results() -> usize {
    3
}

/// The documents found for a [`RetrievalRequestEvent`], nearest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalResponseEvent {
    /// The id of the request event.
    pub request_id: String,
    pub query: String,
    pub documents: Vec<Document>,
}
event_type!(RetrievalResponseEvent, "retrieval_response");

/// A document of a vector store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Its id in the store.
    pub id: String,
    /// Its text.
    pub content: String,
    /// Similarity to the query, higher is nearer.
    #[serde(default)]
    pub score: f32,
    /// Anything else stored with it.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub metadata: Value,
}

/// An action started handling an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionStartedEvent {
    pub action: String,
    /// The event it handles.
    pub event_id: String,
    /// That event's type.
    pub event_type: String,
}
event_type!(ActionStartedEvent, "action_started");

/// An action finished handling an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionFinishedEvent {
    pub action: String,
    /// The event it handled.
    pub event_id: String,
    /// That event's type.
    pub event_type: String,
}
event_type!(ActionFinishedEvent, "action_finished");

/// An action failed; the run fails with it and the engine retries the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionFailedEvent {
    pub action: String,
    /// The event it handled.
    pub event_id: String,
    /// That event's type.
    pub event_type: String,
    pub error: String,
}
event_type!(ActionFailedEvent, "action_failed");

impl ActionStartedEvent {
    pub(crate) fn of(action: &str, event: &Event) -> Self {
        ActionStartedEvent { action: action.into(), event_id: event.id.clone(), event_type: event.kind.clone() }
    }
}

impl ActionFinishedEvent {
    pub(crate) fn of(action: &str, event: &Event) -> Self {
        ActionFinishedEvent { action: action.into(), event_id: event.id.clone(), event_type: event.kind.clone() }
    }
}

impl ActionFailedEvent {
    pub(crate) fn of(action: &str, event: &Event, error: &impl std::fmt::Display) -> Self {
        let ActionStartedEvent { action, event_id, event_type } = ActionStartedEvent::of(action, event);
        ActionFailedEvent { action, event_id, event_type, error: error.to_string() }
    }
}
