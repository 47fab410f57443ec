//! Sensory memory (one run) and short-term memory (per key, across events).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::Spend;
use crate::error::AgentError;
use crate::long_term::{LongTermMemory, MemoryItem};

/// Named values, typed through serde.
///
/// As short-term memory it is the key's state: loaded when a run starts, committed with the
/// batch when the run changed it. Entries may expire: an expired entry reads as absent.
///
/// ```
/// use weir_agent::Memory;
///
/// let mut memory = Memory::default();
/// memory.set("visits", &3u32)?;
/// assert_eq!(memory.get::<u32>("visits")?, Some(3));
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    entries: BTreeMap<String, Entry>,
    /// Time of the run, for expiry (ms since the epoch); `None` when nothing expires.
    now_ms: Option<u64>,
    /// How long a written entry lives.
    ttl_ms: Option<u64>,
    changed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
}

/// The key's state as the agent layer stores it (docs/agents.md).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StoredMemory {
    #[serde(default)]
    memory: BTreeMap<String, Entry>,
    /// Long-term memory: named sets of memories.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) long_term: BTreeMap<String, Vec<MemoryItem>>,
    /// What the key spent of its budget in the current period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spend: Option<Spend>,
}

impl Memory {
    /// Short-term memory as the key's state left it, seen at `now_ms`, writing entries that
    /// live `ttl_ms`.
    pub(crate) fn restore(stored: Option<StoredMemory>, now_ms: Option<u64>, ttl_ms: Option<u64>) -> Self {
        let entries = stored.map(|s| s.memory).unwrap_or_default();
        Memory { entries, now_ms, ttl_ms, changed: false }
    }

    /// Whether any stored entry can expire, so a run needs the time.
    pub(crate) fn expires(stored: &Option<StoredMemory>) -> bool {
        stored.as_ref().is_some_and(|s| s.memory.values().any(|e| e.expires_at_ms.is_some()))
    }

    /// Whether the run changed anything.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// What to store with the run's long-term memory and what the key spent; expired
    /// entries are dropped.
    pub(crate) fn into_stored(self, long_term: LongTermMemory, spend: Option<Spend>) -> StoredMemory {
        let now = self.now_ms;
        StoredMemory {
            memory: self.entries.into_iter().filter(|(_, e)| !expired(e, now)).collect(),
            long_term: long_term.into_sets(),
            spend,
        }
    }

    /// The value of `name`, if set and not expired.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, AgentError> {
        let Some(entry) = self.entries.get(name).filter(|e| !expired(e, self.now_ms)) else { return Ok(None) };
        T::deserialize(&entry.value)
            .map(Some)
            .map_err(|e| AgentError::Decode { what: format!("memory `{name}`"), source: e })
    }

    /// The raw JSON of `name`, if set and not expired.
    pub fn get_value(&self, name: &str) -> Option<&Value> {
        self.entries.get(name).filter(|e| !expired(e, self.now_ms)).map(|e| &e.value)
    }

    /// Sets `name`; with a TTL, the entry expires that long after now.
    pub fn set<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), AgentError> {
        let value = serde_json::to_value(value)
            .map_err(|e| AgentError::Encode { what: format!("memory `{name}`"), source: e })?;
        let expires_at_ms = self.ttl_ms.zip(self.now_ms).map(|(ttl, now)| now.saturating_add(ttl));
        self.entries.insert(name.to_string(), Entry { value, expires_at_ms });
        self.changed = true;
        Ok(())
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.changed |= self.entries.remove(name).is_some();
    }

    /// The names set and not expired, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(|(_, e)| !expired(e, self.now_ms)).map(|(name, _)| name.as_str())
    }
}

fn expired(entry: &Entry, now_ms: Option<u64>) -> bool {
    entry.expires_at_ms.zip(now_ms).is_some_and(|(at, now)| at <= now)
}
