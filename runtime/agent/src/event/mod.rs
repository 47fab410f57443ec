//! Events: what actions react to and send; `builtin`: the events weir's own actions use.

pub(crate) mod builtin;

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::AgentError;

/// An event of a run: a type, JSON attributes, and where it came from.
///
/// Ids are derived from the input's log position and the order events are sent in, so a
/// replayed run gives every event the id it had before.
///
/// A typed event keeps its Rust value: an action that decodes it as the same type gets a
/// copy, with no JSON in between. Its JSON form is made only when asked for, by
/// [`Event::attributes`], by decoding it as another type, or by serializing the event.
#[derive(Clone)]
pub struct Event {
    /// Unique within the agent: `<position>/<n>`.
    pub id: String,
    /// The event type actions subscribe to.
    pub kind: String,
    attributes: Attributes,
    /// The event and action that sent it.
    pub lineage: Lineage,
}

/// Where an event came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The id of the event whose handling sent this one; `None` for the input.
    pub upstream_event: Option<String>,
    /// The action that sent it.
    pub action: Option<String>,
}

/// A typed event: a serde struct with a type name.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weir_agent::EventType;
///
/// /// A review scored by the model.
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Scored {
///     score: u8,
/// }
///
/// impl EventType for Scored {
///     const TYPE: &'static str = "scored";
/// }
/// ```
pub trait EventType: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The type name actions subscribe to.
    const TYPE: &'static str;
}

/// An event's content: JSON, or the typed value it was sent as.
#[derive(Clone)]
enum Attributes {
    Json(Value),
    Typed(Typed),
}

/// A typed event's value, shared by the clones of the event, and how to make its JSON.
#[derive(Clone)]
struct Typed {
    value: Arc<dyn Any + Send + Sync>,
    to_json: fn(&(dyn Any + Send + Sync)) -> serde_json::Result<Value>,
}

/// The JSON of a value known to be a `T`.
fn json_of<T: EventType>(value: &(dyn Any + Send + Sync)) -> serde_json::Result<Value> {
    let value = value.downcast_ref::<T>().expect("a typed event's value is of the type it was built with");
    serde_json::to_value(value)
}

impl Event {
    /// An untyped event of type `kind`; its id and lineage are set when it is sent.
    pub fn new(kind: impl Into<String>, attributes: Value) -> Self {
        Event {
            id: String::new(),
            kind: kind.into(),
            attributes: Attributes::Json(attributes),
            lineage: Lineage::default(),
        }
    }

    /// A typed event.
    pub fn typed<T: EventType>(event: T) -> Self {
        let typed = Typed { value: Arc::new(event), to_json: json_of::<T> };
        Event {
            id: String::new(),
            kind: T::TYPE.into(),
            attributes: Attributes::Typed(typed),
            lineage: Lineage::default(),
        }
    }

    /// Whether this is an event of type `T`.
    pub fn is<T: EventType>(&self) -> bool {
        self.kind == T::TYPE
    }

    /// The event's content as JSON; a typed event whose value does not serialize is an
    /// error naming the event.
    pub fn attributes(&self) -> Result<Cow<'_, Value>, AgentError> {
        match &self.attributes {
            Attributes::Json(value) => Ok(Cow::Borrowed(value)),
            Attributes::Typed(typed) => (typed.to_json)(typed.value.as_ref()).map(Cow::Owned).map_err(|e| {
                AgentError::Encode { what: format!("event {} of type `{}`", self.id, self.kind), source: e }
            }),
        }
    }

    /// Decodes the attributes as `T`; an error names the event and the field.
    pub fn decode<T: EventType>(&self) -> Result<T, AgentError> {
        self.view::<T>().map(Cow::into_owned)
    }

    /// The attributes as a `T`: borrowed, with nothing copied, from an event sent as a `T`;
    /// decoded from JSON otherwise. An error names the event and the field.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use serde_json::json;
    /// use weir_agent::{Event, InputEvent};
    ///
    /// let event = Event::typed(InputEvent { key: "p-1".into(), input: json!("great") });
    /// let input = event.view::<InputEvent>()?;
    /// assert!(matches!(input, Cow::Borrowed(_)));
    /// assert_eq!(input.key, "p-1");
    /// # Ok::<(), weir_agent::AgentError>(())
    /// ```
    pub fn view<T: EventType>(&self) -> Result<Cow<'_, T>, AgentError> {
        if self.kind != T::TYPE {
            return Err(AgentError::WrongEventType {
                id: self.id.clone(),
                expected: T::TYPE,
                found: self.kind.clone(),
            });
        }
        if let Attributes::Typed(typed) = &self.attributes
            && let Some(value) = typed.value.downcast_ref::<T>()
        {
            return Ok(Cow::Borrowed(value));
        }
        T::deserialize(self.attributes()?.as_ref())
            .map(Cow::Owned)
            .map_err(|e| AgentError::Decode { what: format!("event {} of type `{}`", self.id, self.kind), source: e })
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Event");
        debug.field("id", &self.id).field("kind", &self.kind);
        match self.attributes() {
            Ok(attributes) => debug.field("attributes", &attributes),
            Err(error) => debug.field("attributes", &error.to_string()),
        };
        debug.field("lineage", &self.lineage).finish()
    }
}

/// Events are equal when their ids, types, lineage and JSON attributes are.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.lineage == other.lineage
            && matches!((self.attributes(), other.attributes()), (Ok(a), Ok(b)) if a == b)
    }
}

/// The event's wire form: `{id, type, attributes, lineage}`.
#[derive(Serialize, Deserialize)]
struct Wire<'e> {
    id: Cow<'e, str>,
    #[serde(rename = "type")]
    kind: Cow<'e, str>,
    attributes: Cow<'e, Value>,
    #[serde(default)]
    lineage: Cow<'e, Lineage>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let attributes = self.attributes().map_err(serde::ser::Error::custom)?;
        let wire = Wire {
            id: Cow::Borrowed(&self.id),
            kind: Cow::Borrowed(&self.kind),
            attributes,
            lineage: Cow::Borrowed(&self.lineage),
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Ok(Event {
            id: wire.id.into_owned(),
            kind: wire.kind.into_owned(),
            attributes: Attributes::Json(wire.attributes.into_owned()),
            lineage: wire.lineage.into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::builtin::{InputEvent, OutputEvent};

    #[test]
    fn a_typed_event_decodes_without_json_and_serializes_like_an_untyped_one() {
        let input = InputEvent { key: "k".into(), input: json!({"text": "hi"}) };
        let typed = Event::typed(input.clone());
        assert_eq!(typed.decode::<InputEvent>().unwrap(), input);
        let untyped = Event::new("input", json!({"key": "k", "input": {"text": "hi"}}));
        assert_eq!(typed, untyped);
        assert_eq!(serde_json::to_value(&typed).unwrap(), serde_json::to_value(&untyped).unwrap());
        let back: Event = serde_json::from_value(serde_json::to_value(&typed).unwrap()).unwrap();
        assert_eq!(back.decode::<InputEvent>().unwrap(), input);
    }

    #[test]
    fn decoding_as_another_type_names_both() {
        let event = Event::typed(OutputEvent { output: json!(1) });
        let error = event.decode::<InputEvent>().unwrap_err().to_string();
        assert!(error.contains("input") && error.contains("output"), "{error}");
    }
}
