//! How an invocation learns that a newer one claimed its partition.
//!
//! See `docs/storage-format.md` ("Learning one is fenced").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::manifest::{PartitionDir, Writer};

/// An invocation's watch on the head of its partition's chain.
#[derive(Debug)]
pub(crate) struct Fence {
    dir: PartitionDir,
    writer: Writer,
    /// The newest manifest this invocation committed.
    newest: AtomicU64,
    fenced: AtomicBool,
}

impl Fence {
    pub(crate) fn new(dir: PartitionDir, writer: Writer, claimed: u64) -> Self {
        Fence { dir, writer, newest: AtomicU64::new(claimed), fenced: AtomicBool::new(false) }
    }

    /// Records a commit of this invocation.
    pub(crate) fn committed(&self, seq: u64) {
        self.newest.fetch_max(seq, Ordering::SeqCst);
    }

    /// Whether a check has found this invocation fenced.
    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Looks for a manifest after this invocation's newest that another writer created:
    /// one GET. Only a fenced invocation can find one.
    pub(crate) async fn check(&self) -> Result<()> {
        let next = self.newest.load(Ordering::SeqCst) + 1;
        if !self.is_fenced() {
            match self.dir.read_manifest(next).await? {
                Some(manifest) if manifest.writer != self.writer => self.fenced.store(true, Ordering::SeqCst),
                _ => return Ok(()),
            }
            tracing::info!(
                partition = self.dir.partition(),
                seq = next,
                "fenced: a newer invocation claimed the partition"
            );
        }
        Err(Error::Fenced { partition: self.dir.partition(), seq: next })
    }
}
