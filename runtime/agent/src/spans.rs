//! What an agent's spans in the trace say: the OpenTelemetry GenAI attributes of model and
//! tool calls, their content as the trace settings allow, and what a call cost.

use serde::Serialize;
use serde_json::Value;
use weir_engine::{ModelUsage, SpanEnd};
use weir_models::{ChatRequest, ChatResponse, ToolCall};

use crate::agent::AgentSettings;
use crate::batch::BATCH_ATTRIBUTE;

/// What a value is recorded as where a redacted field held it.
const REDACTED: &str = "[redacted]";

/// How a model call's span ends.
pub(crate) fn model_call(
    settings: &AgentSettings,
    model: &str,
    request: &ChatRequest,
    response: &ChatResponse,
    replayed: bool,
    batch: Option<&str>,
) -> SpanEnd {
    // A call through the provider's batch API costs the batch price.
    let price = settings.prices.get(model).map(|price| if batch.is_some() { price.batch() } else { *price });
    let cost = price.map(|price| price.cost(response.usage));
    let usage = ModelUsage {
        model: model.to_string(),
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
        cost,
    };
    let end = SpanEnd::ok()
        .usage(usage)
        .attribute("gen_ai.operation.name", "chat")
        .attribute("gen_ai.request.model", model)
        .attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
        .attribute("gen_ai.usage.output_tokens", response.usage.output_tokens);
    let end = replayed_if(end, replayed);
    let end = match batch {
        Some(id) => end.attribute(BATCH_ATTRIBUTE, true).attribute("weir.batch.id", id),
        None => end,
    };
    with_content(
        end,
        settings,
        [
            ("gen_ai.input.messages", content(&request.messages)),
            ("gen_ai.output.messages", content(&[&response.message])),
        ],
    )
}

/// The attributes every tool call's span has, however it ends.
pub(crate) fn tool_call(end: SpanEnd, settings: &AgentSettings, call: &ToolCall) -> SpanEnd {
    let end = end
        .attribute("gen_ai.operation.name", "execute_tool")
        .attribute("gen_ai.tool.name", call.name.as_str())
        .attribute("gen_ai.tool.call.id", call.id.as_str());
    // The model's arguments: the hidden ones an agent fills in may hold credentials.
    with_content(end, settings, [("gen_ai.tool.call.arguments", call.arguments.clone())])
}

/// A tool call's result, as the model is told it.
pub(crate) fn tool_result(end: SpanEnd, settings: &AgentSettings, result: &Value, replayed: bool) -> SpanEnd {
    with_content(replayed_if(end, replayed), settings, [("gen_ai.tool.call.result", result.clone())])
}

/// A retrieval's query and what it found.
pub(crate) fn retrieval(end: SpanEnd, settings: &AgentSettings, query: &str, found: Option<Value>) -> SpanEnd {
    let end = end.attribute("gen_ai.operation.name", "retrieval");
    let mut content = vec![("weir.retrieval.query", Value::String(query.to_string()))];
    content.extend(found.map(|found| ("weir.retrieval.documents", found)));
    with_content(end, settings, content)
}

fn replayed_if(end: SpanEnd, replayed: bool) -> SpanEnd {
    match replayed {
        true => end.attribute("weir.replayed", true),
        false => end,
    }
}

fn content(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `value` as the trace records it under `settings` (redacted); `None` when content is not
/// recorded. What a shadow run compares with production's record.
pub(crate) fn recorded(settings: &AgentSettings, value: &impl Serialize) -> Option<Value> {
    let mut value = content(value);
    redact(&mut value, &settings.trace.redact);
    settings.trace.content.then_some(value)
}

/// Adds content attributes, redacted, when the settings record content.
fn with_content<'a>(
    mut end: SpanEnd,
    settings: &AgentSettings,
    attributes: impl IntoIterator<Item = (&'a str, Value)>,
) -> SpanEnd {
    if !settings.trace.content {
        return end;
    }
    for (name, mut value) in attributes {
        redact(&mut value, &settings.trace.redact);
        end = end.attribute(name, value);
    }
    end
}

/// Replaces the values of `fields` wherever they occur in `value`, and in JSON held as text
/// (a tool's arguments as a model sends them, a message's content).
fn redact(value: &mut Value, fields: &[String]) {
    if fields.is_empty() {
        return;
    }
    match value {
        Value::Object(object) => {
            for (name, inner) in object.iter_mut() {
                match fields.iter().any(|field| field == name) {
                    true => *inner = Value::String(REDACTED.into()),
                    false => redact(inner, fields),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, fields)),
        Value::String(text) if text.trim_start().starts_with(['{', '[']) => {
            if let Ok(mut parsed) = serde_json::from_str::<Value>(text) {
                redact(&mut parsed, fields);
                *text = parsed.to_string();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redaction_reaches_nested_fields_and_json_held_as_text() {
        let mut value = json!({
            "card_number": "4111",
            "items": [{"card_number": "5500", "amount": 3}],
            "arguments": "{\"card_number\": \"3700\", \"reason\": \"x\"}",
        });
        redact(&mut value, &["card_number".to_string()]);
        let text = value.to_string();
        assert!(!text.contains("4111") && !text.contains("5500") && !text.contains("3700"), "{text}");
        assert_eq!(value["items"][0]["amount"], 3);
    }

    #[test]
    fn content_is_left_out_when_the_settings_say_so() {
        let mut settings = AgentSettings::default();
        settings.trace.content = false;
        let call = ToolCall { id: "c1".into(), name: "hold".into(), arguments: json!({"card": "4111"}) };
        let end = tool_call(SpanEnd::ok(), &settings, &call);
        assert_eq!(end.attributes["gen_ai.tool.name"], "hold");
        assert!(!end.attributes.contains_key("gen_ai.tool.call.arguments"));
    }
}
