//! The diagnostician's tools: `search_logs`, `node_health` and `runbook`, over [`OpsData`].

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use weir_agent::approval::{Approval, Decision};
use weir_agent::{AgentError, ToolBinding};
use weir_tools::{FunctionTool, HttpTool, HttpToolConfig, Tool, parameters_schema};

use crate::data::OpsData;

/// The log search tool's name.
pub const SEARCH_LOGS: &str = "search_logs";
/// The node health tool's name.
pub const NODE_HEALTH: &str = "node_health";
/// The runbook tool's name.
pub const RUNBOOK: &str = "runbook";

/// The remediation tool's name.
pub const REMEDIATE: &str = "remediate";
/// Where remediations go: `log` (logged only) or the URL of a webhook that carries them out.
pub const REMEDIATION: &str = "WEIR_OPS_REMEDIATION";
/// How long a remediation waits for the on-call engineer's approval before it is dropped.
pub const REMEDIATION_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);

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

/// Carries out one remediation step on the cluster (restart a job, drain a node, ...). A
/// person approves each call before it runs: call it at most once, with the runbook's step.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Remediation {
    /// The failed job.
    pub job: String,
    /// The node it ran on.
    pub node: String,
    /// The step to carry out, as the runbook words it.
    pub action: String,
    /// Why, for the approver: the diagnosis.
    pub reason: String,
}

/// `remediate` as `WEIR_OPS_REMEDIATION` (read through `env`) configures it, every call
/// waiting for approval; `None` when it is unset: the agent then only diagnoses.
pub fn remediation_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ToolBinding>, AgentError> {
    let tool: Arc<dyn Tool> = match env(REMEDIATION).map(|value| value.trim().to_string()) {
        None => return Ok(None),
        Some(value) if value.is_empty() => return Ok(None),
        Some(value) if value == "log" => {
            let tool = FunctionTool::new(REMEDIATE, |step: Remediation| async move {
                tracing::warn!(job = %step.job, node = %step.node, action = %step.action, "remediation approved (WEIR_OPS_REMEDIATION=log: logged only)");
                Ok::<_, String>(json!({"job": step.job, "action": step.action, "done": true, "via": "log"}))
            });
            Arc::new(tool.with_at_most_once())
        }
        Some(url) => {
            let config = HttpToolConfig {
                name: REMEDIATE.into(),
                description: "Carries out one remediation step on the cluster, once a person approves it.".into(),
                url: url.clone(),
                parameters: parameters_schema::<Remediation>(),
                headers: Default::default(),
                timeout_ms: 30_000,
                retries: 0,
                at_most_once: true,
                read_only: false,
            };
            let tool = HttpTool::new(&config)
                .map_err(|e| AgentError::Other(format!("{REMEDIATION} is `{url}`: {e} (use `log` or a URL)")))?;
            Arc::new(tool)
        }
    };
    Ok(Some(remediation(tool)))
}

/// `tool` as the agent offers `remediate`: every call waits for approval, and no answer
/// within [`REMEDIATION_APPROVAL_TIMEOUT`] means no.
pub fn remediation(tool: Arc<dyn Tool>) -> ToolBinding {
    let approval = Approval::always().timeout(REMEDIATION_APPROVAL_TIMEOUT).on_timeout(Decision::Deny);
    ToolBinding::new(tool).require_approval(approval)
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
