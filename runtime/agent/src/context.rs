//! The context an action runs with.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_engine::{Branch, Calls, Durable, EventContext, Position, SpanId, Trace};
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ToolCall};

use crate::agent::AgentCore;
use crate::chat::{Conversation, Turn};
use crate::error::AgentError;
use crate::event::builtin::{ChatRequestEvent, OutputEvent, ToolResult};
use crate::event::{Event, EventType};
use crate::long_term::{LongTermMemory, MemoryItem, MemorySetConfig};
use crate::memory::Memory;
use crate::metrics::Metrics;
use crate::prompt::Prompt;
use crate::resources::Resources;
use crate::run::Run;

/// What the summarising model is told when a memory set is past its capacity.
const COMPACTION_PROMPT: &str = "These are memories an agent kept about one customer, account or \
entity, oldest first. Summarise them into one short paragraph that keeps every decision, amount, \
date and reason a later decision could need. Answer with the summary only.";

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

    /// Long-term memory: the key's named sets of memories, committed with the batch.
    pub fn long_term(&mut self) -> &mut LongTermMemory {
        &mut self.run.long_term
    }

    /// Adds a memory to `set` as the agent declares the set ([`MemorySetConfig`]): embedded
    /// in a journaled call if the set has an embedding model; past its capacity, the oldest
    /// memories are summarised into one by its summarising model in a journaled call, or
    /// dropped if it has none. Returns the memory's id.
    pub async fn remember(
        &mut self,
        set: &str,
        text: impl Into<String>,
        metadata: BTreeMap<String, String>,
    ) -> Result<String, AgentError> {
        let config = self.core.settings.memory_sets.get(set).cloned().unwrap_or_default();
        let text = text.into();
        let vector = match &config.embedding {
            Some(model) => Some(self.embed(model, &text).await?),
            None => None,
        };
        let id = self.run.long_term.insert(set, text, metadata, vector, config.ttl_ms);
        let held = self.run.long_term.items(set).count();
        if let Some(capacity) = config.capacity.filter(|capacity| held > *capacity) {
            self.compact(set, &config, (held - capacity).max(held / 2)).await?;
        }
        Ok(id)
    }

    /// The `k` memories of `set` best matching `query`: by meaning (the query embedded in a
    /// journaled call) if the set has an embedding model, else by words.
    pub async fn recall(&mut self, set: &str, query: &str, k: usize) -> Result<Vec<MemoryItem>, AgentError> {
        let config = self.core.settings.memory_sets.get(set).cloned().unwrap_or_default();
        let found = match &config.embedding {
            Some(model) => {
                let vector = self.embed(model, query).await?;
                self.run.long_term.search_vector(set, &vector, k)
            }
            None => self.run.long_term.search(set, query, k),
        };
        Ok(found.into_iter().cloned().collect())
    }

    /// `text`'s unit vector from the embedding model registered as `model`, journaled.
    async fn embed(&self, model: &str, text: &str) -> Result<Vec<f32>, AgentError> {
        let embedder = self.core.resources.embedding(model)?.clone();
        let texts = [text.to_string()];
        let call = async move { embedder.embed(&texts).await };
        let vectors = self.durable(&format!("embedding:{model}"), call).await;
        let mut vector = vectors
            .map_err(|e| {
                AgentError::from_durable(e, |_, source| AgentError::Model { model: model.to_string(), source })
            })?
            .pop()
            .unwrap_or_default();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(vector)
    }

    /// Replaces the `count` oldest memories of `set` by a summary, or drops them.
    async fn compact(&mut self, set: &str, config: &MemorySetConfig, count: usize) -> Result<(), AgentError> {
        let summary = match &config.summarizer {
            Some(model) => {
                let oldest: Vec<String> =
                    self.run.long_term.items(set).take(count).map(|m| format!("- {}", m.text)).collect();
                let request = ChatRequest {
                    messages: vec![ChatMessage::system(COMPACTION_PROMPT), ChatMessage::user(oldest.join("\n"))],
                    ..ChatRequest::default()
                };
                let text = self.chat(model, &request).await?.message.content;
                let vector = match &config.embedding {
                    Some(embedding) => Some(self.embed(embedding, &text).await?),
                    None => None,
                };
                let metadata = BTreeMap::from([("summary_of".to_string(), count.to_string())]);
                let now = self.run.long_term.now_ms();
                let expires_at_ms = config.ttl_ms.zip(now).map(|(ttl, now)| now.saturating_add(ttl));
                let id = self.run.long_term.next_id();
                Some(MemoryItem { id, text, metadata, vector, created_ms: now, expires_at_ms })
            }
            None => None,
        };
        tracing::debug!(set, count, summarised = summary.is_some(), "long-term memory compacted");
        self.run.long_term.replace_oldest(set, count, summary);
        Ok(())
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
        async move { turn.tool_call(call, &serde_json::Value::Null).await }
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
            record: self.engine.record(),
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
