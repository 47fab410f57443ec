//! Checking a model's reply against an output schema.

use serde_json::Value;
use weir_models::OutputSchema;

use crate::error::AgentError;

/// Parses a model's reply as JSON and checks it against a JSON Schema, saying what is wrong
/// in words the model can act on.
///
/// ```
/// use serde_json::json;
/// use weir_agent::OutputValidator;
/// use weir_models::OutputSchema;
///
/// let schema = json!({"type": "object", "properties": {"score": {"type": "integer", "maximum": 5}}, "required": ["score"]});
/// let validator = OutputValidator::new(&OutputSchema::new("score", schema))?;
/// assert_eq!(validator.check("```json\n{\"score\": 4}\n```").unwrap(), json!({"score": 4}));
/// assert!(validator.check(r#"{"score": 9}"#).unwrap_err().contains("at `/score`"));
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
#[derive(Debug)]
pub struct OutputValidator {
    schema: OutputSchema,
    validator: jsonschema::Validator,
}

/// The JSON Schema of `T` (derived with `schemars`, doc comments included as descriptions),
/// named `name` as providers require.
pub fn schema_of<T: schemars::JsonSchema>(name: &str) -> OutputSchema {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    OutputSchema::new(name, schema)
}

impl OutputValidator {
    /// A validator for `schema`; an invalid schema is an error naming it.
    pub fn new(schema: &OutputSchema) -> Result<Self, AgentError> {
        let validator = jsonschema::validator_for(&schema.schema)
            .map_err(|e| AgentError::Other(format!("invalid output schema `{}`: {e}", schema.name)))?;
        Ok(OutputValidator { schema: schema.clone(), validator })
    }

    /// A validator for the schema of `T`, named `name`: build it once per agent, not per
    /// event, as compiling a schema costs far more than checking a reply.
    pub fn of<T: schemars::JsonSchema>(name: &str) -> Result<Self, AgentError> {
        Self::new(&schema_of::<T>(name))
    }

    /// The schema it checks against, for the chat request.
    pub fn schema(&self) -> &OutputSchema {
        &self.schema
    }

    /// The reply as JSON if it parses (bare, fenced, or embedded in prose) and matches the
    /// schema; otherwise what is wrong with it.
    pub fn check(&self, reply: &str) -> Result<Value, String> {
        let value = parse_reply(reply).map_err(|e| format!("it is not JSON: {e}"))?;
        let errors: Vec<String> =
            self.validator.iter_errors(&value).map(|e| format!("at `{}`: {e}", e.instance_path())).collect();
        match errors.is_empty() {
            true => Ok(value),
            false => Err(format!("it does not match the schema: {}", errors.join("; "))),
        }
    }
}

/// Parses a reply as JSON: as it is, inside a code fence, or the outermost object or array
/// in the text.
fn parse_reply(reply: &str) -> Result<Value, serde_json::Error> {
    let trimmed = reply.trim();
    let first_error = match serde_json::from_str(trimmed) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(fenced) = trimmed.strip_prefix("```") {
        let body = fenced.split_once('\n').map_or("", |(_, body)| body);
        let body = body.trim_end().strip_suffix("```").unwrap_or(body);
        if let Ok(value) = serde_json::from_str(body.trim()) {
            return Ok(value);
        }
    }
    let (start, end) = (trimmed.find(['{', '[']), trimmed.rfind(['}', ']']));
    if let (Some(start), Some(end)) = (start, end)
        && let Some(Ok(value)) = (start < end).then(|| serde_json::from_str(&trimmed[start..=end]))
    {
        return Ok(value);
    }
    Err(first_error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn replies_parse_bare_fenced_or_embedded() {
        assert_eq!(parse_reply(r#" {"a": 1} "#).unwrap(), json!({"a": 1}));
        assert_eq!(parse_reply("```json\n{\"a\": 1}\n```").unwrap(), json!({"a": 1}));
        assert_eq!(parse_reply("```\n[1, 2]\n```").unwrap(), json!([1, 2]));
        assert_eq!(parse_reply("Sure! Here it is: {\"a\": 1} Hope it helps.").unwrap(), json!({"a": 1}));
        assert!(parse_reply("I cannot score this.").is_err());
    }
}
