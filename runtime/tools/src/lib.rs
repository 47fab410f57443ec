//! Tools for weir agents: what a model may call.
//!
//! A [`Tool`] describes itself with a [`ToolSpec`] and runs with JSON arguments and the
//! idempotency key the agent's journal gave the call. Tools come from Rust functions
//! ([`FunctionTool`]), HTTP endpoints ([`HttpTool`]) and MCP servers ([`mcp::McpClient`]);
//! [`HiddenArguments`] lets the agent fill some arguments itself.
//!
//! Modules: `tool`, the [`Tool`] trait; `function`, `http` and `mcp`, the three kinds of tool;
//! `schema`, JSON Schemas of Rust argument types; `hidden`, arguments the agent fills;
//! `config_value`, values from the agent file or the environment.

mod config_value;
mod function;
mod hidden;
mod http;
pub mod mcp;
mod schema;
mod tool;

pub use config_value::{ConfigValue, EnvValue, MissingEnvVar};
pub use function::FunctionTool;
pub use hidden::{HiddenArguments, hide_arguments, merge_hidden_arguments};
pub use http::{HttpTool, HttpToolConfig, HttpToolError, IDEMPOTENCY_KEY_HEADER};
pub use schema::parameters_schema;
pub use tool::{Tool, ToolError};
pub use weir_models::ToolSpec;
