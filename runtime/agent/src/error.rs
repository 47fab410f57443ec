//! What can go wrong in an agent.

use weir_engine::DurableError;

/// An error of the agent API. Returned from an action, it fails the run: the engine retries
/// the input and dead-letters it when retries run out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A value could not be serialized.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A value did not have the expected shape.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why, naming the field.
        source: serde_json::Error,
    },
    /// An event was decoded as another type than its own.
    #[error("event {id} is of type `{found}`, not `{expected}`")]
    WrongEventType {
        /// The event.
        id: String,
        /// The type asked for.
        expected: &'static str,
        /// Its type.
        found: String,
    },
    /// A resource (model, tool, prompt, ...) is not registered with the agent.
    #[error("no {kind} named `{name}` is registered with the agent")]
    UnknownResource {
        /// Which kind of resource.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A tool the model asked for is not on the agent's allow-list.
    #[error("tool `{0}` is not allowed for this agent")]
    ToolNotAllowed(String),
    /// A prompt could not be rendered.
    #[error("prompt: {0}")]
    Prompt(String),
    /// A model call failed after its retries.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model's registered name.
        model: String,
        /// Why.
        source: weir_models::ModelError,
    },
    /// The chat loop reached its step limit with the model still calling tools.
    #[error("model `{model}` still called tools after {steps} steps")]
    StepLimit {
        /// The model's registered name.
        model: String,
        /// The limit.
        steps: u32,
    },
    /// The journal could not record or replay a call.
    #[error("{0}")]
    Journal(String),
    /// Something a call needs (the store) could not be reached: not the event's fault.
    #[error("{0}")]
    Unavailable(String),
    /// An at-most-once call was interrupted in an earlier attempt and is not made again.
    #[error("at-most-once call `{name}` was interrupted in an earlier attempt (idempotency key {idempotency_key})")]
    Interrupted {
        /// The call.
        name: String,
        idempotency_key: String,
    },
    /// The event waits (for an approval, a signal or a time): not a failure; the engine runs
    /// it again when the wait ends.
    #[error("{0}")]
    Waiting(String),
    /// An agent file is invalid; the message names the file, the line and the field.
    #[error("{0}")]
    Declaration(String),
    /// Something else an action reported.
    #[error("{0}")]
    Other(String),
}

impl AgentError {
    /// Whether the failure is not the event's fault: a model that cannot be reached or
    /// answers 408, 429 or 5xx after its retries, a breaker that is open, the store down.
    /// The engine then lets the event wait instead of dead-lettering it.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AgentError::Model { source, .. } => source.is_unavailable(),
            AgentError::Unavailable(_) => true,
            _ => false,
        }
    }

    /// Maps a durable call's error, keeping a failed call's own error.
    pub(crate) fn from_durable<E>(error: DurableError<E>, failed: impl FnOnce(String, E) -> AgentError) -> Self {
        match error {
            DurableError::Failed { name, source } => failed(name, source),
            DurableError::Interrupted { name, idempotency_key } => AgentError::Interrupted { name, idempotency_key },
            DurableError::Journal { name, reason } => AgentError::Journal(format!("journal of `{name}`: {reason}")),
            DurableError::Unavailable { name, reason } => {
                AgentError::Unavailable(format!("`{name}` not made: the store is unavailable: {reason}"))
            }
            DurableError::Fenced { name } => {
                AgentError::Journal(format!("`{name}` not made: the invocation was fenced by a newer one"))
            }
            DurableError::Mismatch { name, journaled } => AgentError::Journal(format!(
                "`{name}` meets a journaled call `{journaled}` at its step: the action's calls changed since the event's earlier attempt"
            )),
        }
    }
}
