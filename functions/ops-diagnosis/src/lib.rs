//! An operations-diagnosis agent on weir.
//!
//! For each job failure (`{"job", "node", "failure", ...}`, keyed by job; `failure` such as
//! `heartbeat_timeout`, `oom`, `disk_full`) a ReAct agent searches the job's logs, checks
//! the node's health, reads the failure's runbook and searches the runbook knowledge base
//! (the dozen Markdown runbooks of `runbooks/`, BM25, no model) through four tools, then
//! answers with a [`Diagnosis`]: `{"job", "diagnosis", "remediation", "evidence": [..],
//! "runbook"}`, citing the runbook it followed, checked against
//! the schema derived from that type (a reply that does not match is sent back, then
//! dead-lettered with the raw reply).
//!
//! The model is the first configured in the environment (see
//! [`weir_models::ModelConfig::from_environment`]), else a small built-in offline model; the
//! tools read `WEIR_OPS_DATA_DIR` (`logs.json`, `nodes.json`, `runbooks.json`), else the
//! built-in sample of `data/`.
//!
//! With `WEIR_OPS_REMEDIATION` set (`log`, or the URL of a webhook that acts on the cluster),
//! the agent also has `remediate`, and carries out the runbook's first step with it, but only
//! once a person approves: each call waits durably for an answer (docs/waits.md, "Approvals").

mod agent;
mod data;
mod offline_model;
mod runbooks;
mod tools;

pub use agent::{Diagnosis, MODEL, agent, agent_from_env, agent_with_env, agent_with_remediation, agent_with_runbooks};
pub use data::{OpsData, OpsDataError, Runbook};
pub use offline_model::{OFFLINE_MODEL_NAME, OfflineOpsModel};
pub use runbooks::{SEARCH_RUNBOOKS, ShippedRunbooks, runbooks_from_env};
pub use tools::{
    LogSearch, NODE_HEALTH, NodeHealthCheck, REMEDIATE, REMEDIATION, REMEDIATION_APPROVAL_TIMEOUT, RUNBOOK,
    Remediation, RunbookLookup, SEARCH_LOGS, remediation, remediation_from_env, tools,
};

/// The JSON pointer of a failure's key (`WEIR_KEY_FIELD`): failures are keyed by job.
pub const KEY_FIELD: &str = "/job";
