//! What every kind of agent shares: resources, metrics and settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_models::Price;

use crate::budget::Budget;

use crate::long_term::MemorySetConfig;

use crate::metrics::{Metrics, MetricsSnapshot};
use crate::resources::Resources;

/// Settings of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// The most model calls one conversation may make before it fails.
    pub max_chat_steps: u32,
    /// How long a short-term memory entry lives after it was written; `None`: forever.
    pub memory_ttl_ms: Option<u64>,
    /// What the trace records of model and tool calls.
    pub trace: TraceSettings,
    /// What each model's tokens cost, by the model's name at its provider
    /// ([`ChatModel::name`](weir_models::ChatModel::name)): model spans carry their cost.
    pub prices: BTreeMap<String, Price>,
    /// What each key may spend on model calls per period; `None`: no limit.
    pub key_budget: Option<Budget>,
    /// What the agent as a whole, over all its keys and partitions, may spend on model calls
    /// per period; `None`: no limit (`docs/observability.md`, "Budgets per agent").
    #[serde(default)]
    pub agent_budget: Option<Budget>,
    /// How each named long-term memory set behaves; undeclared sets keep everything.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub memory_sets: BTreeMap<String, MemorySetConfig>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_chat_steps: 10,
            memory_ttl_ms: None,
            memory_sets: BTreeMap::new(),
            trace: TraceSettings::default(),
            prices: BTreeMap::new(),
            key_budget: None,
            agent_budget: None,
        }
    }
}

/// What the trace records of calls (`docs/observability.md`, "Content").
///
/// ```
/// let settings: weir_agent::TraceSettings = serde_json::from_str(r#"{"redact": ["card_number"]}"#).unwrap();
/// assert!(settings.content, "content is recorded unless turned off");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// Whether model requests and replies and tool arguments and results are recorded.
    pub content: bool,
    /// JSON fields whose values are recorded as `"[redacted]"`, wherever they occur.
    pub redact: Vec<String>,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings { content: true, redact: Vec::new() }
    }
}

/// The parts of an agent its actions share.
#[derive(Debug, Default)]
pub(crate) struct AgentCore {
    pub(crate) resources: Resources,
    pub(crate) metrics: Metrics,
    pub(crate) settings: AgentSettings,
}

impl AgentCore {
    /// The metrics, with the model clients' retry counts.
    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        for (name, model) in &self.resources.models {
            self.metrics.set_model_retries(name, model.stats().retries);
        }
        self.metrics.snapshot()
    }
}
