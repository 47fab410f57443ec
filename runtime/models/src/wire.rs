//! Rules every provider's wire format follows the same way.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::chat::{EmbeddingOptions, StopReason};
use crate::message::{ChatMessage, ToolCall};

/// Merges `extra` into `body`, objects recursively, so that `extra: {options: {num_ctx: 8192}}`
/// adds to Ollama's `options` rather than replacing them; any other value of `extra` wins.
pub(crate) fn merge_extra(body: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (name, value) in extra {
        match (body.get_mut(name), value) {
            (Some(Value::Object(inner)), Value::Object(extra_inner)) => merge_extra(inner, extra_inner),
            _ => {
                body.insert(name.clone(), value.clone());
            }
        }
    }
}

/// A request body as the provider gets it: the body itself when there is no `extra`, else
/// its JSON with `extra` merged (see [`merge_extra`]).
#[derive(Debug)]
pub(crate) enum WithExtra<B> {
    Plain(B),
    Merged(Value),
}

impl<B: Serialize> Serialize for WithExtra<B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WithExtra::Plain(body) => body.serialize(serializer),
            WithExtra::Merged(body) => body.serialize(serializer),
        }
    }
}

/// `body` with `extra` merged into it; only a body with extra fields is copied into JSON.
pub(crate) fn with_extra<B: Serialize>(body: B, extra: &Map<String, Value>) -> serde_json::Result<WithExtra<B>> {
    if extra.is_empty() {
        return Ok(WithExtra::Plain(body));
    }
    let mut merged = match serde_json::to_value(&body)? {
        Value::Object(map) => map,
        other => return Ok(WithExtra::Merged(other)),
    };
    merge_extra(&mut merged, extra);
    Ok(WithExtra::Merged(Value::Object(merged)))
}

/// The body both embedding APIs take: `model`, `input`, `dimensions` if set, and `extra`.
pub(crate) fn embedding_body(options: &EmbeddingOptions, texts: &[String]) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), json!(options.model));
    body.insert("input".into(), json!(texts));
    if let Some(dimensions) = options.dimensions {
        body.insert("dimensions".into(), json!(dimensions));
    }
    merge_extra(&mut body, &options.extra);
    body
}

/// A tool result's text for providers with no error flag on the wire (OpenAI, Ollama): a
/// failure says so in words, as [`ChatMessage::is_error`] promises the model is told.
pub(crate) fn tool_result_text(message: &ChatMessage) -> String {
    if message.is_error { format!("Error: {}", message.content) } else { message.content.clone() }
}

/// A reply that asks for tools wants them called, whatever a compatible server says about why it
/// stopped.
pub(crate) fn stop_reason(reported: StopReason, tool_calls: &[ToolCall]) -> StopReason {
    if !tool_calls.is_empty() && reported == StopReason::EndTurn { StopReason::ToolUse } else { reported }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_merges_objects_and_replaces_the_rest() {
        let mut body = json!({"model": "m", "options": {"temperature": 0.5}}).as_object().unwrap().clone();
        let extra = json!({"options": {"num_ctx": 8192}, "model": "n", "keep_alive": "5m"});
        merge_extra(&mut body, extra.as_object().unwrap());
        let expected = json!({"model": "n", "options": {"temperature": 0.5, "num_ctx": 8192}, "keep_alive": "5m"});
        assert_eq!(Value::Object(body), expected);
    }
}
