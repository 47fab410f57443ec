//! Incoming records: JSON objects whose key sits at a JSON pointer; the whole record is the
//! payload.
//!
//! ```
//! use weir_functions::records::RecordParser;
//! let parser = RecordParser::new("/user/id");
//! let events = parser.parse_body(br#"[{"user": {"id": "u1"}, "n": 1}, {"user": {"id": 7}}]"#).unwrap();
//! assert_eq!((events[0].key.as_str(), events[1].key.as_str()), ("u1", "7"));
//!
//! let refused = parser.parse_body(b"{\"user\": {\"id\": \"u1\"}}\n{\"user\": {}}\n").unwrap_err();
//! assert_eq!(refused.record, "line 2");
//! ```

use serde_json::Value;
use weir_engine::LogEvent;

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

    /// The event of one record: a JSON object with a string or integer key.
    pub fn event(&self, record: &Value) -> Result<LogEvent, String> {
        if !record.is_object() {
            return Err("not a JSON object".into());
        }
        let key = match record.pointer(&self.key_field) {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return Err(format!("no non-empty string or integer key at `{}`", self.key_field)),
        };
        Ok(LogEvent::json(key, record))
    }

    /// The events of a body holding one JSON object, a JSON array of objects, or JSON
    /// lines; the first bad record refuses the whole body.
    pub fn parse_body(&self, body: &[u8]) -> Result<Vec<LogEvent>, RefusedRecord> {
        let text = std::str::from_utf8(body).map_err(|e| refused("the body", format!("not UTF-8: {e}")))?;
        match serde_json::from_str::<Value>(text) {
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

    /// The events of JSON lines, and the lines refused; blank lines are skipped.
    pub fn parse_lines(&self, text: &str) -> (Vec<LogEvent>, Vec<RefusedRecord>) {
        let (mut events, mut refusals) = (Vec::new(), Vec::new());
        for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            let parsed = serde_json::from_str::<Value>(line).map_err(|e| format!("not JSON: {e}"));
            match parsed.and_then(|record| self.event(&record)) {
                Ok(event) => events.push(event),
                Err(reason) => refusals.push(refused(format!("line {}", n + 1), reason)),
            }
        }
        (events, refusals)
    }
}

fn refused(record: impl Into<String>, reason: impl Into<String>) -> RefusedRecord {
    RefusedRecord { record: record.into(), reason: reason.into() }
}
