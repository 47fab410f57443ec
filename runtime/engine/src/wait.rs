//! Durable waits: keys suspended until a signal or a time, and the partition's waits object
//! that holds them (docs/waits.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::journal::JournalEntry;
use crate::manifest::PartitionDir;
use crate::position::Position;

/// The field of a log payload that makes the event a [`Signal`].
pub const SIGNAL_FIELD: &str = "weir.signal";

/// The field the engine adds to a wait's notice: the wait's signal type, correlation id and
/// expiry (`expires_at_ms`).
pub const NOTICE_FIELD: &str = "weir.wait";

/// An event that wakes a key waiting for its type and correlation id. It travels in the log
/// as an event of the waiting key, under [`SIGNAL_FIELD`].
///
/// ```
/// use weir_engine::Signal;
///
/// let signal = Signal::new("approval", "call-7", serde_json::json!({"approved": true}));
/// let payload = signal.to_payload();
/// assert_eq!(payload["weir.signal"]["type"], "approval");
/// assert_eq!(Signal::from_payload(&payload), Some(Ok(signal)));
/// assert_eq!(Signal::from_payload(&serde_json::json!({"review": "fine"})), None);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What kind of signal: the `kind` a [`wait_for`](crate::Durable::wait_for) names.
    #[serde(rename = "type")]
    pub kind: String,
    /// Which wait it answers: the correlation id the wait names.
    pub correlation_id: String,
    /// What the waiting action receives.
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl Signal {
    /// A signal of `kind` for the wait with `correlation_id`, carrying `payload`.
    pub fn new(kind: impl Into<String>, correlation_id: impl Into<String>, payload: serde_json::Value) -> Self {
        Signal { kind: kind.into(), correlation_id: correlation_id.into(), payload }
    }

    /// The log payload that carries this signal: `{"weir.signal": {...}}`.
    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::json!({ SIGNAL_FIELD: self })
    }

    /// The signal a log payload carries: `None` if it carries none, an error naming what is
    /// wrong if its [`SIGNAL_FIELD`] is not a signal.
    pub fn from_payload(payload: &serde_json::Value) -> Option<std::result::Result<Signal, String>> {
        let field = payload.as_object()?.get(SIGNAL_FIELD)?;
        Some(serde_json::from_value(field.clone()).map_err(|e| format!("`{SIGNAL_FIELD}` is not a signal: {e}")))
    }
}

/// How a wait ended: what [`wait_for`](crate::Durable::wait_for) returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wake {
    /// The awaited signal came, with this payload.
    Signal(serde_json::Value),
    /// The wait's time passed first (for `sleep_until`: the time came).
    TimedOut,
}

/// Why a wait returned no outcome.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The event waits: pass this on (`?`); the engine commits the suspension and runs the
    /// event again when the wait ends. Not a failure: no attempt is counted.
    #[error("the event waits for {0}: its key is suspended until then")]
    Suspended(String),
    /// The journal recorded another call at this step: the action's calls changed since the
    /// event's earlier attempt.
    #[error("wait `{name}` meets a journaled call `{journaled}` at its step: the action's calls changed")]
    Mismatch {
        /// The wait's name.
        name: String,
        /// The name the journal recorded at this step.
        journaled: String,
    },
    /// The journaled outcome could not be read or written.
    #[error("journal of wait `{name}`: {reason}")]
    Journal {
        /// The wait's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// What a suspended key waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Awaited {
    /// A signal of this type and correlation id (or its deadline).
    Signal {
        #[serde(rename = "type")]
        kind: String,
        correlation_id: String,
    },
    /// Only a time.
    Timer,
}

impl Awaited {
    pub(crate) fn matches(&self, signal: &Signal) -> bool {
        match self {
            Awaited::Signal { kind, correlation_id } => {
                *kind == signal.kind && *correlation_id == signal.correlation_id
            }
            Awaited::Timer => false,
        }
    }
}

impl std::fmt::Display for Awaited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Awaited::Signal { kind, correlation_id } => write!(f, "signal `{kind}` `{correlation_id}`"),
            Awaited::Timer => f.write_str("a time"),
        }
    }
}

/// A wait an attempt met and could not answer: what the suspension records of it.
#[derive(Debug, Clone)]
pub(crate) struct PendingWait {
    pub(crate) branch: String,
    pub(crate) step: u32,
    pub(crate) name: String,
    pub(crate) awaited: Awaited,
    pub(crate) due_ms: Option<u64>,
    /// What to commit with the suspension.
    pub(crate) notice: Option<Notice>,
}

/// What a wait commits with its suspension besides itself.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// An output of the event, once, also kept in the suspension (an approval request).
    Delivered(serde_json::Value),
    /// Kept in the suspension only, for whoever reads the waits (a batch call's request).
    Held(serde_json::Value),
}

/// An event of a waiting key, kept until the key resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub(crate) event: Position,
    /// The producer's bytes (checked to be JSON before they were queued).
    pub(crate) payload: Box<RawValue>,
    /// What earlier attempts journaled for it (an attempt that ran it after a resumption
    /// that did not commit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) journal: Vec<JournalEntry>,
}

impl Queued {
    pub(crate) fn new(
        event: Position,
        payload: &Bytes,
        journal: Vec<JournalEntry>,
    ) -> std::result::Result<Self, serde_json::Error> {
        Ok(Queued { event, payload: serde_json::from_slice(payload)?, journal })
    }

    pub(crate) fn bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.payload.get().as_bytes())
    }
}

/// A key stopped at a wait: everything needed to run its event again where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Suspension {
    /// The suspended event and the producer's bytes.
    pub(crate) event: Queued,
    /// The wait's branch (empty: the unnamed one) and step, and its journal name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) branch: String,
    pub(crate) step: u32,
    pub(crate) name: String,
    pub(crate) awaited: Awaited,
    /// When the wait times out (or, for a timer, fires); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) due_ms: Option<u64>,
    /// The event's journal entries before the wait.
    pub(crate) journal: Vec<JournalEntry>,
    /// Outputs the event's actions emitted that are committed: a run after the wait emits
    /// them again, and they are dropped.
    pub(crate) emitted: u32,
    /// The index of the event's next output: after `emitted` and the waits' notices.
    /// Absent: `emitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next_index: Option<u32>,
    /// The key's later events, in log order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) queued: Vec<Queued>,
    pub(crate) since_ms: u64,
    /// The notice committed with the wait (an approval request), for those who list waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) notice: Option<serde_json::Value>,
}

impl Suspension {
    pub(crate) fn is_due(&self, now_ms: u64) -> bool {
        self.due_ms.is_some_and(|due| due <= now_ms)
    }

    pub(crate) fn next_index(&self) -> u32 {
        self.next_index.unwrap_or(self.emitted)
    }
}

/// A partition's suspensions, by key.
pub(crate) type Waits = BTreeMap<String, Arc<Suspension>>;

/// The manifest's reference to the live waits object: the index of wake-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitsRef {
    /// Path relative to the partition directory.
    pub path: String,
    /// How many keys wait.
    pub keys: u64,
    /// The earliest time any of them is due; `None`: none has a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due_ms: Option<u64>,
}

impl WaitsRef {
    /// Whether a wait is due at `now_ms`: the partition has work although its log may not.
    pub fn due(&self, now_ms: u64) -> bool {
        self.next_due_ms.is_some_and(|due| due <= now_ms)
    }
}

#[derive(Serialize, Deserialize)]
struct WaitsFile {
    format: u32,
    waits: BTreeMap<String, Arc<Suspension>>,
}

/// Encodes a waits object and its manifest reference at `path`; `None` if no key waits.
pub(crate) fn encode(path: String, waits: &Waits) -> Option<(WaitsRef, Bytes)> {
    if waits.is_empty() {
        return None;
    }
    let next_due_ms = waits.values().filter_map(|s| s.due_ms).min();
    let file = WaitsFile { format: 1, waits: waits.clone() };
    let bytes = Bytes::from(serde_json::to_vec(&file).expect("waits serialize"));
    Some((WaitsRef { path, keys: waits.len() as u64, next_due_ms }, bytes))
}

/// Reads the waits object a manifest names.
pub(crate) async fn load(dir: &PartitionDir, waits: Option<&WaitsRef>) -> Result<Waits> {
    let Some(waits) = waits else { return Ok(Waits::new()) };
    let path = dir.path(&waits.path);
    let bytes = dir
        .storage()
        .get(&path)
        .await?
        .ok_or_else(|| Error::corrupt(&path, "the waits object the head manifest names is absent"))?;
    let file: WaitsFile = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
    if file.format != 1 {
        return Err(Error::corrupt(&path, format!("waits format {} is not 1", file.format)));
    }
    Ok(file.waits)
}

/// A waiting key, as `weir inspect` and the approvals command show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitingKey {
    /// The key.
    pub key: String,
    /// The suspended event.
    pub event: Position,
    /// What it waits for: `signal` or `timer`.
    pub kind: String,
    /// The signal's type and correlation id, for a signal wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// When it times out or fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<u64>,
    /// Since when it waits.
    pub since_ms: u64,
    /// How many of the key's later events queue behind it.
    pub queued: usize,
    /// The notice committed with the wait (an approval request), if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<serde_json::Value>,
}

impl WaitingKey {
    pub(crate) fn new(key: &str, suspension: &Suspension) -> Self {
        let (kind, signal_type, correlation_id) = match &suspension.awaited {
            Awaited::Signal { kind, correlation_id } => ("signal", Some(kind.clone()), Some(correlation_id.clone())),
            Awaited::Timer => ("timer", None, None),
        };
        WaitingKey {
            key: key.to_string(),
            event: suspension.event.event,
            kind: kind.to_string(),
            signal_type,
            correlation_id,
            due_ms: suspension.due_ms,
            since_ms: suspension.since_ms,
            queued: suspension.queued.len(),
            notice: suspension.notice.clone(),
        }
    }
}
