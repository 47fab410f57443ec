//! The action journal: results of durable calls, group-committed to object storage.
//!
//! See `docs/storage-format.md` ("The action journal").

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::engine::{Fence, Tasks};
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::PartitionDir;
use crate::position::Position;

/// One durable call: the `step`-th durable call of `branch` made while handling `event` of
/// `key`.
///
/// Ordered by event first: the order in which a replay meets the calls.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CallId {
    /// The input event.
    pub event: Position,
    pub key: String,
    /// The branch of the handling that made the call; empty for the handling itself. Calls of
    /// different branches may interleave in any order without changing their numbers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    /// The call's number within its branch, from 0.
    pub step: u32,
}

/// What the journal knows of a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call returned this value, kept as the JSON text it is journaled as: a result is
    /// written once and read back only on replay, so it is never built as a JSON tree.
    Done(Box<RawValue>),
    /// An at-most-once call was about to run; if no result follows, it was interrupted.
    Intent,
}

impl Outcome {
    /// The outcome of a call that returned `value`.
    ///
    /// ```
    /// use weir_engine::Outcome;
    ///
    /// let done = Outcome::done(&vec![1, 2]).unwrap();
    /// assert_eq!(done, Outcome::done(&serde_json::json!([1, 2])).unwrap());
    /// ```
    pub fn done(value: &impl Serialize) -> serde_json::Result<Outcome> {
        serde_json::value::to_raw_value(value).map(Outcome::Done)
    }
}

/// Outcomes are equal when they are the same JSON text.
impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Outcome::Done(a), Outcome::Done(b)) => a.get() == b.get(),
            (Outcome::Intent, Outcome::Intent) => true,
            _ => false,
        }
    }
}

/// A journal line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "Line<'static>")]
pub struct JournalEntry {
    /// Which call.
    pub call: CallId,
    /// The name the action gave the call.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

/// A journal line as stored (docs/storage-format.md): the call's fields, its name and its
/// outcome side by side. Spelled out rather than `#[serde(flatten)]`, through which serde
/// cannot read a [`RawValue`].
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    event: Position,
    key: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    branch: Cow<'a, str>,
    step: u32,
    name: Cow<'a, str>,
    outcome: Cow<'a, Outcome>,
}

impl From<Line<'static>> for JournalEntry {
    fn from(line: Line<'static>) -> Self {
        let call =
            CallId { event: line.event, key: line.key.into_owned(), branch: line.branch.into_owned(), step: line.step };
        JournalEntry { call, name: line.name.into_owned(), outcome: line.outcome.into_owned() }
    }
}

impl Serialize for JournalEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let call = &self.call;
        Line {
            event: call.event,
            key: Cow::Borrowed(&call.key),
            branch: Cow::Borrowed(&call.branch),
            step: call.step,
            name: Cow::Borrowed(&self.name),
            outcome: Cow::Borrowed(&self.outcome),
        }
        .serialize(serializer)
    }
}

/// The journal of one batch: what earlier attempts recorded, plus what this one records.
pub(crate) struct Journal {
    dir: PartitionDir,
    position: Position,
    nonce: String,
    known: Mutex<HashMap<CallId, JournalEntry>>,
    /// Lines waiting for the next flush.
    pending: Mutex<Vec<u8>>,
    /// Checked with every flush, so that a fenced invocation learns it soon.
    fence: Arc<Fence>,
    wake: Arc<Notify>,
    flusher: Mutex<Option<tokio::task::JoinHandle<Option<()>>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("position", &self.position).finish_non_exhaustive()
    }
}

/// Reads every entry any earlier attempt recorded under `position` or a later position:
/// batches that ran ahead of the last commit journaled under their own start.
pub(crate) async fn load(dir: &PartitionDir, position: Position) -> Result<HashMap<CallId, JournalEntry>> {
    let from = dir.path(&layout::journal_dir(position));
    let files = dir.storage().list_after(&dir.path(layout::JOURNAL), Some(&from)).await?;
    let reads = files.iter().map(|f| dir.storage().get(&f.location));
    let mut entries = HashMap::new();
    for (file, bytes) in files.iter().zip(futures::future::try_join_all(reads).await?) {
        let Some(bytes) = bytes else { continue };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let entry: JournalEntry = serde_json::from_slice(line).map_err(|e| Error::corrupt(&file.location, e))?;
            // A result supersedes an intent, whatever order the files were read in.
            let keep_existing =
                matches!(entries.get(&entry.call), Some(JournalEntry { outcome: Outcome::Done(_), .. }));
            if !keep_existing {
                entries.insert(entry.call.clone(), entry);
            }
        }
    }
    Ok(entries)
}

impl Journal {
    /// A journal for the batch starting at `position`, seeded with what earlier attempts recorded.
    pub(crate) fn start(
        dir: PartitionDir,
        position: Position,
        nonce: String,
        window: Duration,
        replayed: HashMap<CallId, JournalEntry>,
        fence: Arc<Fence>,
        tasks: &Tasks,
    ) -> Arc<Self> {
        let journal = Arc::new(Journal {
            dir,
            position,
            nonce,
            known: Mutex::new(replayed),
            pending: Mutex::default(),
            fence,
            wake: Arc::new(Notify::new()),
            flusher: Mutex::new(None),
        });
        let weak = Arc::downgrade(&journal);
        let wake = journal.wake.clone();
        let handle = tasks.spawn(async move {
            for file in 0u32.. {
                wake.notified().await;
                tokio::time::sleep(window).await;
                let Some(journal) = weak.upgrade() else { return };
                journal.flush(file).await;
            }
        });
        *journal.flusher.lock().expect("flusher") = Some(handle);
        journal
    }

    /// What the journal knows of `call`.
    pub(crate) fn lookup(&self, call: &CallId) -> Option<JournalEntry> {
        self.known.lock().expect("journal").get(call).cloned()
    }

    /// Records an entry; it reaches storage with the next group commit.
    pub(crate) fn record(&self, entry: JournalEntry) {
        let line = line(&entry);
        self.known.lock().expect("journal").insert(entry.call.clone(), entry);
        self.pending.lock().expect("pending").extend_from_slice(&line);
        self.wake.notify_one();
    }

    /// Makes entries known without writing them: a resumed event's calls before its wait,
    /// which its suspension keeps durable (docs/waits.md).
    pub(crate) fn seed(&self, entries: impl IntoIterator<Item = JournalEntry>) {
        let mut known = self.known.lock().expect("journal");
        for entry in entries {
            known.entry(entry.call.clone()).or_insert(entry);
        }
    }

    /// The entries of one event of one key, in call order: what a suspension keeps.
    pub(crate) fn entries_of(&self, event: Position, key: &str) -> Vec<JournalEntry> {
        self.entries_matching(|call| call.event == event && call.key == key)
    }

    async fn flush(&self, file: u32) {
        let lines = std::mem::take(&mut *self.pending.lock().expect("pending"));
        if lines.is_empty() {
            return;
        }
        let path = self.dir.path(&layout::journal_file(self.position, &self.nonce, file));
        let (written, _) =
            futures::future::join(self.dir.storage().put(&path, Bytes::from(lines)), self.fence.check()).await;
        if let Err(e) = written {
            tracing::warn!(path = %path, error = %e, "journal flush failed; its calls will be made again on replay");
        }
    }

    /// Entries of the calls `keep` picks, in call order: what a commit must carry on for
    /// events it leaves undone (beyond its batch, or waiting).
    pub(crate) fn entries_matching(&self, keep: impl Fn(&CallId) -> bool) -> Vec<JournalEntry> {
        let mut entries: Vec<_> =
            self.known.lock().expect("journal").values().filter(|e| keep(&e.call)).cloned().collect();
        entries.sort_by(|a, b| a.call.cmp(&b.call));
        entries
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(handle) = self.flusher.lock().expect("flusher").take() {
            handle.abort();
        }
    }
}

/// Encodes entries as one journal file (JSON lines).
pub(crate) fn encode(entries: &[JournalEntry]) -> Bytes {
    Bytes::from(entries.iter().flat_map(line).collect::<Vec<u8>>())
}

/// One entry as a journal line.
fn line(entry: &JournalEntry) -> Vec<u8> {
    let mut line = serde_json::to_vec(entry).expect("journal entry serializes");
    line.push(b'\n');
    line
}
