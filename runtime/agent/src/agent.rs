//! What every kind of agent shares: resources, metrics and settings.

use serde::{Deserialize, Serialize};

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
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings { max_chat_steps: 10, memory_ttl_ms: None }
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
