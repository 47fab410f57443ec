//! The agent API of weir: events, actions, workflow and ReAct agents, chat models, tools,
//! memory, all durable.
//!
//! An agent is made of [`Action`]s that react to [`Event`]s. It runs on the durable engine:
//! every model, tool and MCP call goes through the engine's journal, so a crash repeats
//! none of them, and outputs and memory commit with the batch, once. See `docs/agents.md`.
//!
//! Modules:
//! - `event`: [`Event`] and its typed form; `event::builtin`, the events weir's own actions
//!   send and answer (input, output, chat, tools, retrieval, action notifications).
//! - `action`: actions and their handlers; `context`: what a handler may do ([`Context`]),
//!   every call durable through the engine's event context.
//! - `workflow`: [`WorkflowAgent`], which routes each event of a run to the actions that
//!   subscribe to its type; `run`: one input's run (its queue of events, memory, outputs);
//!   `react` and `chain`: ReAct agents and chat steps in order; `builtin`: the tool and
//!   retrieval actions; `chat`: the chat loop with tools.
//! - `batch`: model calls through providers' batch APIs, submitted and polled by
//!   [`WorkflowAgent::tend`](weir_engine::Agent::tend) (docs/batch-calls.md).
//! - `agent`, `resources`, `metrics`: what every agent shares: settings, named resources,
//!   counters; `budget`: what a key may spend per period; `spans`: what the agent's spans
//!   in the trace say. `memory`, `prompt`, `output`, [`LongTermMemory`] in `long_term`,
//!   `retrieval` (the [`VectorStore`] trait, over weir-search's knowledge bases),
//!   `s3_vectors` (AWS S3 Vectors behind the trait, feature `s3-vectors`),
//!   `knowledge_tool` ([`knowledge_base_tool`]), `tool_binding`: the pieces actions use.
//! - `declarative`: agents declared in a file; `testing`: running an agent in a test.

mod action;
mod agent;
pub mod approval;
mod batch;
mod budget;
mod builtin;
mod chain;
mod chat;
mod context;
pub mod declarative;
mod error;
mod event;
mod knowledge_tool;
mod long_term;
mod memory;
mod metrics;
mod output;
mod prompt;
mod react;
mod record;
mod resources;
mod retrieval;
mod run;
#[cfg(feature = "s3-vectors")]
mod s3_vectors;
mod spans;
mod tool_binding;
mod workflow;

pub mod testing;

pub use action::{Action, ActionError, Handler, HandlerFn};
pub use agent::{AgentSettings, TraceSettings};
pub use batch::{BATCH_ATTRIBUTE, MODEL_BATCH_SIGNAL, Tended};
pub use budget::{Budget, OnExhausted};
pub use chat::Conversation;
pub use context::Context;
pub use error::AgentError;
pub use event::builtin::{
    ActionFailedEvent, ActionFinishedEvent, ActionStartedEvent, ChatRequestEvent, ChatResponseEvent, Document,
    InputEvent, OutputEvent, RetrievalRequestEvent, RetrievalResponseEvent, ToolRequestEvent, ToolResponseEvent,
    ToolResult,
};
pub use event::{Event, EventType, Lineage};
pub use knowledge_tool::{KnowledgePassage, KnowledgeSearch, knowledge_base_tool};
pub use long_term::{LongTermMemory, MemoryItem, MemorySetConfig};
pub use memory::Memory;
pub use metrics::{CallMetrics, Metrics, MetricsSnapshot};
pub use output::{OutputValidator, schema_of};
pub use prompt::{Prompt, PromptMessage};
pub use react::{ReActAgent, ReActAgentBuilder};
pub use resources::Resources;
pub use retrieval::VectorStore;
#[cfg(feature = "s3-vectors")]
pub use s3_vectors::S3VectorsStore;
pub use tool_binding::{ArgumentSource, ToolBinding};
pub use weir_engine::{CallMode, Durable, DurableError, Signal, WaitError, Wake};
pub use workflow::{CHAT_ACTION, WorkflowAgent, WorkflowAgentBuilder};

/// Compiles the examples of `docs/agents.md`, so that the guide cannot drift from the API.
#[doc = include_str!("../../../docs/agents.md")]
#[cfg(doctest)]
pub struct AgentsGuideDoctests;

/// Compiles the examples of `docs/search.md` (a store implementing [`VectorStore`]).
#[doc = include_str!("../../../docs/search.md")]
#[cfg(doctest)]
pub struct SearchGuideDoctests;
