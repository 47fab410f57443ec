//! Events: what actions react to and send.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AgentError;

/// An event of a run: a type, JSON attributes, and where it came from.
///
/// Ids are derived from the input's log position and the order events are sent in, so a
/// replayed run gives every event the id it had before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique within the agent: `<position>/<n>`.
    pub id: String,
    /// The event type actions subscribe to.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's content.
    pub attributes: Value,
    /// The event and action that sent it.
    #[serde(default)]
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
/// #[derive(Serialize, Deserialize)]
/// struct Scored {
///     score: u8,
/// }
///
/// impl EventType for Scored {
///     const TYPE: &'static str = "scored";
/// }
/// ```
pub trait EventType: Serialize + DeserializeOwned + Send + 'static {
    /// The type name actions subscribe to.
    const TYPE: &'static str;
}

impl Event {
    /// An untyped event of type `kind`; its id and lineage are set when it is sent.
    pub fn new(kind: impl Into<String>, attributes: Value) -> Self {
        Event { id: String::new(), kind: kind.into(), attributes, lineage: Lineage::default() }
    }

    /// A typed event.
    pub fn typed<T: EventType>(event: &T) -> Result<Self, AgentError> {
        let attributes =
            serde_json::to_value(event).map_err(|e| AgentError::Encode { what: T::TYPE.into(), source: e })?;
        Ok(Self::new(T::TYPE, attributes))
    }

    /// Whether this is an event of type `T`.
    pub fn is<T: EventType>(&self) -> bool {
        self.kind == T::TYPE
    }

    /// Decodes the attributes as `T`; an error names the event and the field.
    pub fn decode<T: EventType>(&self) -> Result<T, AgentError> {
        if self.kind != T::TYPE {
            return Err(AgentError::WrongEventType {
                id: self.id.clone(),
                expected: T::TYPE,
                found: self.kind.clone(),
            });
        }
        T::deserialize(&self.attributes)
            .map_err(|e| AgentError::Decode { what: format!("event {} of type `{}`", self.id, self.kind), source: e })
    }
}
