//! The agent: a ReAct diagnostician over the failure event, with the three tools.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_agent::{AgentError, Prompt, ReActAgent, ToolBinding, VectorStore, WorkflowAgent, knowledge_base_tool};
use weir_models::{ChatModel, ModelConfig, Role};

use crate::data::OpsData;
use crate::offline_model::OfflineOpsModel;
use crate::runbooks::{SEARCH_RUNBOOKS, ShippedRunbooks, runbooks_from_env};
use crate::tools::{remediation_from_env, tools};

/// The diagnostician model's registered name.
pub const MODEL: &str = "diagnostician";

/// The agent's answer, and output, for one failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    /// The failed job, as in the event.
    pub job: String,
    /// What went wrong and why, in one or two sentences.
    pub diagnosis: String,
    /// What to do about it, in order.
    pub remediation: String,
    /// The log lines and health readings the diagnosis rests on, quoted.
    #[schemars(length(min = 1))]
    pub evidence: Vec<String>,
    /// The runbook followed, as `search_runbooks` named its document, if one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// The remediation step carried out with `remediate` once approved; absent when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_taken: Option<String>,
}

/// A prompt template: literal braces are doubled.
const SYSTEM: &str = "You are the on-call engineer's assistant. A batch job failed. Find out why: \
search the job's logs with `search_logs`, check the node with `node_health`, read the \
runbook for the failure with `runbook`, and search the runbook knowledge base with \
`search_runbooks` for the error you see. Then answer with only a JSON object \
{{\"job\": string, \"diagnosis\": string, \"remediation\": string, \"evidence\": [string], \
\"runbook\": string}}: the diagnosis names the cause, the remediation follows the runbook where it \
applies, the evidence quotes the log lines and health readings you relied on, and `runbook` \
cites the document of the runbook you followed. If you have a `remediate` tool, carry out the \
runbook's first remediation step with it, once (a person approves it first), and if it was done \
add {{\"action_taken\": string}} naming the step.";

const USER: &str = "Job: {job}\nNode: {node}\nFailure: {failure}\nEvent: {input}";

/// The agent with the model the process environment configures (else the built-in offline
/// model) and the data of `WEIR_OPS_DATA_DIR` (else the built-in sample).
pub fn agent_from_env() -> Result<WorkflowAgent, AgentError> {
    agent_with_env(&|name| std::env::var(name).ok())
}

/// Like [`agent_from_env`], with the model and data directory the variables of `env`
/// configure (the function reads API keys from a secret through it).
pub fn agent_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<WorkflowAgent, AgentError> {
    let model_error = |source| AgentError::Model { model: MODEL.into(), source };
    let model = ModelConfig::build_from_environment(env, || Arc::new(OfflineOpsModel)).map_err(model_error)?;
    let runbooks = runbooks_from_env(env).map_err(|e| AgentError::Other(format!("runbook knowledge base: {e}")))?;
    let data = match env("WEIR_OPS_DATA_DIR").filter(|dir| !dir.trim().is_empty()) {
        Some(dir) => {
            OpsData::load(Path::new(&dir)).map_err(|e| AgentError::Other(format!("WEIR_OPS_DATA_DIR: {e}")))?
        }
        None => OpsData::sample(),
    };
    let remediation = remediation_from_env(env)?;
    tracing::info!(model = model.name(), remediation = remediation.is_some(), "ops diagnosis model");
    agent_with_remediation(model, data, runbooks, remediation)
}

/// The agent with a given model, its tools reading `data`.
///
/// ```
/// use std::sync::Arc;
/// use weir_ops_diagnosis::{OfflineOpsModel, OpsData, agent};
///
/// let agent = agent(Arc::new(OfflineOpsModel), OpsData::sample())?;
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
pub fn agent(model: Arc<dyn ChatModel>, data: OpsData) -> Result<WorkflowAgent, AgentError> {
    agent_with_runbooks(model, data, Arc::new(ShippedRunbooks::default()))
}

/// The agent with a given model, its tools reading `data` and searching `runbooks`.
pub fn agent_with_runbooks(
    model: Arc<dyn ChatModel>,
    data: OpsData,
    runbooks: Arc<dyn VectorStore>,
) -> Result<WorkflowAgent, AgentError> {
    agent_with_remediation(model, data, runbooks, None)
}

/// The agent with a given model, its tools reading `data` and searching `runbooks`, and
/// `remediate` if given (see [`remediation`](crate::remediation): each call waits for a
/// person's approval).
pub fn agent_with_remediation(
    model: Arc<dyn ChatModel>,
    data: OpsData,
    runbooks: Arc<dyn VectorStore>,
    remediation: Option<ToolBinding>,
) -> Result<WorkflowAgent, AgentError> {
    let [search_logs, node_health, runbook] = tools(data);
    let builder = ReActAgent::builder(MODEL, model)
        .prompt(Prompt::messages([(Role::System, SYSTEM.to_string()), (Role::User, USER.to_string())]))
        .tool(search_logs)
        .tool(node_health)
        .tool(runbook)
        .tool(Arc::new(knowledge_base_tool(SEARCH_RUNBOOKS, runbooks)));
    let builder = match remediation {
        Some(remediation) => builder.tool_binding(remediation),
        None => builder,
    };
    builder.output_schema::<Diagnosis>().max_steps(8).build()
}
