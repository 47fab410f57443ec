//! MCP servers as tool and prompt providers, over stdio or streamable HTTP.
//!
//! [`McpClient::connect`] reaches the server an [`McpServerConfig`] declares; its tools are
//! weir [`Tool`](crate::Tool)s and its prompts become chat messages.

mod client;
mod config;
mod content;
mod error;
mod prompt;
mod tool;

pub use client::McpClient;
pub use config::{HttpTransport, McpServerConfig, McpTransport, StdioTransport};
pub use error::McpError;
pub use prompt::{McpPrompt, McpPromptArgument};
