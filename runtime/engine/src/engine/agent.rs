//! What the engine runs: an agent's handling of one input event.

use async_trait::async_trait;

use super::Engine;
use super::context::EventContext;
use crate::budget::SpendLimit;
use crate::position::Position;

/// An error an action returns; the engine retries the event, then dead-letters it.
pub type ActionError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An action error that refuses the event outright: it is dead-lettered at once with
/// `reason`, without the retries that could not help (a reply that will never parse, an
/// input that will never validate).
///
/// ```
/// use weir_engine::{ActionError, Rejected};
///
/// let error: ActionError = Rejected::new("the model's reply is not JSON: `Sure! Here...`").into();
/// assert!(error.downcast_ref::<Rejected>().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejected {
    /// Why, as the dead letter will say.
    pub reason: String,
}

impl Rejected {
    /// Refuses the event for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Rejected { reason: reason.into() }
    }
}

/// An action error that is not the event's fault: a model, tool or service it needs cannot
/// be reached, or answers 5xx or 429 after its client's retries. The event is neither
/// retried now nor dead-lettered: its batch does not commit, and the partition waits at its
/// last commit for a later invocation (`docs/storage-format.md`, "Dead letters, and failures
/// that are not the event's fault").
///
/// ```
/// use weir_engine::{ActionError, Unavailable};
///
/// let error: ActionError = Unavailable::new("the scoring service answered 503 three times").into();
/// assert!(error.is::<Unavailable>());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Unavailable {
    /// What cannot be reached, and how it failed.
    pub reason: String,
}

impl Unavailable {
    /// A failure of something the event needs, for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Unavailable { reason: reason.into() }
    }
}

/// An event of the log as an agent receives it: the producer's payload decoded as JSON,
/// with its key and position. (The agent crate's `InputEvent` is the event a workflow run
/// starts from; it is made from this.)
#[derive(Debug, Clone, PartialEq)]
pub struct LogInput {
    /// The key: this agent's events of one key run in log order.
    pub key: String,
    /// Where the event is in the log; stable across replays.
    pub position: Position,
    /// The producer's payload, parsed as JSON.
    pub payload: serde_json::Value,
}

/// An agent, as far as the engine is concerned: it handles events one at a time per key.
///
/// Handlers may run more than once for one event (after a crash, or when an attempt
/// fails); everything they do outside the context must go through
/// [`EventContext::durable`], which replays recorded results instead of calling again.
///
/// ```
/// use weir_engine::{ActionError, Agent, EventContext, LogInput};
///
/// /// Counts events per key and emits the running count.
/// struct Counter;
///
/// #[async_trait::async_trait]
/// impl Agent for Counter {
///     async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
///         let count = ctx.state::<u64>()?.unwrap_or(0) + 1;
///         ctx.set_state(&count)?;
///         ctx.emit(&serde_json::json!({"key": event.key, "count": count}))?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Handles one event; state changes and outputs made through `ctx` commit only if it
    /// returns `Ok`.
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError>;

    /// Work the agent does for its waiting keys outside any batch, after the drains of every
    /// invocation of the process function, scheduled or not: the agent crate submits the
    /// calls its keys wait on to providers' batch APIs and polls them (docs/batch-calls.md).
    /// What it learns it appends to `engine`'s log as signals, which the next drain reads;
    /// it returns how many it appended. Nothing, by default.
    async fn tend(&self, engine: &Engine) -> Result<u64, ActionError> {
        let _ = engine;
        Ok(0)
    }

    /// What the agent as a whole may spend on model calls per period, over all its keys and
    /// partitions; `None` (the default): no limit. The engine keeps the partitions' spend
    /// and grants; the agent asks [`EventContext::agent_budget`] before an event spends.
    fn spend_limit(&self) -> Option<SpendLimit> {
        None
    }
}
