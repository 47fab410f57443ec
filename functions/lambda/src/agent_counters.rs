//! The agent's own counters, for the process function's metrics: model calls, tokens, cost
//! and retries per model, and whether each model client's circuit breaker is open.
//!
//! Agents count over the life of the process; the process function publishes what each
//! invocation added ([`CounterDeltas`]), since a warm environment serves many.

use std::collections::BTreeMap;
use std::sync::Mutex;

use weir_agent::WorkflowAgent;
use weir_models::Usage;

/// One model's counters, since the agent was built, and its breaker now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelCounters {
    /// Calls answered (journal replays excluded).
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Prompt tokens of the calls answered.
    pub input_tokens: u64,
    /// Reply tokens of the calls answered.
    pub output_tokens: u64,
    /// What those tokens cost at the agent's price for the model (0 without one).
    pub cost: f64,
    /// Requests the model's client retried.
    pub retries: u64,
    /// Whether the client's circuit breaker is open now.
    pub breaker_open: bool,
}

impl ModelCounters {
    /// What was added since `earlier`; the breaker's state is the latest.
    fn since(&self, earlier: &ModelCounters) -> ModelCounters {
        ModelCounters {
            calls: self.calls.saturating_sub(earlier.calls),
            errors: self.errors.saturating_sub(earlier.errors),
            input_tokens: self.input_tokens.saturating_sub(earlier.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(earlier.output_tokens),
            cost: (self.cost - earlier.cost).max(0.0),
            retries: self.retries.saturating_sub(earlier.retries),
            breaker_open: self.breaker_open,
        }
    }
}

/// An agent that counts its model calls: what the process function publishes as the
/// `Model` metrics. Agents of the agent API ([`WorkflowAgent`], which declarative and ReAct
/// agents are) do; an agent written against the engine alone has none to give.
///
/// ```
/// use weir_agent::WorkflowAgent;
/// use weir_functions::agent_counters::AgentCounters;
///
/// # fn example(agent: &WorkflowAgent) {
/// for (model, counters) in agent.model_counters() {
///     println!("{model}: {} calls, {} tokens in", counters.calls, counters.input_tokens);
/// }
/// # }
/// ```
pub trait AgentCounters: Send + Sync + 'static {
    /// Per model, by the agent's name for it: its counters since the agent was built.
    fn model_counters(&self) -> BTreeMap<String, ModelCounters>;
}

impl AgentCounters for WorkflowAgent {
    fn model_counters(&self) -> BTreeMap<String, ModelCounters> {
        let snapshot = self.metrics();
        let mut models: BTreeMap<String, ModelCounters> = BTreeMap::new();
        for (model, actions) in &snapshot.models {
            let counters = models.entry(model.clone()).or_default();
            for calls in actions.values() {
                counters.calls += calls.calls;
                counters.errors += calls.errors;
                counters.input_tokens += calls.input_tokens;
                counters.output_tokens += calls.output_tokens;
            }
        }
        // Every model of the agent has a retry count, called or not.
        for (model, retries) in &snapshot.model_retries {
            models.entry(model.clone()).or_default().retries = *retries;
        }
        for (model, counters) in &mut models {
            counters.breaker_open = self.resources().model(model).is_ok_and(|client| client.stats().breaker_open);
            let usage = Usage { input_tokens: counters.input_tokens, output_tokens: counters.output_tokens };
            counters.cost = self.price(model).map_or(0.0, |price| price.cost(usage));
        }
        models
    }
}

/// Turns an agent's counters into what each invocation added.
#[derive(Debug, Default)]
pub(crate) struct CounterDeltas {
    last: Mutex<BTreeMap<String, ModelCounters>>,
}

impl CounterDeltas {
    /// What `now` adds to the counters last seen, which become `now`.
    pub(crate) fn since_last(&self, now: BTreeMap<String, ModelCounters>) -> BTreeMap<String, ModelCounters> {
        let mut last = self.last.lock().expect("not poisoned");
        let deltas = now
            .iter()
            .map(|(model, counters)| (model.clone(), counters.since(&last.get(model).copied().unwrap_or_default())));
        let deltas = deltas.collect();
        *last = now;
        deltas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_invocation_gets_what_it_added_and_the_breaker_as_it_is() {
        let deltas = CounterDeltas::default();
        let reading = |calls, open| {
            let counters = ModelCounters { calls, input_tokens: calls * 10, breaker_open: open, ..Default::default() };
            BTreeMap::from([("default".to_string(), counters)])
        };
        assert_eq!(deltas.since_last(reading(3, false))["default"].calls, 3);
        let second = deltas.since_last(reading(5, true))["default"];
        assert_eq!((second.calls, second.input_tokens, second.breaker_open), (2, 20, true));
        assert_eq!(deltas.since_last(reading(5, false))["default"], ModelCounters::default());
    }
}
