//! A shadow run's calls answered from production's record of the same input event
//! (`docs/replay.md`): a model call by the same provider model with the same messages, a tool
//! call of the same tool with the same arguments, each recorded call answering once.

use serde_json::Value;
use weir_engine::{Record, Span, SpanKind, ToolPolicy};
use weir_models::{ChatMessage, ChatRequest, ChatResponse, ToolCall, Usage};

use crate::agent::AgentSettings;
use crate::spans;

/// What production's model `model` replied to `request`, if the record has that call.
pub(crate) fn model_reply(
    record: &Record,
    settings: &AgentSettings,
    model: &str,
    request: &ChatRequest,
) -> Option<ChatResponse> {
    let messages = spans::recorded(settings, &request.messages)?;
    let span = record.take(|span| {
        span.kind == SpanKind::Model
            && span.error.is_none()
            && span.attributes.get("gen_ai.request.model").and_then(Value::as_str) == Some(model)
            && span.attributes.get("gen_ai.input.messages") == Some(&messages)
    })?;
    let replied = span.attributes.get("gen_ai.output.messages")?.get(0)?.clone();
    let message: ChatMessage = serde_json::from_value(replied).ok()?;
    let usage = span
        .usage
        .as_ref()
        .map_or_else(Usage::default, |u| Usage { input_tokens: u.input_tokens, output_tokens: u.output_tokens });
    Some(ChatResponse { message, usage, model: model.to_string(), stop_reason: Default::default() })
}

/// What production's call of the same tool with the same arguments returned, and whether it
/// was an error, if the record has that call.
pub(crate) fn tool_result(record: &Record, settings: &AgentSettings, call: &ToolCall) -> Option<(Value, bool)> {
    let arguments = spans::recorded(settings, &call.arguments)?;
    let span: Span = record.take(|span| {
        span.kind == SpanKind::Tool
            && span.name == call.name
            && span.attributes.get("gen_ai.tool.call.arguments") == Some(&arguments)
            && span.attributes.contains_key("gen_ai.tool.call.result")
    })?;
    let result = span.attributes.get("gen_ai.tool.call.result")?.clone();
    Some((result, span.error.is_some()))
}

/// What answers a call of tool `name` that the record lacks: as the policy names it, else
/// the call itself for a read-only tool and a refusal for any other.
pub(crate) fn tool_policy(record: &Record, name: &str, read_only: bool) -> ToolPolicy {
    match record.policy().tools.get(name) {
        Some(policy) => policy.clone(),
        None if read_only => ToolPolicy::Allow,
        None => ToolPolicy::Deny,
    }
}
