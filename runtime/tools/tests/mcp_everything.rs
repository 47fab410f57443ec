//! The MCP client against a real server nobody here wrote: npm's reference "everything"
//! server (`@modelcontextprotocol/server-everything`, pinned and installed by `.ci/run`),
//! over stdio and over streamable HTTP.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use weir_models::{ChatMessage, Role};
use weir_tools::Tool;
use weir_tools::mcp::{HttpTransport, McpClient, McpError, McpServerConfig, McpTransport, StdioTransport};

/// The server's entry point: `$WEIR_MCP_EVERYTHING`, else where `.ci/run` installs it.
fn everything_entry() -> PathBuf {
    let entry = std::env::var_os("WEIR_MCP_EVERYTHING").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../.ci/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
    });
    assert!(
        entry.is_file(),
        "the MCP everything server is not at {}: run .ci/run once (it installs it into .ci/node), \
         or set WEIR_MCP_EVERYTHING to its dist/index.js",
        entry.display()
    );
    entry
}

fn stdio_config() -> McpServerConfig {
    McpServerConfig {
        name: "everything".into(),
        transport: McpTransport::Stdio(StdioTransport {
            command: "node".into(),
            args: vec![everything_entry().display().to_string(), "stdio".into()],
            env: Default::default(),
        }),
    }
}

/// The everything server in its streamable HTTP mode on 127.0.0.1, killed on drop.
struct HttpServer {
    url: String,
    _process: Child,
}

impl HttpServer {
    /// Starts it on a free port: the preloaded `loopback.mjs` binds it to 127.0.0.1 (the
    /// server has no host setting) and reports the port that `PORT=0` got.
    async fn start() -> Self {
        let loopback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/loopback.mjs");
        let mut process = Command::new("node")
            .arg("--import")
            .arg(format!("file://{}", loopback.display()))
            .arg(everything_entry())
            .arg("streamableHttp")
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let listening = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("weir-listening ") {
                    return Some(address.replace(' ', ":"));
                }
                seen.push(line);
            }
            None
        })
        .await;
        let Ok(Some(address)) = listening else {
            panic!("the everything server did not start listening; its stderr:\n{}", seen.join("\n"))
        };
        assert!(address.starts_with("127.0.0.1:"), "bound to {address}");
        // Kept draining, so that the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        HttpServer { url: format!("http://{address}/mcp"), _process: process }
    }

    fn config(&self) -> McpServerConfig {
        McpServerConfig {
            name: "everything-http".into(),
            transport: McpTransport::Http(HttpTransport { url: self.url.clone(), headers: Default::default() }),
        }
    }
}

fn find<'a>(tools: &'a [Arc<dyn Tool>], name: &str) -> &'a Arc<dyn Tool> {
    let names: Vec<String> = tools.iter().map(|tool| tool.spec().name).collect();
    tools.iter().find(|tool| tool.spec().name == name).unwrap_or_else(|| panic!("no tool `{name}` in {names:?}"))
}

/// What every transport must do with the everything server.
async fn exercise(client: &McpClient) {
    let tools = client.tools().await.unwrap();
    let echo = find(&tools, "echo");
    let spec = echo.spec();
    assert_eq!(spec.description, "Echoes back the input string");
    assert_eq!(spec.parameters["type"], "object");
    assert_eq!(spec.parameters["properties"]["message"]["type"], "string");
    assert_eq!(spec.parameters["required"], json!(["message"]));

    assert_eq!(echo.call(json!({"message": "hello"}), "call-1").await.unwrap(), "Echo: hello");
    let sum = find(&tools, "get-sum").call(json!({"a": 2, "b": 3}), "call-2").await.unwrap();
    assert_eq!(sum, "The sum of 2 and 3 is 5.");
    let weather = find(&tools, "get-structured-content").call(json!({"location": "Chicago"}), "call-3").await.unwrap();
    assert_eq!(weather, json!({"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}));

    let error = echo.call(json!({"text": "the wrong argument"}), "call-4").await.unwrap_err();
    assert!(error.message.contains("message"), "the error names the missing argument: {error}");
    let error = find(&tools, "get-sum").call(json!(["not", "an", "object"]), "call-5").await.unwrap_err();
    assert!(error.message.contains("must be a JSON object"), "{error}");

    let prompts = client.prompts().await.unwrap();
    let args_prompt = prompts.iter().find(|prompt| prompt.name == "args-prompt").expect("args-prompt is offered");
    let arguments: Vec<(&str, bool)> =
        args_prompt.arguments.iter().map(|argument| (argument.name.as_str(), argument.required)).collect();
    assert_eq!(arguments, [("city", true), ("state", false)]);

    let messages = client.get_prompt("args-prompt", [("city", "Lyon"), ("state", "Rhône")]).await.unwrap();
    assert_eq!(messages, [ChatMessage::user("What's weather in Lyon, Rhône?")]);

    let messages = client.get_prompt("resource-prompt", [("resourceType", "Text"), ("resourceId", "1")]).await.unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().all(|message| message.role == Role::User));
    assert!(messages[1].content.starts_with("[resource: "), "{messages:?}");

    let error = client.get_prompt("no-such-prompt", [("city", "Lyon")]).await.unwrap_err();
    assert!(matches!(&error, McpError::Request { request, .. } if request.contains("no-such-prompt")), "{error}");
}

#[tokio::test]
async fn stdio_server_tools_and_prompts() {
    let client = McpClient::connect(&stdio_config()).await.unwrap();
    assert_eq!(client.name(), "everything");
    exercise(&client).await;
    client.close().await;
}

#[tokio::test]
async fn streamable_http_server_tools_and_prompts() {
    let server = HttpServer::start().await;
    let client = McpClient::connect(&server.config()).await.unwrap();
    assert_eq!(client.process_id(), None);
    exercise(&client).await;
    client.close().await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_client_ends_the_server_process_and_its_tools() {
    let client = McpClient::connect(&stdio_config()).await.unwrap();
    let process_id = client.process_id().expect("a stdio server has a process");
    let tools = client.tools().await.unwrap();
    assert!(running(process_id));

    drop(client);
    // Polling is the mechanism; the timeout only turns a hang into a failure.
    tokio::time::timeout(Duration::from_secs(60), async {
        while running(process_id) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server process ends when its client drops");
    let error = find(&tools, "echo").call(json!({"message": "anyone?"}), "call-6").await.unwrap_err();
    assert!(error.message.contains("could not run `echo`"), "{error}");
}

/// Whether `process_id` is a live process (not gone, not a zombie waiting to be reaped).
#[cfg(target_os = "linux")]
fn running(process_id: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{process_id}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_is_an_error_naming_the_command() {
    let config = McpServerConfig {
        name: "absent".into(),
        transport: McpTransport::Stdio(StdioTransport {
            command: "weir-no-such-mcp-server".into(),
            args: Vec::new(),
            env: Default::default(),
        }),
    };
    let error = McpClient::connect(&config).await.unwrap_err();
    assert!(matches!(error, McpError::Spawn { .. }), "{error}");
    assert!(error.to_string().contains("`weir-no-such-mcp-server`"), "{error}");
}
