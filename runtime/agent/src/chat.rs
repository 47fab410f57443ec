//! Durable model and tool calls, and the conversation loop of the built-in chat action.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_engine::{
    Branch, CallMode, Durable, DurableError, ModelPolicy, Record, SpanEnd, SpanId, SpanKind, ToolPolicy, Trace,
    WaitError, Wake,
};
use weir_models::{ChatMessage, ChatRequest, ChatResponse, ModelError, ToolCall, ToolSpec, Usage};

use crate::agent::AgentCore;
use crate::approval::{APPROVAL_SIGNAL, ApprovalAnswer, ApprovalRequest, Decision};
use crate::batch::{BATCH_ATTRIBUTE, BATCH_WAIT, BatchAnswer, HeldCall, MODEL_BATCH_SIGNAL};
use crate::error::AgentError;
use crate::event::builtin::{ChatRequestEvent, ToolResult};
use crate::memory::Memory;
use crate::metrics::CallEnd;
use crate::spans;
use crate::tool_binding::ToolBinding;

/// The end of a conversation: the model's answer and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The answer.
    pub message: ChatMessage,
    /// The request's messages, then every turn: tool calls, tool results, the answer.
    pub messages: Vec<ChatMessage>,
    /// Tokens used over all turns.
    pub usage: Usage,
}

/// What a tool call left in the journal: its result or the error the model was shown.
#[derive(Debug, Serialize, Deserialize)]
struct ToolOutcome {
    content: Value,
    #[serde(default)]
    is_error: bool,
}

/// Calls made on one branch of the journal, on behalf of one action.
pub(crate) struct Turn<'t> {
    pub(crate) core: &'t AgentCore,
    pub(crate) calls: &'t Branch<'t>,
    pub(crate) action: &'t str,
    pub(crate) key: &'t str,
    pub(crate) memory: &'t Memory,
    /// Where the calls' spans go, and the span of the action they are made for.
    pub(crate) trace: &'t Trace,
    pub(crate) parent: SpanId,
    /// The model to call instead of the one asked for (the key's budget is spent).
    pub(crate) model_override: Option<&'t str>,
    /// In a shadow run, production's record of the event, which answers the calls it has.
    pub(crate) record: Option<&'t Record>,
}

/// What answered a call that its future ran for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Nothing: the journal did (the call was made in an earlier attempt).
    Journal,
    /// The call was made.
    Made,
    /// Production's record, in a shadow run.
    Record,
    /// A shadow run's policy for tools: `deny`, `dry-run` or `reply`.
    Policy(&'static str),
}

/// Where a call's future records what answered it.
#[derive(Debug, Default)]
struct Answered(std::sync::Mutex<Option<Answer>>);

impl Answered {
    fn set(&self, answer: Answer) {
        *self.0.lock().expect("answered") = Some(answer);
    }

    fn get(&self) -> Answer {
        self.0.lock().expect("answered").unwrap_or(Answer::Journal)
    }
}

impl Answer {
    /// Marks a call's span with what answered it, when not the call itself.
    fn mark(self, end: SpanEnd) -> SpanEnd {
        match self {
            Answer::Made | Answer::Journal => end,
            Answer::Record => end.attribute("weir.from_record", true),
            Answer::Policy(policy) => end.attribute("weir.replay_policy", policy),
        }
    }
}

impl Turn<'_> {
    /// One durable model call.
    pub(crate) async fn model_call(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, AgentError> {
        let model = self.model_override.unwrap_or(model);
        let client = self.core.resources.model(model)?;
        // A replay answers from the record or calls live, never through a provider batch.
        if self.record.is_none()
            && client.batch().is_some()
            && let Some(response) = self.batch_call(model, client.name(), request).await?
        {
            return Ok(response);
        }
        let span = self.trace.start(self.parent, SpanKind::Model, model);
        let answered = Answered::default();
        let started = Instant::now();
        let settings = &self.core.settings;
        let call = async {
            if let Some(record) = self.record.filter(|r| r.policy().models != ModelPolicy::Live) {
                if let Some(reply) = crate::record::model_reply(record, settings, client.name(), request) {
                    answered.set(Answer::Record);
                    return Ok(reply);
                }
                if record.policy().models == ModelPolicy::Record {
                    let message = "the replay answers model calls from the record only, and it has no such call";
                    return Err(ModelError::Config(message.into()));
                }
            }
            answered.set(Answer::Made);
            client.chat(request).await
        };
        let result = self.calls.durable(&format!("model:{model}"), call).await;
        let metrics = &self.core.metrics;
        match result {
            Ok(response) => {
                let answer = answered.get();
                let end = match answer {
                    Answer::Made => CallEnd::Made(started.elapsed(), response.usage),
                    _ => CallEnd::Replayed,
                };
                metrics.model_call(model, self.action, end);
                let replayed = answer == Answer::Journal;
                let end = spans::model_call(settings, client.name(), request, &response, replayed, None);
                self.trace.end(span, answer.mark(end));
                Ok(response)
            }
            Err(error) => {
                metrics.model_call(model, self.action, CallEnd::Failed);
                self.trace.end(span, SpanEnd::failed(&error).attribute("gen_ai.request.model", client.name()));
                Err(AgentError::from_durable(error, |_, source| AgentError::Model { model: model.to_string(), source }))
            }
        }
    }

    /// A model call through the provider's batch API (docs/batch-calls.md): the key waits
    /// until [`tend`](crate::batch) brings the result. `None`: the batch gave no reply (it
    /// failed, expired, or refused this request) or the wait timed out, and the call is to
    /// be made as an ordinary one.
    async fn batch_call(
        &self,
        model: &str,
        provider_model: &str,
        request: &ChatRequest,
    ) -> Result<Option<ChatResponse>, AgentError> {
        // The wait's own idempotency key: the same in every attempt, unique to this call.
        let id = self.calls.next_idempotency_key();
        let held = HeldCall { model: model.to_string(), request: request.clone() };
        let wake = self.calls.wait_holding(MODEL_BATCH_SIGNAL, &id, BATCH_WAIT, held.to_held()).await;
        let answer = match wake {
            Ok(Wake::Signal(payload)) => BatchAnswer::from_signal(&payload),
            Ok(Wake::TimedOut) => Err(format!("no batch result within {} h", BATCH_WAIT.as_secs() / 3600)),
            Err(WaitError::Suspended(what)) => {
                return Err(AgentError::Waiting(format!("model `{model}` waits for {what}")));
            }
            Err(e) => return Err(AgentError::Journal(e.to_string())),
        };
        let (settings, metrics) = (&self.core.settings, &self.core.metrics);
        let span = self.trace.start(self.parent, SpanKind::Model, model);
        match answer {
            Ok(BatchAnswer { response: Some(response), batch, .. }) => {
                metrics.model_call(model, self.action, CallEnd::Made(Duration::ZERO, response.usage));
                let end = spans::model_call(settings, provider_model, request, &response, false, Some(&batch));
                self.trace.end(span, end);
                Ok(Some(response))
            }
            Ok(BatchAnswer { error, batch, .. }) => {
                let why = error.unwrap_or_else(|| "the result has no reply".into());
                Ok(self.fall_back(span, model, &batch, &why))
            }
            Err(why) => Ok(self.fall_back(span, model, "", &why)),
        }
    }

    /// Ends a batch call's span that got no reply; the ordinary call follows.
    fn fall_back(&self, span: SpanId, model: &str, batch: &str, why: &str) -> Option<ChatResponse> {
        tracing::info!(model, batch, reason = why, "batch call not answered: made as an ordinary call");
        let end = SpanEnd::failed(format!("batch call not answered ({why}): made as an ordinary call"))
            .attribute("gen_ai.request.model", model)
            .attribute(BATCH_ATTRIBUTE, true)
            .attribute("weir.batch.id", batch);
        self.trace.end(span, end);
        None
    }

    /// One durable tool call. What the model should hear of a failure (an unknown tool, bad
    /// arguments, the tool's own error, an interrupted at-most-once call) is a result, not
    /// an error: only the journal failing fails the action. `context` is the chat request's
    /// (`Null` for a direct call), which hidden arguments may be filled from.
    pub(crate) async fn tool_call(&self, call: &ToolCall, context: &Value) -> Result<ToolResult, AgentError> {
        let span = self.trace.start(self.parent, SpanKind::Tool, &call.name);
        let answered = Answered::default();
        let result = self.run_tool(call, context, &answered).await;
        let settings = &self.core.settings;
        let end = match &result {
            Ok(result) => {
                let end = match result.is_error {
                    true => SpanEnd::failed(
                        result.content.as_str().map_or_else(|| result.content.to_string(), str::to_string),
                    ),
                    false => SpanEnd::ok(),
                };
                let answer = answered.get();
                answer.mark(spans::tool_result(end, settings, &result.content, answer == Answer::Journal))
            }
            Err(error) => SpanEnd::failed(error),
        };
        self.trace.end(span, spans::tool_call(end, settings, call));
        result
    }

    /// [`tool_call`](Self::tool_call) but for its span; `answered` says what answered it
    /// (nothing when the journal did).
    async fn run_tool(&self, call: &ToolCall, context: &Value, answered: &Answered) -> Result<ToolResult, AgentError> {
        let result = |content: Value, is_error| ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            is_error,
        };
        let error = |message: String| result(Value::String(message), true);
        let Ok(binding) = self.core.resources.tool(&call.name) else {
            return Ok(error(format!("there is no tool named `{}`", call.name)));
        };
        let arguments = match binding.arguments(
            call.arguments.clone(),
            self.key,
            &self.core.resources.config,
            self.memory,
            context,
        ) {
            Ok(arguments) => arguments,
            Err(e) => return Ok(error(e.message)),
        };
        // A replay answers the call from the record or its policy, without effect, so nobody
        // is asked to approve it; a tool the replay is allowed to call is approved as ever.
        let without_effect = self.record.is_some_and(|record| {
            crate::record::tool_policy(record, &call.name, binding.tool().read_only()) != ToolPolicy::Allow
        });
        if !without_effect && let Some(denied) = self.approved(binding, call, &arguments).await? {
            return Ok(error(denied));
        }
        let tool = binding.tool();
        let mode = if tool.at_most_once() { CallMode::AtMostOnce } else { CallMode::AtLeastOnce };
        let started = Instant::now();
        let (record, settings) = (self.record, &self.core.settings);
        let outcome = self
            .calls
            .durable_call(&format!("tool:{}", call.name), mode, move |idempotency_key| async move {
                if let Some(record) = record {
                    if let Some((content, is_error)) = crate::record::tool_result(record, settings, call) {
                        answered.set(Answer::Record);
                        return Ok(ToolOutcome { content, is_error });
                    }
                    let (answer, outcome) = match crate::record::tool_policy(record, &call.name, tool.read_only()) {
                        ToolPolicy::Allow => (Answer::Made, None),
                        ToolPolicy::Deny => {
                            let message = format!("the tool `{}` is not available in a replay", call.name);
                            (Answer::Policy("deny"), Some(ToolOutcome { content: message.into(), is_error: true }))
                        }
                        ToolPolicy::DryRun => {
                            let content =
                                serde_json::json!({"dry_run": true, "tool": call.name, "arguments": call.arguments});
                            (Answer::Policy("dry-run"), Some(ToolOutcome { content, is_error: false }))
                        }
                        ToolPolicy::Reply(content) => {
                            (Answer::Policy("reply"), Some(ToolOutcome { content, is_error: false }))
                        }
                    };
                    answered.set(answer);
                    if let Some(outcome) = outcome {
                        return Ok(outcome);
                    }
                }
                answered.set(Answer::Made);
                match tool.call(arguments, &idempotency_key).await {
                    Ok(content) => Ok(ToolOutcome { content, is_error: false }),
                    // Not journaled: the event waits for the tool, then calls it again.
                    Err(e) if e.is_unavailable() => Err(e),
                    Err(e) => Ok(ToolOutcome { content: Value::String(e.message), is_error: true }),
                }
            })
            .await;
        let metrics = &self.core.metrics;
        match outcome {
            Ok(outcome) => {
                let made = answered.get() == Answer::Made;
                let end = match (made, outcome.is_error) {
                    (false, _) => CallEnd::Replayed,
                    (true, false) => CallEnd::Made(started.elapsed(), Usage::default()),
                    (true, true) => CallEnd::Failed,
                };
                metrics.tool_call(&call.name, end);
                Ok(result(outcome.content, outcome.is_error))
            }
            Err(DurableError::Interrupted { .. }) => Ok(error(format!(
                "the call to `{}` was interrupted before its result was recorded and is not repeated: \
                 it may or may not have taken effect",
                call.name
            ))),
            Err(e) => {
                metrics.tool_call(&call.name, CallEnd::Failed);
                Err(AgentError::from_durable(e, |_, down| {
                    AgentError::Unavailable(format!("tool `{}`: {down}", call.name))
                }))
            }
        }
    }

    /// Waits for approval if the binding needs it for these arguments. `Some(why)`: the
    /// call must not run, and the model hears why.
    async fn approved(
        &self,
        binding: &ToolBinding,
        call: &ToolCall,
        arguments: &Value,
    ) -> Result<Option<String>, AgentError> {
        let Some(approval) = binding.approval() else { return Ok(None) };
        let Some(reason) = approval.reason(arguments) else { return Ok(None) };
        // The wait's own idempotency key: the same in every attempt, unique to this call.
        let id = self.calls.next_idempotency_key();
        let request = ApprovalRequest {
            id: id.clone(),
            key: self.key.to_string(),
            tool: call.name.clone(),
            arguments: arguments.clone(),
            reason,
        };
        let wake = self.calls.wait_with_notice(APPROVAL_SIGNAL, &id, approval.wait(), request.to_output()).await;
        let (decision, by, why) = match wake {
            Ok(Wake::Signal(payload)) => match ApprovalAnswer::from_signal(&payload) {
                Ok(answer) => (answer.decision, answer.by, answer.reason),
                Err(unreadable) => (Decision::Deny, None, Some(unreadable)),
            },
            Ok(Wake::TimedOut) => {
                let waited = format!("no answer within {} s", approval.wait().as_secs());
                (approval.default_decision(), None, Some(waited))
            }
            Err(WaitError::Suspended(what)) => {
                return Err(AgentError::Waiting(format!("tool `{}` waits for {what}", call.name)));
            }
            Err(e) => return Err(AgentError::Journal(e.to_string())),
        };
        Ok(match decision {
            Decision::Approve => None,
            Decision::Deny => Some(format!(
                "the call to `{}` was denied{}{}: it did not run",
                call.name,
                by.map(|by| format!(" by {by}")).unwrap_or_default(),
                why.map(|why| format!(" ({why})")).unwrap_or_default(),
            )),
        })
    }

    /// Asks the model, runs the tools it calls (concurrently, each durable), feeds the
    /// results back, until it answers or the step limit is reached.
    pub(crate) async fn converse(&self, request: &ChatRequestEvent) -> Result<Conversation, AgentError> {
        let tools = request
            .tools
            .iter()
            .map(|name| match self.core.resources.tool(name) {
                Ok(binding) => Ok(binding.spec().clone()),
                Err(_) => Err(AgentError::ToolNotAllowed(name.clone())),
            })
            .collect::<Result<Vec<ToolSpec>, _>>()?;
        let mut turn =
            ChatRequest { messages: request.messages.clone(), tools, output_schema: request.output_schema.clone() };
        let mut usage = Usage::default();
        let max_steps = self.core.settings.max_chat_steps;
        for _ in 0..max_steps {
            let response = self.model_call(&request.model, &turn).await?;
            usage.input_tokens += response.usage.input_tokens;
            usage.output_tokens += response.usage.output_tokens;
            let message = response.message;
            turn.messages.push(message.clone());
            if message.tool_calls.is_empty() {
                return Ok(Conversation { message, messages: turn.messages, usage });
            }
            let results =
                futures::future::join_all(message.tool_calls.iter().map(|call| self.allowed_tool_call(request, call)))
                    .await;
            for result in results {
                let result = result?;
                let content = match result.content {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                turn.messages.push(ChatMessage::tool_result(result.call_id, content, result.is_error));
            }
        }
        Err(AgentError::StepLimit { model: request.model.clone(), steps: max_steps })
    }

    async fn allowed_tool_call(&self, request: &ChatRequestEvent, call: &ToolCall) -> Result<ToolResult, AgentError> {
        if !request.tools.contains(&call.name) {
            let message = format!("there is no tool named `{}` in this conversation", call.name);
            return Ok(ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                content: message.into(),
                is_error: true,
            });
        }
        self.tool_call(call, &request.context).await
    }
}
