//! Durable model and tool calls, and the conversation loop of the built-in chat action.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_engine::{Branch, CallMode, Durable, DurableError, SpanEnd, SpanId, SpanKind, Trace, WaitError, Wake};
use weir_models::{ChatMessage, ChatRequest, ChatResponse, ToolCall, ToolSpec, Usage};

use crate::agent::AgentCore;
use crate::approval::{APPROVAL_SIGNAL, ApprovalAnswer, ApprovalRequest, Decision};
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
}

impl Turn<'_> {
    /// One durable model call.
    pub(crate) async fn model_call(&self, model: &str, request: &ChatRequest) -> Result<ChatResponse, AgentError> {
        let model = self.model_override.unwrap_or(model);
        let client = self.core.resources.model(model)?;
        let span = self.trace.start(self.parent, SpanKind::Model, model);
        let made = AtomicBool::new(false);
        let started = Instant::now();
        let call = async {
            made.store(true, Ordering::Relaxed);
            client.chat(request).await
        };
        let result = self.calls.durable(&format!("model:{model}"), call).await;
        let metrics = &self.core.metrics;
        match result {
            Ok(response) => {
                let made = made.load(Ordering::Relaxed);
                let end = match made {
                    true => CallEnd::Made(started.elapsed(), response.usage),
                    false => CallEnd::Replayed,
                };
                metrics.model_call(model, self.action, end);
                let settings = &self.core.settings;
                self.trace.end(span, spans::model_call(settings, client.name(), request, &response, !made));
                Ok(response)
            }
            Err(error) => {
                metrics.model_call(model, self.action, CallEnd::Failed);
                self.trace.end(span, SpanEnd::failed(&error).attribute("gen_ai.request.model", client.name()));
                Err(AgentError::from_durable(error, |_, source| AgentError::Model { model: model.to_string(), source }))
            }
        }
    }

    /// One durable tool call. What the model should hear of a failure (an unknown tool, bad
    /// arguments, the tool's own error, an interrupted at-most-once call) is a result, not
    /// an error: only the journal failing fails the action.
    pub(crate) async fn tool_call(&self, call: &ToolCall) -> Result<ToolResult, AgentError> {
        let span = self.trace.start(self.parent, SpanKind::Tool, &call.name);
        let replayed = AtomicBool::new(false);
        let result = self.run_tool(call, &replayed).await;
        let settings = &self.core.settings;
        let end = match &result {
            Ok(result) => {
                let end = match result.is_error {
                    true => SpanEnd::failed(
                        result.content.as_str().map_or_else(|| result.content.to_string(), str::to_string),
                    ),
                    false => SpanEnd::ok(),
                };
                spans::tool_result(end, settings, &result.content, replayed.load(Ordering::Relaxed))
            }
            Err(error) => SpanEnd::failed(error),
        };
        self.trace.end(span, spans::tool_call(end, settings, call));
        result
    }

    /// [`tool_call`](Self::tool_call) but for its span; `replayed` is set when the journal
    /// answered it.
    async fn run_tool(&self, call: &ToolCall, replayed: &AtomicBool) -> Result<ToolResult, AgentError> {
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
        let arguments =
            match binding.arguments(call.arguments.clone(), self.key, &self.core.resources.config, self.memory) {
                Ok(arguments) => arguments,
                Err(e) => return Ok(error(e.message)),
            };
        if let Some(denied) = self.approved(binding, call, &arguments).await? {
            return Ok(error(denied));
        }
        let tool = binding.tool();
        let mode = if tool.at_most_once() { CallMode::AtMostOnce } else { CallMode::AtLeastOnce };
        let made = &AtomicBool::new(false);
        let started = Instant::now();
        let outcome = self
            .calls
            .durable_call(&format!("tool:{}", call.name), mode, move |idempotency_key| async move {
                made.store(true, Ordering::Relaxed);
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
                let made = made.load(Ordering::Relaxed);
                replayed.store(!made, Ordering::Relaxed);
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
        self.tool_call(call).await
    }
}
