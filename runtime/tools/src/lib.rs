//! Tools for weir agents: what a model may call.
//!
//! A [`Tool`] describes itself with a [`ToolSpec`] and runs with JSON arguments and the
//! idempotency key the agent's journal gave the call.

mod tool;

pub use tool::{Tool, ToolError};
pub use weir_models::ToolSpec;
