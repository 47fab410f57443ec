//! How an invocation learns that a newer one claimed its partition.
//!
//! See `docs/storage-format.md` ("Learning one is fenced").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::manifest::{PartitionDir, Writer};

/// What one look at the chain found, shared by every caller that waited for it.
#[derive(Debug, Clone)]
enum Finding {
    Unfenced,
    Fenced(u64),
    Failed(String),
}

/// An invocation's watch on the head of its partition's chain.
pub(crate) struct Fence {
    dir: PartitionDir,
    writer: Writer,
    clock: Arc<dyn Clock>,
    /// The newest manifest this invocation committed.
    newest: Arc<AtomicU64>,
    fenced: Arc<AtomicBool>,
    /// The look in flight, if any, and when it began: callers that come while it runs share
    /// it, so that concurrent at-most-once calls cost one request, not one each.
    looking: Mutex<Option<(u64, Shared<BoxFuture<'static, Finding>>)>>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence").field("writer", &self.writer).field("fenced", &self.fenced).finish_non_exhaustive()
    }
}

impl Fence {
    pub(crate) fn new(dir: PartitionDir, writer: Writer, claimed: u64, clock: Arc<dyn Clock>) -> Self {
        Fence {
            dir,
            writer,
            clock,
            newest: Arc::new(AtomicU64::new(claimed)),
            fenced: Arc::new(AtomicBool::new(false)),
            looking: Mutex::new(None),
        }
    }

    /// Records a commit of this invocation.
    pub(crate) fn committed(&self, seq: u64) {
        self.newest.fetch_max(seq, Ordering::SeqCst);
    }

    /// Whether a check has found this invocation fenced.
    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Looks for a manifest after this invocation's newest that another writer created: one
    /// GET, shared with the callers that come while it is in flight. Only a fenced
    /// invocation can find one. Returns when the look began, by the engine's clock: what it
    /// found held at least from then.
    pub(crate) async fn check(&self) -> Result<u64> {
        let (began_ms, look) = self.look();
        match look.await {
            Finding::Unfenced => Ok(began_ms),
            Finding::Fenced(seq) => Err(Error::Fenced { partition: self.dir.partition(), seq }),
            Finding::Failed(reason) => {
                Err(Error::Store(object_store::Error::Generic { store: "fence check", source: reason.into() }))
            }
        }
    }

    /// The look in flight, or a new one.
    fn look(&self) -> (u64, Shared<BoxFuture<'static, Finding>>) {
        let mut looking = self.looking.lock().expect("fence");
        if let Some((began_ms, look)) = looking.as_ref()
            && look.peek().is_none()
        {
            return (*began_ms, look.clone());
        }
        let (dir, writer, newest, fenced) =
            (self.dir.clone(), self.writer.clone(), self.newest.clone(), self.fenced.clone());
        let look = async move {
            let next = newest.load(Ordering::SeqCst) + 1;
            if fenced.load(Ordering::SeqCst) {
                return Finding::Fenced(next);
            }
            match dir.read_manifest(next).await {
                Ok(Some(manifest)) if manifest.writer != writer => {
                    fenced.store(true, Ordering::SeqCst);
                    tracing::info!(
                        partition = dir.partition(),
                        seq = next,
                        "fenced: a newer invocation claimed the partition"
                    );
                    Finding::Fenced(next)
                }
                Ok(_) => Finding::Unfenced,
                Err(e) => Finding::Failed(e.to_string()),
            }
        }
        .boxed()
        .shared();
        let began_ms = self.clock.now_ms();
        *looking = Some((began_ms, look.clone()));
        (began_ms, look)
    }
}
