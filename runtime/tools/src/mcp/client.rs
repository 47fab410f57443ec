//! A connection to one MCP server.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::process::Stdio;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{ClientCapabilities, ClientConfig, GetPromptRequestParams, Implementation};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, Command};
use weir_models::ChatMessage;

use super::config::{HttpTransport, McpServerConfig, McpTransport, StdioTransport};
use super::error::McpError;
use super::prompt::{McpPrompt, chat_message};
use super::tool::McpTool;
use crate::config_value::ConfigValue;
use crate::tool::Tool;

/// A connection to an MCP server: its tools as weir [`Tool`]s, its prompts as chat messages.
///
/// A stdio server's process lives as long as its client: dropping the client kills it, and
/// [`close`](Self::close) lets it exit first. The tools call through the client's
/// connection, so keep the client while they are in use; afterwards their calls fail.
///
/// ```no_run
/// use weir_tools::mcp::{McpClient, McpServerConfig, McpTransport, StdioTransport};
///
/// # async fn run() -> Result<(), weir_tools::mcp::McpError> {
/// let config = McpServerConfig {
///     name: "everything".into(),
///     transport: McpTransport::Stdio(StdioTransport {
///         command: "npx".into(),
///         args: vec!["-y".into(), "@modelcontextprotocol/server-everything".into()],
///         env: Default::default(),
///     }),
/// };
/// let client = McpClient::connect(&config).await?;
/// for tool in client.tools().await? {
///     println!("{}", tool.spec().name);
/// }
/// let messages = client.get_prompt("args-prompt", [("city", "Lyon")]).await?;
/// client.close().await;
/// # Ok(()) }
/// ```
pub struct McpClient {
    name: String,
    process_id: Option<u32>,
    service: RunningService<RoleClient, ClientConfig>,
}

impl McpClient {
    /// Starts or reaches the server `config` declares and completes the MCP handshake.
    pub async fn connect(config: &McpServerConfig) -> Result<Self, McpError> {
        let name = config.name.clone();
        let client =
            ClientConfig::new(ClientCapabilities::default(), Implementation::new("weir", env!("CARGO_PKG_VERSION")));
        let initialize_error = |error: rmcp::service::ClientInitializeError| McpError::Initialize {
            server: name.clone(),
            reason: error.to_string(),
        };
        let (service, process_id) = match &config.transport {
            McpTransport::Stdio(stdio) => {
                let (process, stderr) = spawn(&name, stdio)?;
                let process_id = process.id();
                if let Some(stderr) = stderr {
                    tokio::spawn(log_stderr(name.clone(), stderr));
                }
                (client.serve(process).await.map_err(initialize_error)?, process_id)
            }
            McpTransport::Http(http) => {
                let transport = StreamableHttpClientTransport::from_config(http_config(&name, http)?);
                (client.serve(transport).await.map_err(initialize_error)?, None)
            }
        };
        tracing::debug!(server = %name, ?process_id, "MCP server connected");
        Ok(McpClient { name, process_id, service })
    }

    /// The server's name, from its configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the server's process, for a stdio server.
    pub fn process_id(&self) -> Option<u32> {
        self.process_id
    }

    /// The server's tools, each with the server's input schema as its parameters.
    ///
    /// A call returns the tool's structured content if it has any, else its content as
    /// text (what is not text summarised in brackets); a result flagged as an error is a
    /// [`ToolError`](crate::ToolError).
    pub async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, McpError> {
        let tools = self.service.list_all_tools().await.map_err(|error| self.request_error("tools/list", error))?;
        let peer = self.service.peer();
        Ok(tools
            .into_iter()
            .map(|tool| Arc::new(McpTool::new(&self.name, tool, peer.clone())) as Arc<dyn Tool>)
            .collect())
    }

    /// The server's prompts, with their arguments.
    pub async fn prompts(&self) -> Result<Vec<McpPrompt>, McpError> {
        let prompts =
            self.service.list_all_prompts().await.map_err(|error| self.request_error("prompts/list", error))?;
        Ok(prompts.into_iter().map(McpPrompt::from).collect())
    }

    /// The messages of the prompt `name` filled with `arguments`.
    pub async fn get_prompt<K, V>(
        &self,
        name: &str,
        arguments: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Vec<ChatMessage>, McpError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let arguments: Map<String, Value> =
            arguments.into_iter().map(|(name, value)| (name.into(), Value::String(value.into()))).collect();
        let request = GetPromptRequestParams::new(name).with_arguments(arguments);
        let prompt = self
            .service
            .get_prompt(request)
            .await
            .map_err(|error| self.request_error(&format!("prompts/get `{name}`"), error))?;
        Ok(prompt.messages.iter().map(chat_message).collect())
    }

    /// Ends the connection and waits for it to close: a stdio server is asked to exit (its
    /// stdin closes) and killed if it does not.
    pub async fn close(mut self) {
        if let Err(error) = self.service.close().await {
            tracing::warn!(server = %self.name, %error, "MCP connection did not close cleanly");
        }
    }

    fn request_error(&self, request: &str, error: ServiceError) -> McpError {
        McpError::Request { server: self.name.clone(), request: request.to_owned(), reason: error.to_string() }
    }
}

/// Starts a stdio server, killed when dropped; its stderr is returned to be logged.
fn spawn(server: &str, stdio: &StdioTransport) -> Result<(TokioChildProcess, Option<ChildStderr>), McpError> {
    let mut command = Command::new(&stdio.command);
    command.args(&stdio.args).kill_on_drop(true);
    for (variable, value) in &stdio.env {
        command.env(variable, resolve(server, value, &format!("environment variable `{variable}`"))?);
    }
    TokioChildProcess::builder(command).stderr(Stdio::piped()).spawn().map_err(|source| McpError::Spawn {
        server: server.to_owned(),
        command: stdio.command.clone(),
        source,
    })
}

/// A server's stderr, line by line, in the logs: it is where servers say why they fail.
async fn log_stderr(server: String, stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(%server, "{line}");
    }
}

/// The streamable HTTP settings of `http`, headers resolved.
fn http_config(server: &str, http: &HttpTransport) -> Result<StreamableHttpClientTransportConfig, McpError> {
    let headers = header_map(server, &http.headers)?;
    Ok(StreamableHttpClientTransportConfig::with_uri(http.url.as_str()).custom_headers(headers))
}

fn header_map(
    server: &str,
    headers: &BTreeMap<String, ConfigValue>,
) -> Result<HashMap<HeaderName, HeaderValue>, McpError> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = resolve(server, value, &format!("header `{name}`"))?;
            let invalid = || McpError::InvalidHeader { server: server.to_owned(), header: name.clone() };
            let mut value = HeaderValue::try_from(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            Ok((HeaderName::try_from(name.as_str()).map_err(|_| invalid())?, value))
        })
        .collect()
}

fn resolve(server: &str, value: &ConfigValue, setting: &str) -> Result<String, McpError> {
    value.resolve(setting).map_err(|source| McpError::MissingEnvVar { server: server.to_owned(), source })
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient")
            .field("name", &self.name)
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_value::EnvValue;

    fn http_server(headers: BTreeMap<String, ConfigValue>) -> McpServerConfig {
        // Nothing listens there: these fail before any request.
        let url = "http://127.0.0.1:9/mcp".to_owned();
        McpServerConfig { name: "tickets".into(), transport: McpTransport::Http(HttpTransport { url, headers }) }
    }

    #[tokio::test]
    async fn a_missing_variable_is_named_before_connecting() {
        let token = ConfigValue::Env(EnvValue { env: "WEIR_TOOLS_TEST_UNSET_TOKEN".into(), prefix: None });
        let error = McpClient::connect(&http_server(BTreeMap::from([("Authorization".into(), token)])))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("MCP server `tickets`: header `Authorization`"), "{error}");
        assert!(error.contains("WEIR_TOOLS_TEST_UNSET_TOKEN"), "{error}");
    }

    #[tokio::test]
    async fn an_invalid_header_value_is_not_shown() {
        let value = ConfigValue::Literal("secret\nvalue".into());
        let error = McpClient::connect(&http_server(BTreeMap::from([("X-Token".into(), value)]))).await.unwrap_err();
        assert!(matches!(&error, McpError::InvalidHeader { header, .. } if header == "X-Token"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
