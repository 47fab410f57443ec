//! Incoming records: JSON objects whose key sits at a JSON pointer; the whole record is the
//! payload. A record naming one field twice is refused: JSON parsers disagree on which of the
//! two counts (serde_json keeps the last, others the first), so its key and content would be
//! a guess.
//!
//! ```
//! use weir_engine::records::RecordParser;
//! let parser = RecordParser::new("/user/id");
//! let events = parser.parse_body(br#"[{"user": {"id": "u1"}, "n": 1}, {"user": {"id": 7}}]"#).unwrap();
//! assert_eq!((events[0].key.as_str(), events[1].key.as_str()), ("u1", "7"));
//!
//! let refused = parser.parse_body(b"{\"user\": {\"id\": \"u1\"}}\n{\"user\": {}}\n").unwrap_err();
//! assert_eq!(refused.record, "line 2");
//! ```

use std::fmt;

use crate::log::LogEvent;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A record that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    /// Which record: `the body`, `element 3` (of an array, from 0) or `line 4` (from 1).
    pub record: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for RefusedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.record, self.reason)
    }
}

/// Turns records into log events, taking each one's key from a JSON pointer.
#[derive(Debug, Clone)]
pub struct RecordParser {
    key_field: String,
}

impl RecordParser {
    /// A parser taking keys from `key_field`, a JSON pointer such as `/key`.
    pub fn new(key_field: impl Into<String>) -> Self {
        RecordParser { key_field: key_field.into() }
    }

    /// The event of one record: a JSON object with a non-empty string or a 64-bit integer key.
    pub fn event(&self, record: &Value) -> Result<LogEvent, String> {
        if !record.is_object() {
            return Err(format!("{}, not a JSON object", kind_of(record)));
        }
        let field = &self.key_field;
        let key = match record.pointer(field) {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            None => return Err(format!("no key at `{field}`")),
            Some(Value::Number(n)) => {
                return Err(format!("the key at `{field}` is {n}, not a string or an integer of 64 bits"));
            }
            Some(other) => {
                let kind = if other.as_str() == Some("") { "an empty string" } else { kind_of(other) };
                return Err(format!("the key at `{field}` is {kind}, not a non-empty string or an integer"));
            }
        };
        Ok(LogEvent::json(key, record))
    }

    /// The events of a body holding one JSON object, a JSON array of objects, or JSON
    /// lines; the first bad record refuses the whole body.
    pub fn parse_body(&self, body: &[u8]) -> Result<Vec<LogEvent>, RefusedRecord> {
        let text = std::str::from_utf8(body).map_err(|e| refused("the body", format!("not UTF-8: {e}")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match parse_record(text) {
            Ok(Value::Array(records)) => records
                .iter()
                .enumerate()
                .map(|(i, record)| self.event(record).map_err(|reason| refused(format!("element {i}"), reason)))
                .collect(),
            Ok(record) => Ok(vec![self.event(&record).map_err(|reason| refused("the body", reason))?]),
            // Not one JSON value: JSON lines, or broken.
            Err(_) => {
                let (events, mut refusals) = self.parse_lines(text);
                match refusals.is_empty() {
                    true if !events.is_empty() => Ok(events),
                    true => Err(refused("the body", "empty")),
                    false => Err(refusals.swap_remove(0)),
                }
            }
        }
    }

    /// The events of JSON lines, and the lines refused; a byte-order mark at the start and
    /// blank lines are skipped.
    pub fn parse_lines(&self, text: &str) -> (Vec<LogEvent>, Vec<RefusedRecord>) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (mut events, mut refusals) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            match parse_record(line).and_then(|record| self.event(&record)) {
                Ok(event) => events.push(event),
                Err(reason) => refusals.push(refused(format!("line {}", n + 1), reason)),
            }
        }
        (events, refusals)
    }
}

/// One record's JSON, refusing a field named twice in an object; the reason names the
/// column (a record is one line, so serde_json's "line 1" would mislead).
pub fn parse_record(text: &str) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = UniqueFields.deserialize(&mut deserializer).and_then(|value| deserializer.end().map(|()| value));
    value.map_err(|e| {
        let at = format!("at column {}", e.column());
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        match e.classify() {
            serde_json::error::Category::Data => format!("{message} {at}"),
            _ if message == "recursion limit exceeded" => {
                format!("not JSON: arrays or objects nested more than 128 deep {at}")
            }
            _ => format!("not JSON: {message} {at}"),
        }
    })
}

/// What a JSON value is, for reasons: `an array`, `null`.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds a [`Value`] as serde_json does, but refuses an object naming a field twice.
struct UniqueFields;

impl<'de> DeserializeSeed<'de> for UniqueFields {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueFields {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(UniqueFields)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(field) = map.next_key::<String>()? {
            if object.contains_key(&field) {
                return Err(A::Error::custom(format!("field `{field}` appears twice in an object")));
            }
            let value = map.next_value_seed(UniqueFields)?;
            object.insert(field, value);
        }
        Ok(Value::Object(object))
    }
}

fn refused(record: impl Into<String>, reason: impl Into<String>) -> RefusedRecord {
    RefusedRecord { record: record.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_refused_with_the_column_and_what_is_wrong() {
        assert_eq!(
            parse_record(r#"{"a": 1, "a": 2}"#).unwrap_err(),
            "field `a` appears twice in an object at column 12"
        );
        assert_eq!(
            parse_record(r#"{"a": {"b": 1, "b": 1}}"#).unwrap_err(),
            "field `b` appears twice in an object at column 18",
            "in nested objects too"
        );
        let bomb = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert_eq!(
            parse_record(&bomb).unwrap_err(),
            "not JSON: arrays or objects nested more than 128 deep at column 128"
        );
        assert_eq!(parse_record(r#"{"n": 1e400}"#).unwrap_err(), "not JSON: number out of range at column 11");
        assert_eq!(parse_record(r#"{"a": 1} {"#).unwrap_err(), "not JSON: trailing characters at column 10");
        let record = parse_record(r#"{"a": [1, -2, 2.5, "x", null, true], "b": {"c": {}}}"#).unwrap();
        assert_eq!(record, serde_json::json!({"a": [1, -2, 2.5, "x", null, true], "b": {"c": {}}}));
    }

    #[test]
    fn a_key_is_a_non_empty_string_or_a_64_bit_integer() {
        let parser = RecordParser::new("/id");
        let key = |record: &str| parser.event(&serde_json::from_str(record).unwrap()).map(|e| e.key);
        assert_eq!(key(r#"{"id": "a"}"#).unwrap(), "a");
        assert_eq!(key(r#"{"id": -7}"#).unwrap(), "-7");
        assert_eq!(key(r#"{"id": 18446744073709551615}"#).unwrap(), "18446744073709551615");
        assert_eq!(
            key(r#"{"id": 1.5}"#).unwrap_err(),
            "the key at `/id` is 1.5, not a string or an integer of 64 bits"
        );
        assert_eq!(
            key(r#"{"id": null}"#).unwrap_err(),
            "the key at `/id` is null, not a non-empty string or an integer"
        );
        assert_eq!(key(r#"{"di": 1}"#).unwrap_err(), "no key at `/id`");
        assert_eq!(key("[1]").unwrap_err(), "an array, not a JSON object");
    }
}
