//! The diagnostician's tools: `search_logs`, `node_health` and `runbook`, over [`OpsData`].

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use weir_tools::{FunctionTool, Tool};

use crate::data::OpsData;

/// The log search tool's name.
pub const SEARCH_LOGS: &str = "search_logs";
/// The node health tool's name.
pub const NODE_HEALTH: &str = "node_health";
/// The runbook tool's name.
pub const RUNBOOK: &str = "runbook";

/// The most log lines one search returns.
const MAX_LINES: usize = 20;

/// Searches a job's logs: the lines containing `query` (any case), or the latest lines.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LogSearch {
    /// The job whose logs to search.
    pub job: String,
    /// Text the lines must contain; all lines if absent.
    #[serde(default)]
    pub query: Option<String>,
}

/// Reports a node's health: status, CPU, memory, disk and network.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NodeHealthCheck {
    /// The node's id.
    pub node: String,
}

/// Finds the runbook for a kind of failure: usual causes, log signals, remediation steps.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunbookLookup {
    /// The failure kind, as in the event (e.g. `oom`, `heartbeat_timeout`).
    pub failure: String,
}

/// The three tools over `data`.
pub fn tools(data: OpsData) -> [Arc<dyn Tool>; 3] {
    let data = Arc::new(data);
    let logs = data.clone();
    let search_logs = FunctionTool::new(SEARCH_LOGS, move |search: LogSearch| {
        let found = logs.logs.get(&search.job).map(|lines| {
            let query = search.query.as_deref().unwrap_or_default().to_lowercase();
            let matching: Vec<&String> = lines.iter().filter(|l| l.to_lowercase().contains(&query)).collect();
            matching[matching.len().saturating_sub(MAX_LINES)..].to_vec()
        });
        let answer = match found {
            Some(lines) => Ok(json!({"job": search.job, "lines": lines})),
            None => Err(format!("no logs for job `{}`", search.job)),
        };
        async move { answer }
    });
    let nodes = data.clone();
    let node_health = FunctionTool::new(NODE_HEALTH, move |check: NodeHealthCheck| {
        let health = nodes.nodes.get(&check.node).cloned().ok_or_else(|| format!("no node `{}`", check.node));
        async move { health }
    });
    let runbook = FunctionTool::new(RUNBOOK, move |lookup: RunbookLookup| {
        let runbook = data.runbooks.get(&lookup.failure).cloned().ok_or_else(|| {
            let known: Vec<&str> = data.runbooks.keys().map(String::as_str).collect();
            format!("no runbook for failure `{}` (runbooks: {})", lookup.failure, known.join(", "))
        });
        async move { runbook }
    });
    [Arc::new(search_logs.with_read_only()), Arc::new(node_health.with_read_only()), Arc::new(runbook.with_read_only())]
}
