//! The tools of an MCP server as weir tools.

use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::{Peer, RoleClient};
use serde_json::Value;
use weir_models::ToolSpec;

use super::content::contents_text;
use crate::tool::{Tool, ToolError};

/// A tool of an MCP server, called through its client's connection.
pub(crate) struct McpTool {
    server: String,
    spec: ToolSpec,
    peer: Peer<RoleClient>,
    /// The server's `readOnlyHint`.
    read_only: bool,
}

impl McpTool {
    /// The tool `tool` of `server`, reached through `peer`.
    pub(crate) fn new(server: &str, tool: rmcp::model::Tool, peer: Peer<RoleClient>) -> Self {
        let read_only = tool.annotations.as_ref().and_then(|a| a.read_only_hint).unwrap_or(false);
        let spec = ToolSpec {
            name: tool.name.into_owned(),
            description: tool.description.map(|description| description.into_owned()).unwrap_or_default(),
            parameters: Value::Object((*tool.input_schema).clone()).into(),
        };
        McpTool { server: server.to_owned(), spec, peer, read_only }
    }
}

/// What a call returned: its structured content if any, else its content as text. A result
/// flagged `isError` is a [`ToolError`] with that text.
fn tool_result(result: CallToolResult) -> Result<Value, ToolError> {
    let text = contents_text(&result.content);
    if result.is_error == Some(true) {
        return Err(ToolError::new(if text.is_empty() {
            "the tool reported an error without saying why".into()
        } else {
            text
        }));
    }
    Ok(result.structured_content.unwrap_or(Value::String(text)))
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    // MCP has no idempotency key: a server that needs one takes it as an argument.
    async fn call(&self, arguments: Value, _idempotency_key: &str) -> Result<Value, ToolError> {
        let mut request = CallToolRequestParams::new(self.spec.name.clone());
        match arguments {
            Value::Object(arguments) => request = request.with_arguments(arguments),
            Value::Null => {}
            other => return Err(ToolError::new(format!("arguments must be a JSON object, not `{other}`"))),
        }
        let result = self.peer.call_tool(request).await.map_err(|error| {
            let message = format!("MCP server `{}` could not run `{}`: {error}", self.server, self.spec.name);
            match error {
                // The server answered: the call was wrong, and the model should hear why.
                rmcp::ServiceError::McpError(_) => ToolError::new(message),
                // The server is gone, or did not answer in time.
                _ => ToolError::unavailable(message),
            }
        })?;
        tool_result(result)
    }
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTool").field("server", &self.server).field("name", &self.spec.name).finish_non_exhaustive()
    }
}
