//! Reading what the commit chain made visible: outputs, dead letters, state.

use crate::error::{Error, Result};
use crate::manifest::{FileRef, Manifest, PartitionDir};
use crate::outputs::{self, DeadLetter, Output};
use crate::storage::Storage;

/// Reads the committed results of one agent on one partition.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let storage = weir_engine::Storage::from_url("memory://").unwrap();
/// let reader = weir_engine::CommittedReader::new(storage, "my-agent", 0).unwrap();
/// assert!(reader.outputs().await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CommittedReader {
    dir: PartitionDir,
}

impl CommittedReader {
    /// A reader of `agent`'s commits on `partition`.
    pub fn new(storage: Storage, agent: &str, partition: u32) -> Result<Self> {
        Ok(CommittedReader { dir: PartitionDir::new(storage, agent, partition)? })
    }

    /// The valid manifests, oldest first (those below collection's boundary are void).
    pub async fn manifests(&self) -> Result<Vec<Manifest>> {
        let boundary = self.dir.gc_boundary().await?;
        let seqs: Vec<u64> = self.dir.manifest_seqs(None).await?.into_iter().filter(|s| *s >= boundary).collect();
        let reads = seqs.iter().map(|s| self.dir.read_manifest(*s));
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// The head of the chain.
    pub async fn head(&self) -> Result<Option<Manifest>> {
        self.dir.latest().await
    }

    /// Every committed output still retained, in commit order.
    pub async fn outputs(&self) -> Result<Vec<Output>> {
        self.committed(|m| m.outputs.as_ref(), outputs::decode_outputs).await
    }

    /// Every committed dead letter still retained, in commit order.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.committed(|m| m.dead_letters.as_ref(), outputs::decode_dead_letters).await
    }

    /// The current state snapshot of `key`, as the head's runs hold it.
    pub async fn state(&self, key: &str) -> Result<Option<bytes::Bytes>> {
        let Some(head) = self.head().await? else { return Ok(None) };
        let cache = crate::state::RunCache::new(1 << 20);
        let mut found = crate::state::read_snapshots(&self.dir, &head.runs, &[key.to_string()], &cache).await?;
        Ok(found.remove(key).flatten())
    }

    /// The rows of the files `pick` names in each valid manifest, read a few at a time.
    async fn committed<T>(
        &self,
        pick: fn(&Manifest) -> Option<&FileRef>,
        decode: fn(bytes::Bytes) -> Result<Vec<T>, String>,
    ) -> Result<Vec<T>> {
        use futures::{StreamExt, TryStreamExt};
        let manifests = self.manifests().await?;
        let paths: Vec<_> = manifests.iter().filter_map(pick).map(|f| self.dir.path(&f.path)).collect();
        let reads = paths.into_iter().map(|path| async move {
            let bytes = self
                .dir
                .storage()
                .get(&path)
                .await?
                .ok_or_else(|| Error::corrupt(&path, "committed file is missing"))?;
            decode(bytes).map_err(|e| Error::corrupt(&path, e))
        });
        let files: Vec<Vec<T>> = futures::stream::iter(reads).buffered(16).try_collect().await?;
        Ok(files.into_iter().flatten().collect())
    }
}
