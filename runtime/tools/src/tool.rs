//! The tool trait.

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;
use weir_models::ToolSpec;

/// A tool call's failure; its message goes back to the model as an error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// What went wrong, for the model and the logs.
    pub message: String,
}

impl ToolError {
    /// A tool error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError { message: message.into() }
    }
}

/// Something a model can call.
///
/// The agent runs every call through its journal: a call that completed is not made again
/// after a crash, and a retried call carries the same `idempotency_key`.
#[async_trait]
pub trait Tool: Debug + Send + Sync + 'static {
    /// The tool's name, description and argument schema.
    fn spec(&self) -> ToolSpec;

    /// Whether the tool must never run twice for one call, even if that means not at all
    /// after a crash in the middle of the call (holding a card, sending money).
    fn at_most_once(&self) -> bool {
        false
    }

    /// Runs the tool.
    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError>;
}
