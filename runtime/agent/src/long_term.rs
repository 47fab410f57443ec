//! Long-term memory: per key, named sets of memories (text, metadata, optionally a vector),
//! searchable, kept in the key's state so that they commit with the batch, exactly once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryItem {
    /// Its id: the position of the event that added it and a number, the same in every
    /// attempt of the run.
    pub id: String,
    /// What to remember.
    pub text: String,
    /// Anything to filter or show it by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Its unit vector, when the set embeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// When it was added (ms since the epoch), if the run knew the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<u64>,
    /// When it expires, for sets with a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

/// How a named memory set behaves: declared on the agent
/// ([`WorkflowAgentBuilder::memory_set`](crate::WorkflowAgentBuilder::memory_set)); a set
/// not declared keeps everything, searches by words and never expires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySetConfig {
    /// The most memories kept: past it, [`Context::remember`](crate::Context::remember)
    /// compacts the oldest half into one summary (with `summarizer`) or drops them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<usize>,
    /// How long a memory lives, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The chat model (registered name) that summarises memories past the capacity, in a
    /// journaled call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarizer: Option<String>,
    /// The embedding model (registered name) that embeds memories and queries, in journaled
    /// calls; without one, the set is searched by words (BM25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<String>,
}

/// The key's long-term memory: named sets of [`MemoryItem`]s. Changes commit with the batch
/// like the rest of the key's state.
///
/// ```
/// use weir_agent::LongTermMemory;
///
/// let mut memory = LongTermMemory::default();
/// let id = memory.add("decisions", "held: 900 EUR at an unknown merchant", Default::default());
/// assert_eq!(memory.search("decisions", "unknown merchant", 3)[0].id, id);
/// assert!(memory.delete("decisions", &id));
/// assert!(memory.get("decisions", &id).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LongTermMemory {
    sets: BTreeMap<String, Vec<MemoryItem>>,
    /// The run's time (ms since the epoch), when known.
    now_ms: Option<u64>,
    /// What ids of this run start with.
    id_prefix: String,
    added: u32,
    changed: bool,
}

impl LongTermMemory {
    /// The sets as the key's state left them, seen at `now_ms` by the run of `id_prefix`.
    pub(crate) fn restore(sets: BTreeMap<String, Vec<MemoryItem>>, now_ms: Option<u64>, id_prefix: String) -> Self {
        LongTermMemory { sets, now_ms, id_prefix, added: 0, changed: false }
    }

    /// Whether a stored memory can expire, so a run needs the time.
    pub(crate) fn expires(sets: &BTreeMap<String, Vec<MemoryItem>>) -> bool {
        sets.values().flatten().any(|item| item.expires_at_ms.is_some())
    }

    /// Whether the run changed anything.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// What to store: the sets without expired memories, or empty ones.
    pub(crate) fn into_sets(self) -> BTreeMap<String, Vec<MemoryItem>> {
        let now = self.now_ms;
        self.sets
            .into_iter()
            .map(|(name, items)| (name, items.into_iter().filter(|item| !expired(item, now)).collect::<Vec<_>>()))
            .filter(|(_, items)| !items.is_empty())
            .collect()
    }

    /// Adds a memory to `set`; returns its id.
    pub fn add(&mut self, set: &str, text: impl Into<String>, metadata: BTreeMap<String, String>) -> String {
        self.insert(set, text.into(), metadata, None, None)
    }

    /// Adds a memory with its vector and lifetime.
    pub(crate) fn insert(
        &mut self,
        set: &str,
        text: String,
        metadata: BTreeMap<String, String>,
        vector: Option<Vec<f32>>,
        ttl_ms: Option<u64>,
    ) -> String {
        let id = self.next_id();
        let expires_at_ms = ttl_ms.zip(self.now_ms).map(|(ttl, now)| now.saturating_add(ttl));
        let item = MemoryItem { id: id.clone(), text, metadata, vector, created_ms: self.now_ms, expires_at_ms };
        self.sets.entry(set.to_string()).or_default().push(item);
        self.changed = true;
        id
    }

    /// The memory `id` of `set`, unless expired.
    pub fn get(&self, set: &str, id: &str) -> Option<&MemoryItem> {
        self.items(set).find(|item| item.id == id)
    }

    /// Deletes the memory `id` of `set`; whether it was there.
    pub fn delete(&mut self, set: &str, id: &str) -> bool {
        let Some(items) = self.sets.get_mut(set) else { return false };
        let before = items.len();
        items.retain(|item| item.id != id);
        let deleted = items.len() < before;
        self.changed |= deleted;
        deleted
    }

    /// The memories of `set` not expired, oldest first.
    pub fn items(&self, set: &str) -> impl Iterator<Item = &MemoryItem> {
        let now = self.now_ms;
        self.sets.get(set).into_iter().flatten().filter(move |item| !expired(item, now))
    }

    /// The names of the sets holding memories.
    pub fn sets(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    /// The `k` memories of `set` best matching `query`'s words (BM25), best first.
    pub fn search(&self, set: &str, query: &str, k: usize) -> Vec<&MemoryItem> {
        let items: Vec<&MemoryItem> = self.items(set).collect();
        let texts: Vec<&str> = items.iter().map(|item| item.text.as_str()).collect();
        weir_search::rank_texts(query, &texts, k).into_iter().map(|(_, i)| items[i]).collect()
    }

    /// The `k` memories of `set` whose vectors are nearest to `vector` (a unit vector), best
    /// first; memories without a vector are left out.
    pub fn search_vector(&self, set: &str, vector: &[f32], k: usize) -> Vec<&MemoryItem> {
        let mut scored: Vec<(f32, &MemoryItem)> = self
            .items(set)
            .filter_map(|item| {
                let other = item.vector.as_ref().filter(|v| v.len() == vector.len())?;
                Some((other.iter().zip(vector).map(|(a, b)| a * b).sum(), item))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, item)| item).collect()
    }

    /// Replaces the `count` oldest memories of `set` by `summary` (if any): what compaction
    /// does past a set's capacity.
    pub(crate) fn replace_oldest(&mut self, set: &str, count: usize, summary: Option<MemoryItem>) {
        let Some(items) = self.sets.get_mut(set) else { return };
        let count = count.min(items.len());
        items.drain(..count);
        if let Some(summary) = summary {
            items.insert(0, summary);
        }
        self.changed = true;
    }

    /// A fresh id for a memory of this run.
    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("{}/m{}", self.id_prefix, self.added);
        self.added += 1;
        id
    }

    /// The run's time, if known.
    pub(crate) fn now_ms(&self) -> Option<u64> {
        self.now_ms
    }
}

fn expired(item: &MemoryItem, now_ms: Option<u64>) -> bool {
    item.expires_at_ms.zip(now_ms).is_some_and(|(at, now)| at <= now)
}
