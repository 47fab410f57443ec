//! What an agent did: model calls and tokens per model and action, tool calls, action runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use weir_models::Usage;

/// Counters of one agent, over the life of the process. Replayed calls are counted apart:
/// they cost nothing.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<MetricsSnapshot>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Model calls per model, then per action.
    pub models: BTreeMap<String, BTreeMap<String, CallMetrics>>,
    /// Retries the model clients made, per model.
    pub model_retries: BTreeMap<String, u64>,
    /// Tool calls per tool.
    pub tools: BTreeMap<String, CallMetrics>,
    /// Runs per action.
    pub actions: BTreeMap<String, CallMetrics>,
}

/// Counters of one kind of call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallMetrics {
    /// Calls made.
    pub calls: u64,
    /// Calls answered from the journal.
    pub replayed: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Prompt tokens of calls made.
    pub input_tokens: u64,
    /// Reply tokens of calls made.
    pub output_tokens: u64,
    /// Total time of calls made, in microseconds.
    pub total_us: u64,
    /// The longest call made, in microseconds.
    pub max_us: u64,
}

/// How a call ended, for the counters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CallEnd {
    /// It ran, took this long and used these tokens.
    Made(Duration, Usage),
    /// The journal answered it.
    Replayed,
    /// It failed.
    Failed,
}

impl CallMetrics {
    fn add(&mut self, end: CallEnd) {
        match end {
            CallEnd::Made(took, usage) => {
                let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                self.calls += 1;
                self.input_tokens += usage.input_tokens;
                self.output_tokens += usage.output_tokens;
                self.total_us += us;
                self.max_us = self.max_us.max(us);
            }
            CallEnd::Replayed => self.replayed += 1,
            CallEnd::Failed => self.errors += 1,
        }
    }
}

impl Metrics {
    /// A copy of the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.inner.lock().expect("metrics").clone()
    }

    pub(crate) fn model_call(&self, model: &str, action: &str, end: CallEnd) {
        let mut inner = self.inner.lock().expect("metrics");
        counters(counters(&mut inner.models, model), action).add(end);
    }

    pub(crate) fn tool_call(&self, tool: &str, end: CallEnd) {
        counters(&mut self.inner.lock().expect("metrics").tools, tool).add(end);
    }

    pub(crate) fn action_run(&self, action: &str, end: CallEnd) {
        counters(&mut self.inner.lock().expect("metrics").actions, action).add(end);
    }

    pub(crate) fn set_model_retries(&self, model: &str, retries: u64) {
        self.inner.lock().expect("metrics").model_retries.insert(model.to_string(), retries);
    }
}

/// The counters of `name`, created on first use: the name is copied only then, as this runs
/// on every call.
fn counters<'m, T: Default>(map: &'m mut BTreeMap<String, T>, name: &str) -> &'m mut T {
    if !map.contains_key(name) {
        map.insert(name.to_string(), T::default());
    }
    map.get_mut(name).expect("inserted above")
}
