//! Workflow agents: user actions plus the built-in chat, tool and retrieval actions.

use std::any::Any;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use weir_engine::{
    Clock, Durable, DurableError, EventContext, LogInput, Rejected, SpanEnd, SpanId, SpanKind, SpendLimit, SystemClock,
    Unavailable,
};
use weir_models::{ChatModel, EmbeddingModel};
use weir_models::{ModelError, Price};
use weir_search::SearchError;
use weir_tools::Tool;

use crate::action::{Action, ActionError};
use crate::agent::{AgentCore, AgentSettings, TraceSettings};
use crate::budget::{Budget, OnExhausted};
use crate::builtin::{RetrievalAction, ToolAction};
use crate::chat::Turn;
use crate::context::Context;
use crate::error::AgentError;
use crate::event::builtin::{
    ActionFailedEvent, ActionFinishedEvent, ActionStartedEvent, ChatRequestEvent, ChatResponseEvent, InputEvent,
    OutputEvent, RetrievalRequestEvent, ToolRequestEvent,
};
use crate::event::{Event, EventType};
use crate::long_term::{LongTermMemory, MemorySetConfig};
use crate::memory::{Memory, StoredMemory};
use crate::metrics::{CallEnd, MetricsSnapshot};
use crate::prompt::Prompt;
use crate::resources::Resources;
use crate::retrieval::VectorStore;
use crate::run::Run;
use crate::tool_binding::ToolBinding;

/// The name the built-in chat action goes by in notifications, metrics and the journal.
pub const CHAT_ACTION: &str = "weir.chat";

/// An agent made of actions that react to events. It runs on the engine: give it to
/// [`weir_engine::Engine::builder`].
///
/// ```
/// use weir_agent::{Action, ActionError, Context, Event, InputEvent, WorkflowAgent};
///
/// async fn echo(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
///     let input: InputEvent = event.decode()?;
///     ctx.output(&input.input)?;
///     Ok(())
/// }
///
/// let agent = WorkflowAgent::builder().action(Action::new("echo", echo).on::<InputEvent>()).build()?;
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
#[derive(Debug)]
pub struct WorkflowAgent {
    core: AgentCore,
    actions: Vec<Action>,
    clock: Arc<dyn Clock>,
    /// Event types some action subscribes to, to skip notifications nobody hears.
    subscribed: BTreeSet<String>,
}

/// Builds a [`WorkflowAgent`].
#[derive(Debug, Default)]
pub struct WorkflowAgentBuilder {
    resources: Resources,
    actions: Vec<Action>,
    settings: AgentSettings,
    clock: Option<Arc<dyn Clock>>,
    duplicates: Vec<String>,
}

impl WorkflowAgentBuilder {
    /// Adds an action; actions subscribed to the same event run in the order added.
    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// Registers a chat model as `name`.
    pub fn model(mut self, name: impl Into<String>, model: Arc<dyn ChatModel>) -> Self {
        let name = name.into();
        self.note(self.resources.models.contains_key(&name), "chat model", &name);
        self.resources.models.insert(name, model);
        self
    }

    /// Registers an embedding model as `name`.
    pub fn embedding(mut self, name: impl Into<String>, model: Arc<dyn EmbeddingModel>) -> Self {
        let name = name.into();
        self.note(self.resources.embeddings.contains_key(&name), "embedding model", &name);
        self.resources.embeddings.insert(name, model);
        self
    }

    /// Allows a tool, under the name its spec gives.
    pub fn tool(self, tool: Arc<dyn Tool>) -> Self {
        self.tool_binding(ToolBinding::new(tool))
    }

    /// Allows a tool with hidden arguments.
    pub fn tool_binding(mut self, binding: ToolBinding) -> Self {
        let name = binding.spec().name.clone();
        self.note(self.resources.tools.contains_key(&name), "tool", &name);
        self.resources.tools.insert(name, binding);
        self
    }

    /// Registers a prompt as `name`.
    pub fn prompt(mut self, name: impl Into<String>, prompt: Prompt) -> Self {
        let name = name.into();
        self.note(self.resources.prompts.contains_key(&name), "prompt", &name);
        self.resources.prompts.insert(name, prompt);
        self
    }

    /// Registers a vector store as `name`.
    pub fn vector_store(mut self, name: impl Into<String>, store: Arc<dyn VectorStore>) -> Self {
        let name = name.into();
        self.note(self.resources.vector_stores.contains_key(&name), "vector store", &name);
        self.resources.vector_stores.insert(name, store);
        self
    }

    /// Sets the configuration entry `name`; a value that cannot be serialized fails `build`.
    pub fn config(mut self, name: impl Into<String>, value: impl Serialize) -> Self {
        let name = name.into();
        match serde_json::to_value(value) {
            Ok(value) => {
                self.resources.config.insert(name, value);
            }
            Err(e) => self.duplicates.push(format!("config `{name}` cannot be serialized: {e}")),
        }
        self
    }

    /// Registers any shared value (a client, a lookup table) as `name`.
    pub fn value<T: Any + Send + Sync>(mut self, name: impl Into<String>, value: Arc<T>) -> Self {
        self.resources.values.insert(name.into(), value);
        self
    }

    /// Replaces the settings.
    pub fn settings(mut self, settings: AgentSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The most model calls one conversation may make.
    pub fn max_chat_steps(mut self, steps: u32) -> Self {
        self.settings.max_chat_steps = steps;
        self
    }

    /// How long short-term memory entries live after they are written.
    pub fn memory_ttl(mut self, ttl: Duration) -> Self {
        self.settings.memory_ttl_ms = Some(ttl.as_millis() as u64);
        self
    }

    /// What the trace records of calls.
    pub fn trace_settings(mut self, trace: TraceSettings) -> Self {
        self.settings.trace = trace;
        self
    }

    /// What `model`'s tokens cost (`model` as its provider names it, as in
    /// [`ChatModel::name`]); its calls' spans then carry their cost.
    pub fn price(mut self, model: impl Into<String>, price: Price) -> Self {
        self.settings.prices.insert(model.into(), price);
        self
    }

    /// What each key may spend on model calls per period (`docs/observability.md`).
    pub fn key_budget(mut self, budget: Budget) -> Self {
        self.settings.key_budget = Some(budget);
        self
    }

    /// What the agent as a whole, over all its keys and partitions, may spend on model calls
    /// per period (`docs/observability.md`, "Budgets per agent").
    pub fn agent_budget(mut self, budget: Budget) -> Self {
        self.settings.agent_budget = Some(budget);
        self
    }

    /// Declares the long-term memory set `name`: its capacity, TTL, summarising and
    /// embedding models (registered names).
    pub fn memory_set(mut self, name: impl Into<String>, config: MemorySetConfig) -> Self {
        self.settings.memory_sets.insert(name.into(), config);
        self
    }

    /// The clock memory expiry reads (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn note(&mut self, duplicate: bool, kind: &str, name: &str) {
        if duplicate {
            self.duplicates.push(format!("{kind} `{name}` is registered twice"));
        }
    }

    /// Checks the agent: unique names, valid prompts, at least one action.
    pub fn build(self) -> Result<WorkflowAgent, AgentError> {
        let mut problems = self.duplicates;
        for (name, prompt) in &self.resources.prompts {
            if let Err(e) = prompt.validate() {
                problems.push(format!("prompt `{name}`: {e}"));
            }
        }
        let mut names = BTreeSet::new();
        for action in &self.actions {
            if !names.insert(action.name.as_str()) {
                problems.push(format!("action `{}` is added twice", action.name));
            }
            if action.subscriptions.is_empty() {
                problems.push(format!("action `{}` subscribes to no event type", action.name));
            }
        }
        if self.actions.is_empty() {
            problems.push("the agent has no actions".into());
        }
        if !problems.is_empty() {
            return Err(AgentError::Other(format!("invalid agent: {}", problems.join("; "))));
        }
        let builtins = [
            Action::with_handler("weir.tools", ToolAction).on::<ToolRequestEvent>(),
            Action::with_handler("weir.retrieval", RetrievalAction).on::<RetrievalRequestEvent>(),
        ];
        let actions: Vec<Action> = builtins.into_iter().chain(self.actions).collect();
        let subscribed = actions.iter().flat_map(|a| a.subscriptions.iter().cloned()).collect();
        let core = AgentCore { resources: self.resources, settings: self.settings, ..Default::default() };
        Ok(WorkflowAgent { core, actions, clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)), subscribed })
    }
}

impl WorkflowAgent {
    /// A builder with no actions or resources.
    pub fn builder() -> WorkflowAgentBuilder {
        WorkflowAgentBuilder::default()
    }

    /// What the agent did so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.core.metrics()
    }

    /// The agent's resources.
    pub fn resources(&self) -> &Resources {
        &self.core.resources
    }

    /// What the tokens of the chat model registered as `name` cost: the agent's price for
    /// the model its provider names ([`ChatModel::name`]); `None` when it has none.
    pub fn price(&self, name: &str) -> Option<Price> {
        let model = self.core.resources.model(name).ok()?;
        self.core.settings.prices.get(model.name()).copied()
    }

    /// Runs the actions subscribed to `event`, with notifications around each.
    async fn route(&self, event: &Event, engine: &EventContext, run: &mut Run) -> Result<(), ActionError> {
        for action in self.actions.iter().filter(|a| a.subscribes_to(&event.kind)) {
            self.notify(|| ActionStartedEvent::of(&action.name, event), engine, run).await?;
            let started = std::time::Instant::now();
            let result = self.run_action(action, event, engine, run).await;
            match result {
                Ok(()) => {
                    self.core.metrics.action_run(&action.name, CallEnd::Made(started.elapsed(), Default::default()));
                    self.notify(|| ActionFinishedEvent::of(&action.name, event), engine, run).await?;
                }
                // A wait is not a failure: the action runs again when it ends.
                Err(error) if engine.is_suspended() => return Err(error),
                Err(error) => {
                    self.core.metrics.action_run(&action.name, CallEnd::Failed);
                    tracing::debug!(action = %action.name, event = %event.id, %error, "action failed");
                    self.notify(|| ActionFailedEvent::of(&action.name, event, &error), engine, run).await?;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Runs the listeners of a notification at once (not queued: they see it as it happens).
    /// The notification is built only if some action listens: this runs around every action.
    async fn notify<T: EventType>(
        &self,
        notification: impl FnOnce() -> T,
        engine: &EventContext,
        run: &mut Run,
    ) -> Result<(), ActionError> {
        if !self.subscribed.contains(T::TYPE) {
            return Ok(());
        }
        let mut event = Event::typed(notification());
        event.id = run.next_id();
        for listener in self.actions.iter().filter(|a| a.subscribes_to(T::TYPE)) {
            self.run_action(listener, &event, engine, run).await?;
        }
        Ok(())
    }

    /// Runs one action on `event`, in a span of its own.
    async fn run_action(
        &self,
        action: &Action,
        event: &Event,
        engine: &EventContext,
        run: &mut Run,
    ) -> Result<(), ActionError> {
        let span = engine.trace().start(SpanId::ROOT, SpanKind::Action, &action.name);
        let result = {
            let mut ctx = Context::new(&self.core, engine, run, &action.name, &event.id, span);
            action.handler.handle(event, &mut ctx).await
        };
        let end = match &result {
            Ok(()) => SpanEnd::ok(),
            Err(error) => SpanEnd::failed(error),
        };
        engine.trace().end(
            span,
            end.attribute("weir.event.type", event.kind.as_str()).attribute("weir.event.id", event.id.as_str()),
        );
        result
    }

    /// Runs chat requests queued together concurrently, each in its own journal branch, and
    /// queues their responses in request order.
    async fn chat(&self, requests: Vec<Event>, engine: &EventContext, run: &mut Run) -> Result<(), ActionError> {
        let decoded = requests.iter().map(|e| e.view::<ChatRequestEvent>()).collect::<Result<Vec<_>, _>>()?;
        for event in &requests {
            self.notify(|| ActionStartedEvent::of(CHAT_ACTION, event), engine, run).await?;
        }
        let branches: Vec<_> = requests.iter().map(|e| engine.branch(&format!("{}/{CHAT_ACTION}", e.id))).collect();
        let trace = engine.trace();
        let spans: Vec<SpanId> =
            requests.iter().map(|_| trace.start(SpanId::ROOT, SpanKind::Action, CHAT_ACTION)).collect();
        let (memory, model_override) = (&run.memory, run.model_override.as_deref());
        let turns = decoded.iter().zip(&branches).zip(&spans).map(|((request, branch), &parent)| {
            let key = engine.key();
            let core = &self.core;
            let record = engine.record();
            let (calls, action) = (branch, CHAT_ACTION);
            let turn = Turn { core, calls, action, key, memory, trace, parent, model_override, record };
            async move { turn.converse(request).await }
        });
        let conversations = futures::future::join_all(turns).await;
        for (((event, request), conversation), span) in requests.iter().zip(decoded).zip(conversations).zip(spans) {
            let end = match &conversation {
                Ok(_) => SpanEnd::ok(),
                Err(error) => SpanEnd::failed(error),
            };
            trace.end(
                span,
                end.attribute("weir.event.type", event.kind.as_str()).attribute("weir.event.id", event.id.as_str()),
            );
            let conversation = match conversation {
                Ok(conversation) => conversation,
                Err(error) => {
                    self.notify(|| ActionFailedEvent::of(CHAT_ACTION, event, &error), engine, run).await?;
                    return Err(error.into());
                }
            };
            let response = ChatResponseEvent {
                request_id: event.id.clone(),
                model: request.model.clone(),
                message: conversation.message,
                messages: conversation.messages,
                usage: conversation.usage,
                context: request.context.clone(),
            };
            run.enqueue(Event::typed(response), Some(&event.id), Some(CHAT_ACTION));
            self.notify(|| ActionFinishedEvent::of(CHAT_ACTION, event), engine, run).await?;
        }
        Ok(())
    }

    /// The run's time for memory expiry, journaled so that every attempt sees the same.
    async fn now_ms(&self, engine: &EventContext, stored: &Option<StoredMemory>) -> Result<Option<u64>, ActionError> {
        let settings = &self.core.settings;
        let long_term_ttl = settings.memory_sets.values().any(|set| set.ttl_ms.is_some());
        let long_term_expires = stored.as_ref().is_some_and(|s| LongTermMemory::expires(&s.long_term));
        if settings.memory_ttl_ms.is_none()
            && settings.key_budget.is_none()
            && settings.agent_budget.is_none()
            && !long_term_ttl
            && !long_term_expires
            && !Memory::expires(stored)
        {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let now = engine.branch("weir.clock").durable("clock", async move { Ok::<_, Infallible>(now) }).await;
        Ok(Some(now.map_err(|e| AgentError::from_durable(e, |_, never: Infallible| match never {}))?))
    }
}

#[async_trait]
impl weir_engine::Agent for WorkflowAgent {
    async fn on_event(&self, input: &LogInput, engine: &mut EventContext) -> Result<(), ActionError> {
        self.run(input, engine).await.map_err(not_the_events_fault)
    }

    /// Submits the model calls its keys wait on to the providers' batch APIs, and appends
    /// the results of the ended ones (docs/batch-calls.md).
    async fn tend(&self, engine: &weir_engine::Engine) -> Result<u64, ActionError> {
        let tended = crate::batch::tend(engine, &self.core.resources, &*self.clock).await?;
        if tended != crate::batch::Tended::default() {
            tracing::info!(?tended, "batch calls tended");
        }
        Ok(tended.answered)
    }

    fn spend_limit(&self) -> Option<SpendLimit> {
        let budget = self.core.settings.agent_budget.as_ref()?;
        Some(SpendLimit { tokens: budget.tokens, cost: budget.cost, period_ms: budget.period_ms })
    }
}

/// Whether a durable call failed because something it needs is down.
fn durable_unavailable<E>(error: &DurableError<E>, unavailable: impl Fn(&E) -> bool) -> bool {
    match error {
        DurableError::Failed { source, .. } => unavailable(source),
        DurableError::Unavailable { .. } => true,
        _ => false,
    }
}

/// An action's error as the engine should see it: a failure of a model, a knowledge base or
/// the store that is down becomes [`Unavailable`], so that the event waits instead of being
/// dead-lettered.
fn not_the_events_fault(error: ActionError) -> ActionError {
    let unavailable = match error.downcast_ref::<AgentError>() {
        Some(agent_error) => agent_error.is_unavailable(),
        None => {
            let model = error
                .downcast_ref::<DurableError<ModelError>>()
                .map(|e| durable_unavailable(e, ModelError::is_unavailable));
            let search = error
                .downcast_ref::<DurableError<SearchError>>()
                .map(|e| durable_unavailable(e, SearchError::is_unavailable));
            model.or(search).unwrap_or(false)
        }
    };
    match unavailable {
        true => Box::new(Unavailable::new(error.to_string())),
        false => error,
    }
}

impl WorkflowAgent {
    /// Runs the run's events through the actions until none is left.
    async fn run_events(&self, engine: &EventContext, run: &mut Run) -> Result<(), ActionError> {
        while let Some(event) = run.queue.pop_front() {
            if event.kind == OutputEvent::TYPE {
                run.outputs.push(event.decode::<OutputEvent>()?.output);
            }
            if event.kind == ChatRequestEvent::TYPE {
                let mut requests = vec![event.clone()];
                while run.queue.front().is_some_and(|e| e.kind == ChatRequestEvent::TYPE) {
                    requests.extend(run.queue.pop_front());
                }
                self.chat(requests.clone(), engine, run).await?;
                for request in &requests {
                    self.route(request, engine, run).await?;
                }
                continue;
            }
            self.route(&event, engine, run).await?;
        }
        Ok(())
    }

    /// One input's run: its events through the actions, then its memory and outputs.
    async fn run(&self, input: &LogInput, engine: &mut EventContext) -> Result<(), ActionError> {
        let mut stored: Option<StoredMemory> = engine.state()?;
        let now_ms = self.now_ms(engine, &stored).await?;
        let spend = stored.as_ref().and_then(|s| s.spend);
        let sets = stored.as_mut().map(|s| std::mem::take(&mut s.long_term)).unwrap_or_default();
        let long_term = LongTermMemory::restore(sets, now_ms, input.position.to_string());
        let memory = Memory::restore(stored, now_ms, self.core.settings.memory_ttl_ms);
        let mut run = Run::new(input.position, memory, long_term);
        let budget = self.core.settings.key_budget.as_ref().zip(now_ms);
        let mut spent = budget.map(|(budget, now)| budget.spent(spend, now));
        if let Some(((budget, _), current)) = budget.zip(spent)
            && let Some(reason) = budget.exhausted(current)
        {
            match &budget.on_exhausted {
                OnExhausted::DeadLetter => return Err(Rejected::new(reason).into()),
                OnExhausted::Model(cheaper) => run.model_override = Some(cheaper.clone()),
                OnExhausted::Pause => {
                    let end = budget.period_end(current);
                    tracing::debug!(key = %input.key, %reason, "key paused until its budget's period ends");
                    engine.sleep_until(end).await?;
                    spent = Some(budget.spent(spend, end));
                }
            }
        }
        if let Some((budget, now)) = self.core.settings.agent_budget.as_ref().zip(now_ms)
            && let Some(reason) = engine.agent_budget(now).await.map_err(|e| {
                AgentError::from_durable(e, |name, source| {
                    AgentError::Unavailable(format!("`{name}`: the agent budget's ledger cannot be read: {source}"))
                })
            })?
        {
            match &budget.on_exhausted {
                OnExhausted::DeadLetter => return Err(Rejected::new(reason).into()),
                OnExhausted::Model(cheaper) => run.model_override = Some(cheaper.clone()),
                OnExhausted::Pause => {
                    tracing::debug!(key = %input.key, %reason, "key paused until the agent budget's period ends");
                    engine.sleep_until(budget.period_end(budget.spent(None, now))).await?;
                }
            }
        }
        let first = InputEvent { key: input.key.clone(), input: input.payload.clone() };
        run.enqueue(Event::typed(first), None, None);
        if let Err(error) = self.run_events(engine, &mut run).await {
            if engine.is_suspended() {
                // The outputs sent before the wait go out with the suspension, once: the run
                // after the wait sends them again in the same order, and the engine drops
                // those (docs/waits.md, "Outputs of a waiting event").
                for event in std::mem::take(&mut run.queue).iter().filter(|e| e.kind == OutputEvent::TYPE) {
                    run.outputs.push(event.decode::<OutputEvent>()?.output);
                }
                for output in &run.outputs {
                    engine.emit(output)?;
                }
            }
            return Err(error);
        }
        // What the event's model calls used, made or replayed: the trace counts each once.
        let (tokens, cost) = engine.trace().tokens_and_cost();
        let new_spend = match spent {
            Some(spent) if tokens > 0 || cost > 0.0 => Some(spent.add(tokens, cost)),
            _ => spend,
        };
        if run.memory.changed() || run.long_term.changed() || new_spend != spend {
            engine.set_state(&run.memory.into_stored(run.long_term, new_spend))?;
        }
        for output in &run.outputs {
            engine.emit(output)?;
        }
        Ok(())
    }
}
