//! The agent API of weir: events, actions, workflow and ReAct agents, chat models, tools,
//! memory, all durable.
//!
//! An agent is made of [`Action`]s that react to [`Event`]s. It runs on the durable engine:
//! every model, tool and MCP call goes through the engine's journal, so a crash repeats
//! none of them, and outputs and memory commit with the batch, once. See `docs/agents.md`.

mod action;
mod agent;
mod builtin;
mod chain;
mod chat;
mod context;
pub mod declarative;
mod error;
mod event;
mod events;
mod memory;
mod metrics;
mod output;
mod prompt;
mod react;
mod resources;
mod retrieval;
mod run;
mod tool_binding;
mod workflow;

pub mod testing;

pub use action::{Action, ActionError, Handler, HandlerFn};
pub use agent::AgentSettings;
pub use chat::Conversation;
pub use context::Context;
pub use error::AgentError;
pub use event::{Event, EventType, Lineage};
pub use events::{
    ActionFailedEvent, ActionFinishedEvent, ActionStartedEvent, ChatRequestEvent, ChatResponseEvent, Document,
    InputEvent, OutputEvent, RetrievalRequestEvent, RetrievalResponseEvent, ToolRequestEvent, ToolResponseEvent,
    ToolResult,
};
pub use memory::Memory;
pub use metrics::{CallMetrics, Metrics, MetricsSnapshot};
pub use output::{OutputValidator, schema_of};
pub use prompt::{Prompt, PromptMessage};
pub use react::{ReActAgent, ReActAgentBuilder};
pub use resources::Resources;
pub use retrieval::{InMemoryVectorStore, VectorStore};
pub use tool_binding::{ArgumentSource, ToolBinding};
pub use workflow::{CHAT_ACTION, WorkflowAgent, WorkflowAgentBuilder};

/// Compiles the examples of `docs/agents.md`, so that the guide cannot drift from the API.
#[doc = include_str!("../../../docs/agents.md")]
#[cfg(doctest)]
pub struct AgentsGuideDoctests;
