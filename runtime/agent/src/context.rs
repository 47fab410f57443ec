//! The context an action runs with.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_engine::{Branch, Calls, Durable, EventContext, Position, SpanId, Trace};
use weir_models::{ChatModel, ChatRequest, ChatResponse, ToolCall};

use crate::agent::AgentCore;
use crate::chat::{Conversation, Turn};
use crate::error::AgentError;
use crate::event::builtin::{ChatRequestEvent, OutputEvent, ToolResult};
use crate::event::{Event, EventType};
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::prompt::Prompt;
use crate::resources::Resources;
use crate::run::Run;

/// Everything an action may touch: events to send, memory, resources, and durable calls.
///
/// Durable calls made through the context are numbered within the action's handling of the
/// event, so they replay after a crash whatever else ran concurrently.
#[derive(Debug)]
pub struct Context<'a> {
    core: &'a AgentCore,
    run: &'a mut Run,
    action: &'a str,
    event_id: &'a str,
    engine: &'a EventContext,
    calls: Branch<'a>,
    conversations: AtomicU32,
    span: SpanId,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        core: &'a AgentCore,
        engine: &'a EventContext,
        run: &'a mut Run,
        action: &'a str,
        event_id: &'a str,
        span: SpanId,
    ) -> Self {
        let calls = engine.branch(&format!("{event_id}/{action}"));
        Context { core, run, action, event_id, engine, calls, conversations: AtomicU32::new(0), span }
    }

    /// The input's key.
    pub fn key(&self) -> &str {
        self.engine.key()
    }

    /// The input's log position.
    pub fn position(&self) -> Position {
        self.engine.position()
    }

    /// The id of the event being handled.
    pub fn event_id(&self) -> &str {
        self.event_id
    }

    /// The name of the running action.
    pub fn action(&self) -> &str {
        self.action
    }

    /// The trace of this attempt at the input event: an action may add spans of its own
    /// under [`span`](Self::span) (`docs/observability.md`).
    ///
    /// ```
    /// # fn demo(ctx: &weir_agent::Context<'_>) {
    /// use weir_engine::{SpanEnd, SpanKind};
    ///
    /// let lookup = ctx.trace().start(ctx.span(), SpanKind::Retrieval, "customer-history");
    /// ctx.trace().end(lookup, SpanEnd::ok().attribute("rows", 3));
    /// # }
    /// ```
    pub fn trace(&self) -> &Trace {
        self.engine.trace()
    }

    pub(crate) fn settings(&self) -> &crate::agent::AgentSettings {
        &self.core.settings
    }

    /// The running action's span.
    pub fn span(&self) -> SpanId {
        self.span
    }

    /// Sends a typed event; actions subscribed to it run after the current one.
    pub fn send<T: EventType>(&mut self, event: T) -> Result<String, AgentError> {
        Ok(self.send_event(Event::typed(event)))
    }

    /// Sends an event (typed or not) and returns its id.
    pub fn send_event(&mut self, event: Event) -> String {
        self.run.enqueue(event, Some(self.event_id), Some(self.action))
    }

    /// Sends an output: the agent's result, committed once with the batch.
    pub fn output<T: Serialize + ?Sized>(&mut self, output: &T) -> Result<(), AgentError> {
        let output =
            serde_json::to_value(output).map_err(|e| AgentError::Encode { what: "output".into(), source: e })?;
        self.send(OutputEvent { output }).map(drop)
    }

    /// Short-term memory: the key's, across events.
    pub fn memory(&mut self) -> &mut Memory {
        &mut self.run.memory
    }

    /// Sensory memory: this run's only.
    pub fn sensory(&mut self) -> &mut Memory {
        &mut self.run.sensory
    }

    /// All the agent's resources.
    pub fn resources(&self) -> &Resources {
        &self.core.resources
    }

    /// The chat model registered as `name`.
    pub fn model(&self, name: &str) -> Result<&Arc<dyn ChatModel>, AgentError> {
        self.core.resources.model(name)
    }

    /// The prompt registered as `name`.
    pub fn prompt(&self, name: &str) -> Result<&Prompt, AgentError> {
        self.core.resources.prompt(name)
    }

    /// The configuration entry `name`.
    pub fn config<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, AgentError> {
        self.core.resources.config(name)
    }

    /// The shared value registered as `name`.
    pub fn value<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>, AgentError> {
        self.core.resources.value(name)
    }

    /// The agent's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// One durable model call (no tool loop).
    pub fn chat<'c>(
        &'c self,
        model: &'c str,
        request: &'c ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, AgentError>> + Send + 'c {
        let turn = self.turn(&self.calls);
        async move { turn.model_call(model, request).await }
    }

    /// One durable tool call; a tool's error comes back as an error result.
    pub fn call_tool<'c>(
        &'c self,
        call: &'c ToolCall,
    ) -> impl Future<Output = Result<ToolResult, AgentError>> + Send + 'c {
        let turn = self.turn(&self.calls);
        async move { turn.tool_call(call).await }
    }

    /// Converses with a model until it answers, running the tools it calls: what the
    /// built-in chat action does with a [`ChatRequestEvent`]. Several conversations may run
    /// at once (`futures::join!`); each numbers its calls on its own.
    pub fn converse<'c>(
        &'c self,
        request: &'c ChatRequestEvent,
    ) -> impl Future<Output = Result<Conversation, AgentError>> + Send + 'c {
        // Numbered now, not when first polled, so the order of calls fixes the labels.
        let n = self.conversations.fetch_add(1, Ordering::SeqCst);
        let branch = self.engine.branch(&format!("{}/{}/conversation-{n}", self.event_id, self.action));
        async move { self.turn(&branch).converse(request).await }
    }

    fn turn<'t>(&'t self, calls: &'t Branch<'t>) -> Turn<'t> {
        Turn {
            core: self.core,
            calls,
            action: self.action,
            key: self.engine.key(),
            memory: &self.run.memory,
            trace: self.engine.trace(),
            parent: self.span,
            model_override: self.run.model_override.as_deref(),
        }
    }
}

/// Durable calls of an action, numbered within its handling of the event.
///
/// ```
/// # async fn demo(ctx: &weir_agent::Context<'_>) -> Result<(), weir_agent::ActionError> {
/// use weir_agent::Durable;
///
/// let rate: f64 = ctx.durable("exchange-rate", async { Ok::<_, std::io::Error>(1.08) }).await?;
/// # Ok(()) }
/// ```
impl Durable for Context<'_> {
    fn calls(&self) -> Calls<'_> {
        self.calls.calls()
    }
}
