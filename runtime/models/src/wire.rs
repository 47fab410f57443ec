//! Rules every provider's wire format follows the same way, and the pieces two of them share.

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::chat::{EmbeddingOptions, StopReason};
use crate::message::{ChatMessage, ToolCall, ToolSpec};

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

/// A request body as the provider gets it: `body` with the options' `extra` merged into it
/// (see [`merge_extra`]). Only a body with extra fields is copied into a JSON tree first.
#[derive(Debug)]
pub(crate) struct WithExtra<'e, B> {
    body: B,
    extra: &'e Map<String, Value>,
}

impl<'e, B: Serialize> WithExtra<'e, B> {
    pub(crate) fn new(body: B, extra: &'e Map<String, Value>) -> Self {
        WithExtra { body, extra }
    }
}

impl<B: Serialize> Serialize for WithExtra<'_, B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.extra.is_empty() {
            return self.body.serialize(serializer);
        }
        let mut body = serde_json::to_value(&self.body).map_err(S::Error::custom)?;
        if let Value::Object(fields) = &mut body {
            merge_extra(fields, self.extra);
        }
        body.serialize(serializer)
    }
}

/// The body both embedding APIs take: `model`, `input`, and `dimensions` if set.
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddingBody<'r> {
    model: &'r str,
    input: &'r [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding_format: Option<&'static str>,
}

impl<'r> EmbeddingBody<'r> {
    /// The request for `texts` of the model `options` names, asking for `encoding_format` if
    /// given; the options' `extra` is not in it (see [`WithExtra`]).
    pub(crate) fn new(
        options: &'r EmbeddingOptions,
        texts: &'r [String],
        encoding_format: Option<&'static str>,
    ) -> Self {
        EmbeddingBody { model: &options.model, input: texts, dimensions: options.dimensions, encoding_format }
    }
}

/// A tool as OpenAI's Chat Completions and Ollama's chat API take it:
/// `{type: function, function: {name, description, parameters}}`.
#[derive(Debug, Serialize)]
pub(crate) struct FunctionTool<'r> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionSpec<'r>,
}

#[derive(Debug, Serialize)]
struct FunctionSpec<'r> {
    name: &'r str,
    description: &'r str,
    parameters: &'r Value,
}

impl<'r> FunctionTool<'r> {
    pub(crate) fn new(tool: &'r ToolSpec) -> Self {
        FunctionTool {
            kind: "function",
            function: FunctionSpec { name: &tool.name, description: &tool.description, parameters: &tool.parameters },
        }
    }
}

/// A tool result's text for providers with no error flag on the wire (OpenAI, Ollama): a
/// failure says so in words, as [`ChatMessage::is_error`] promises the model is told.
pub(crate) fn tool_result_text(message: &ChatMessage) -> String {
    if message.is_error { format!("Error: {}", message.content) } else { message.content.clone() }
}

/// The call `id` of tool `name` with the `arguments` a reply gave it, which must come to a JSON
/// object: absent, null or an empty string is no arguments, and a string (OpenAI's wire, and
/// Ollama-compatible servers that copy it) is parsed. `Err` says what was wrong, for
/// a malformed-reply error.
pub(crate) fn tool_call(id: String, name: String, arguments: Value) -> Result<ToolCall, String> {
    let arguments = match arguments {
        Value::Null => Value::Object(Map::new()),
        Value::String(text) if text.trim().is_empty() => Value::Object(Map::new()),
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|error| format!("the arguments of tool call `{name}` are not JSON: {error}"))?,
        arguments => arguments,
    };
    let kind = match &arguments {
        Value::Object(_) => return Ok(ToolCall { id, name, arguments }),
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(format!("the arguments of tool call `{name}` are {kind}, not a JSON object"))
}

/// A reply that asks for tools wants them called, whatever a compatible server says about why it
/// stopped.
pub(crate) fn stop_reason(reported: StopReason, tool_calls: &[ToolCall]) -> StopReason {
    if !tool_calls.is_empty() && reported == StopReason::EndTurn { StopReason::ToolUse } else { reported }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn extra_merges_objects_and_replaces_the_rest() {
        let mut body = json!({"model": "m", "options": {"temperature": 0.5}}).as_object().unwrap().clone();
        let extra = json!({"options": {"num_ctx": 8192}, "model": "n", "keep_alive": "5m"});
        merge_extra(&mut body, extra.as_object().unwrap());
        let expected = json!({"model": "n", "options": {"temperature": 0.5, "num_ctx": 8192}, "keep_alive": "5m"});
        assert_eq!(Value::Object(body), expected);
    }

    #[test]
    fn tool_arguments_must_come_to_an_object() {
        let call = |arguments: Value| tool_call("c".into(), "lookup".into(), arguments).map(|call| call.arguments);
        assert_eq!(call(json!({"q": 1})), Ok(json!({"q": 1})));
        assert_eq!(call(json!(r#"{"q": 1}"#)), Ok(json!({"q": 1})));
        assert_eq!(call(Value::Null), Ok(json!({})));
        assert_eq!(call(json!(" ")), Ok(json!({})));
        let not_json = call(json!(r#"{"q": "#)).unwrap_err();
        assert!(not_json.starts_with("the arguments of tool call `lookup` are not JSON"), "{not_json}");
        assert_eq!(
            call(json!([1])).unwrap_err(),
            "the arguments of tool call `lookup` are an array, not a JSON object"
        );
        assert_eq!(
            call(json!("7")).unwrap_err(),
            "the arguments of tool call `lookup` are a number, not a JSON object"
        );
    }
}
