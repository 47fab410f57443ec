//! `notify_shipping_manager`: a webhook when `WEIR_NOTIFY_URL` is set, else a log line.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use weir_agent::AgentError;
use weir_tools::{FunctionTool, HttpTool, HttpToolConfig, Tool, parameters_schema};

/// The tool's name, as the model calls it.
pub const NOTIFY_TOOL: &str = "notify_shipping_manager";

/// Tells the shipping manager about a review that complains about shipping.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// The product's id.
    pub id: String,
    /// One line on what went wrong with the shipping.
    pub summary: String,
}

/// The webhook tool if `WEIR_NOTIFY_URL` is set, else one that only logs.
pub fn notify_tool_from_env() -> Result<Arc<dyn Tool>, AgentError> {
    match std::env::var("WEIR_NOTIFY_URL") {
        Ok(url) if !url.trim().is_empty() => webhook(&url),
        _ => Ok(Arc::new(FunctionTool::new(NOTIFY_TOOL, |notification: Notification| async move {
            tracing::info!(id = %notification.id, summary = %notification.summary, "shipping manager notified (no WEIR_NOTIFY_URL: log only)");
            Ok::<_, String>(json!({"notified": true, "via": "log"}))
        }))),
    }
}

fn webhook(url: &str) -> Result<Arc<dyn Tool>, AgentError> {
    let config = HttpToolConfig {
        name: NOTIFY_TOOL.into(),
        description: "Tells the shipping manager about a review that complains about shipping.".into(),
        url: url.to_string(),
        parameters: parameters_schema::<Notification>(),
        headers: Default::default(),
        timeout_ms: 10_000,
        retries: 2,
        at_most_once: false,
        read_only: false,
    };
    let tool = HttpTool::new(&config).map_err(|e| AgentError::Other(format!("WEIR_NOTIFY_URL: {e}")))?;
    Ok(Arc::new(tool))
}
