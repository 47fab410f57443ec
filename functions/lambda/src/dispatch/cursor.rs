//! A dispatcher's durable progress on one partition toward one sink: a chain of cursor
//! objects created with create-if-absent, fenced like the manifest chain.
//!
//! `agents/<agent>/dispatch/<sink id>/p<P:05>/cursor/<n:020>.json` holds link `n`; the
//! highest present is the cursor. A dispatcher first *claims* (creates `n+1` copying `n`
//! with its own writer nonce), then *advances* (creates `n+2`, …). A dispatcher whose next
//! link exists already, written by another, is fenced: only one ever advances from a link.

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use weir_engine::{Error, Result, Storage, layout};

/// The next output to deliver: output `index` of commit `seq`, or the first output of a
/// later commit if `seq` has no more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutputPosition {
    /// A manifest sequence number.
    pub seq: u64,
    /// An index among that commit's outputs.
    pub index: u64,
}

/// One link of the cursor chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorLink {
    /// 1.
    pub format: u32,
    /// This link's number.
    pub n: u64,
    /// The dispatcher that wrote it: a nonce drawn at its claim.
    pub writer: String,
    /// The next output to deliver.
    pub next: OutputPosition,
    /// Outputs of the partition before `next` (the manifests' cumulative count): compared
    /// with the head manifest's, it tells whether there is anything to deliver.
    pub outputs_before: u64,
}

/// A cursor chain's head as a reader sees it, or as a claimant holds it.
#[derive(Debug, Clone)]
pub struct Cursor {
    storage: Storage,
    dir: Path,
    partition: u32,
    head: CursorLink,
}

/// How often (in links) the hint is rewritten: a reader lists at most this many links.
const HINT_EVERY: u64 = 16;

#[derive(Serialize, Deserialize)]
struct CursorHint {
    n: u64,
}

impl Cursor {
    /// Reads the head of the chain of `agent`'s `partition` toward the sink `sink_id`; an
    /// absent chain starts before the first output.
    pub async fn read(storage: &Storage, agent: &str, sink_id: &str, partition: u32) -> Result<Cursor> {
        let dir = storage.path(&layout::dispatch_dir(agent, sink_id, partition));
        let genesis =
            CursorLink { format: 1, n: 0, writer: String::new(), next: OutputPosition::default(), outputs_before: 0 };
        let mut cursor = Cursor { storage: storage.clone(), dir, partition, head: genesis };
        let hint = match storage.get(&cursor.dir.clone().join(layout::DISPATCH_CURSOR_HINT)).await? {
            Some(bytes) => serde_json::from_slice::<CursorHint>(&bytes).ok().map(|h| h.n),
            None => None,
        };
        let offset = hint.map(|n| cursor.link_path(n));
        let listed = storage.list_after(&cursor.dir.clone().join(layout::DISPATCH_CURSORS), offset.as_ref()).await?;
        let latest = listed.iter().filter_map(|o| layout::dispatch_cursor_number(o.location.filename()?)).max();
        if let Some(n) = latest.or(hint) {
            cursor.head = cursor.read_link(n).await?;
        }
        Ok(cursor)
    }

    /// The head link.
    pub fn head(&self) -> &CursorLink {
        &self.head
    }

    /// Takes the chain for a new writer, fencing every earlier one.
    pub async fn claim(&mut self) -> Result<()> {
        let writer = format!("{:016x}", fastrand::u64(..));
        self.append(CursorLink { n: self.head.n + 1, writer, ..self.head.clone() }).await
    }

    /// Records that everything before `next` was delivered. Fails as fenced if another
    /// dispatcher claimed the chain since.
    pub async fn advance(&mut self, next: OutputPosition, outputs_before: u64) -> Result<()> {
        self.append(CursorLink { n: self.head.n + 1, next, outputs_before, ..self.head.clone() }).await
    }

    /// Every link still present, oldest first: for inspection and tests.
    pub async fn links(&self) -> Result<Vec<CursorLink>> {
        let listed = self.storage.list_after(&self.dir.clone().join(layout::DISPATCH_CURSORS), None).await?;
        let numbers = listed.iter().filter_map(|o| layout::dispatch_cursor_number(o.location.filename()?));
        futures::future::try_join_all(numbers.map(|n| self.read_link(n))).await
    }

    async fn append(&mut self, link: CursorLink) -> Result<()> {
        let path = self.link_path(link.n);
        let body = Bytes::from(serde_json::to_vec(&link).expect("a link serializes"));
        // A retried create that won reports a conflict: the writer nonce tells it apart.
        if !self.storage.create(&path, body).await? && self.read_link(link.n).await?.writer != link.writer {
            return Err(Error::Fenced { partition: self.partition, seq: link.n });
        }
        self.head = link;
        if !self.head.n.is_multiple_of(HINT_EVERY) {
            return Ok(());
        }
        let hint = Bytes::from(serde_json::to_vec(&CursorHint { n: self.head.n }).expect("a hint serializes"));
        // Best effort: a stale hint costs list pages, never correctness.
        if let Err(e) = self.storage.put(&self.dir.clone().join(layout::DISPATCH_CURSOR_HINT), hint).await {
            tracing::warn!(partition = self.partition, error = %e, "could not write the cursor hint");
        }
        Ok(())
    }

    async fn read_link(&self, n: u64) -> Result<CursorLink> {
        let path = self.link_path(n);
        let bytes = self.storage.get(&path).await?.ok_or_else(|| Error::Corrupt {
            path: path.to_string(),
            reason: "a listed cursor link is missing".into(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt { path: path.to_string(), reason: e.to_string() })
    }

    fn link_path(&self, n: u64) -> Path {
        layout::dispatch_cursor(n).split('/').fold(self.dir.clone(), |path, part| path.join(part))
    }
}
