//! How to reach an MCP server, as an agent file declares it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config_value::ConfigValue;

/// An MCP server an agent uses.
///
/// In an agent file (YAML):
///
/// ```yaml
/// mcp_servers:
///   - name: files
///     transport:
///       stdio:
///         command: npx
///         args: ["-y", "@modelcontextprotocol/server-filesystem", "/data"]
///   - name: tickets
///     transport:
///       http:
///         url: https://tickets.example.com/mcp
///         headers:
///           Authorization: { env: TICKETS_TOKEN, prefix: "Bearer " }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's name, in logs and errors.
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum McpTransport {
    /// A child process spoken to over its stdin and stdout.
    Stdio(StdioTransport),
    /// A server at a URL, over streamable HTTP.
    Http(HttpTransport),
}

/// A server run as a child process; it is killed when its client drops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioTransport {
    /// The program to run, looked up on `PATH`.
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables set for it, beside those it inherits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, ConfigValue>,
}

/// A server reached over streamable HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTransport {
    /// The server's MCP endpoint, such as `https://example.com/mcp`.
    pub url: String,
    /// Headers sent with every request; values may come from environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, ConfigValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_is_named_by_its_key() {
        let config: McpServerConfig = serde_json::from_str(
            r#"{"name": "files", "transport": {"stdio": {"command": "npx", "args": ["-y", "server"]}}}"#,
        )
        .unwrap();
        let McpTransport::Stdio(stdio) = &config.transport else { panic!("{config:?}") };
        assert_eq!((stdio.command.as_str(), stdio.args.len()), ("npx", 2));

        let config: McpServerConfig =
            serde_json::from_str(r#"{"name": "tickets", "transport": {"http": {"url": "http://127.0.0.1:1/mcp"}}}"#)
                .unwrap();
        assert!(matches!(config.transport, McpTransport::Http(_)));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let misspelt = r#"{"name": "files", "transport": {"stdio": {"command": "npx", "arguments": []}}}"#;
        assert!(serde_json::from_str::<McpServerConfig>(misspelt).is_err());
        let unknown_transport = r#"{"name": "files", "transport": {"websocket": {"url": "ws://x"}}}"#;
        assert!(serde_json::from_str::<McpServerConfig>(unknown_transport).is_err());
    }
}
