//! A small built-in model that needs no key and no network: it reads the runbook's signals
//! in the logs.
//!
//! It is what the binary runs when no provider is configured. It speaks the same protocol as
//! a real model — it calls `search_logs`, `node_health`, `runbook` and `search_runbooks`,
//! then answers with the diagnosis as JSON, citing the runbook found — so the agent runs
//! unchanged on either.

use async_trait::async_trait;
use serde_json::{Value, json};
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError, Role, ToolCall};

use crate::runbooks::SEARCH_RUNBOOKS;
use crate::tools::{NODE_HEALTH, REMEDIATE, RUNBOOK, SEARCH_LOGS};

/// The offline model's name, as metrics and logs show it.
pub const OFFLINE_MODEL_NAME: &str = "weir-offline-ops (built-in offline model)";

/// The built-in offline diagnostician: the runbook's cause, the node's state, and the log
/// lines that carry the runbook's signals.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineOpsModel;

/// How many log lines the evidence quotes at most.
const QUOTED_LINES: usize = 3;

#[async_trait]
impl ChatModel for OfflineOpsModel {
    fn name(&self) -> &str {
        OFFLINE_MODEL_NAME
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let event = find_event(&request.messages).ok_or_else(|| ModelError::Malformed {
            provider: OFFLINE_MODEL_NAME.into(),
            message: "the offline model reads a user message with `Job:`, `Node:` and `Failure:` lines; there was none"
                .into(),
        })?;
        let [job, node, failure] = &event;
        // A tool's result as JSON (an error reads as `null`), if it was answered.
        let answered =
            |tool: &str| request.tool_result(tool).map(|m| serde_json::from_str(&m.content).unwrap_or(Value::Null));
        let (Some(logs), Some(health), Some(runbook), Some(passages)) =
            (answered(SEARCH_LOGS), answered(NODE_HEALTH), answered(RUNBOOK), answered(SEARCH_RUNBOOKS))
        else {
            return Ok(ChatResponse::calling(
                OFFLINE_MODEL_NAME,
                [
                    call(SEARCH_LOGS, json!({"job": job})),
                    call(NODE_HEALTH, json!({"node": node})),
                    call(RUNBOOK, json!({"failure": failure})),
                    // Runbooks say which failure kinds they apply to: the kind finds them.
                    call(SEARCH_RUNBOOKS, json!({"query": format!("failure kind {failure}"), "top_k": 1})),
                ],
            ));
        };
        let signals: Vec<String> = runbook["signals"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
            .unwrap_or_default();
        let lines = logs["lines"].as_array().cloned().unwrap_or_default();
        let quoted = lines.iter().filter_map(Value::as_str).filter(|line| {
            let line = line.to_lowercase();
            signals.iter().any(|s| line.contains(s))
        });
        let mut evidence: Vec<String> = quoted.take(QUOTED_LINES).map(String::from).collect();
        let status = health["status"].as_str().unwrap_or("unknown");
        evidence.push(format!("node {node}: {status}, {health}"));
        let (diagnosis, remediation) = match runbook["cause"].as_str() {
            Some(cause) => {
                let steps: Vec<&str> = runbook["remediation"]
                    .as_array()
                    .map(|s| s.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                (format!("{failure} on {node} (node {status}): {cause}"), steps.join("; "))
            }
            None => (
                format!("{failure} on {node} (node {status}): no runbook covers this failure"),
                "escalate to the on-call engineer with the evidence".to_string(),
            ),
        };
        // Cited only when a runbook applies: the best passage of a search for an unknown kind
        // is no runbook to follow.
        let cited = passages["passages"][0]["document"].as_str().filter(|_| runbook["cause"].is_string());
        // With `remediate` offered, the runbook's first step is carried out, once approved.
        let first_step = runbook["remediation"][0].as_str();
        let may_remediate = request.tools.iter().any(|t| t.name == REMEDIATE);
        let remediated = answered(REMEDIATE);
        if let (Some(step), true, None) = (first_step, may_remediate, &remediated) {
            let arguments = json!({"job": job, "node": node, "action": step, "reason": diagnosis});
            return Ok(ChatResponse::calling(OFFLINE_MODEL_NAME, [call(REMEDIATE, arguments)]));
        }
        let mut answer = json!({"job": job, "diagnosis": diagnosis, "remediation": remediation, "evidence": evidence});
        if let Some(document) = cited {
            answer["runbook"] = json!(document);
        }
        // A denied or failed call answers as an error, which reads as `null`.
        if let (Some(step), Some(Value::Object(_))) = (first_step, remediated) {
            answer["action_taken"] = json!(step);
        }
        Ok(ChatResponse::answer(OFFLINE_MODEL_NAME, answer.to_string()))
    }
}

/// The job, node and failure of the user message's labelled lines.
fn find_event(messages: &[ChatMessage]) -> Option<[String; 3]> {
    let message = messages.iter().find(|m| m.role == Role::User && m.content.starts_with("Job:"))?;
    let field = |label: &str| {
        let line = message.content.lines().find_map(|line| line.strip_prefix(label))?;
        Some(line.trim().to_string())
    };
    Some([field("Job:")?, field("Node:")?, field("Failure:")?])
}

/// A call of `tool`, whose id is the tool's name: an offline model calls each tool once.
fn call(tool: &str, arguments: Value) -> ToolCall {
    ToolCall::new(tool, tool, arguments)
}
