//! The tool trait.

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;
use weir_models::ToolSpec;

/// A tool call's failure. Its message goes back to the model as an error result, unless
/// the tool is unavailable (it could not be reached, or answered 408, 429 or 5xx after its
/// retries): then the event waits for it instead (`docs/agents.md`, "Failure").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// What went wrong, for the model and the logs.
    pub message: String,
    unavailable: bool,
}

impl ToolError {
    /// A tool error with `message`, for the model to hear.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError { message: message.into(), unavailable: false }
    }

    /// The tool itself is down: not the call's fault, and not something the model should
    /// answer without.
    ///
    /// ```
    /// let error = weir_tools::ToolError::unavailable("`orders` answered 503 after 2 retries");
    /// assert!(error.is_unavailable());
    /// assert!(!weir_tools::ToolError::new("no order 42").is_unavailable());
    /// ```
    pub fn unavailable(message: impl Into<String>) -> Self {
        ToolError { message: message.into(), unavailable: true }
    }

    /// Whether the tool was down, rather than the call wrong.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
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

    /// Whether the tool only reads (a lookup, a search): a replay may call it for real,
    /// while it answers every other tool from production's record or its policy
    /// (`docs/replay.md`).
    fn read_only(&self) -> bool {
        false
    }

    /// Runs the tool.
    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError>;
}
