//! Chat and embedding models for weir agents.
//!
//! One vocabulary — [`ChatMessage`], [`ToolCall`], [`ToolSpec`], [`ChatRequest`],
//! [`ChatResponse`] — shared by every provider, so that an agent, its journal and its tests
//! never depend on which provider answers.

mod chat;
mod error;
mod message;

pub use chat::{ChatModel, ChatOptions, ChatRequest, ChatResponse, EmbeddingModel, OutputSchema, StopReason, Usage};
pub use error::ModelError;
pub use message::{ChatMessage, Role, ToolCall, ToolSpec};
