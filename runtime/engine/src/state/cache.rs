//! A process-wide cache of run indexes and blocks. Runs never change, so nothing needs
//! invalidating: a cached piece of a run is right for as long as any manifest names the run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::run::{Block, BlockRef, RunIndex};
use crate::error::{Error, Result};
use crate::manifest::{PartitionDir, RunRef};

/// Caches decoded run indexes, decoded blocks and whole runs this process wrote, bounded by bytes.
#[derive(Debug)]
pub struct RunCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    indexes: HashMap<String, Arc<RunIndex>>,
    blocks: HashMap<(String, usize), Arc<Block>>,
    whole: HashMap<String, Bytes>,
    /// Insertion order, for eviction: (cache key, bytes).
    order: VecDeque<(Entry, usize)>,
    bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Index(String),
    Block(String, usize),
    Whole(String),
}

impl RunCache {
    /// A cache holding up to about `capacity` bytes.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(RunCache { capacity, inner: Mutex::default() })
    }

    fn key(dir: &PartitionDir, run: &RunRef) -> String {
        dir.path(&run.path).to_string()
    }

    /// Remembers a run this process wrote, so that reading it costs no request.
    pub(crate) fn insert_whole(&self, dir: &PartitionDir, run: &RunRef, bytes: Bytes) {
        let key = Self::key(dir, run);
        let size = bytes.len();
        let mut inner = self.inner.lock().expect("cache");
        inner.whole.insert(key.clone(), bytes);
        inner.admit(Entry::Whole(key), size, self.capacity);
    }

    /// The whole run, from this cache or one GET.
    pub(crate) async fn whole(&self, dir: &PartitionDir, run: &RunRef) -> Result<Bytes> {
        if let Some(bytes) = self.inner.lock().expect("cache").whole.get(&Self::key(dir, run)) {
            return Ok(bytes.clone());
        }
        let path = dir.path(&run.path);
        dir.storage().get(&path).await?.ok_or_else(|| Error::corrupt(&path, "a live run is missing"))
    }

    fn slice_of_whole(&self, key: &str, range: std::ops::Range<u64>) -> Option<Bytes> {
        let inner = self.inner.lock().expect("cache");
        inner.whole.get(key).map(|b| b.slice(range.start as usize..range.end as usize))
    }

    /// The run's decoded index, fetched with one ranged GET on a miss.
    pub(crate) async fn index(&self, dir: &PartitionDir, run: &RunRef) -> Result<Arc<RunIndex>> {
        let key = Self::key(dir, run);
        if let Some(index) = self.inner.lock().expect("cache").indexes.get(&key) {
            return Ok(index.clone());
        }
        let range = run.index_offset..run.index_offset + run.index_len;
        let bytes = match self.slice_of_whole(&key, range.clone()) {
            Some(bytes) => bytes,
            None => dir.storage().get_range(&dir.path(&run.path), range).await?,
        };
        let index = Arc::new(RunIndex::decode(&bytes).map_err(|e| Error::corrupt(&key, e))?);
        let mut inner = self.inner.lock().expect("cache");
        inner.indexes.insert(key.clone(), index.clone());
        inner.admit(Entry::Index(key), bytes.len(), self.capacity);
        Ok(index)
    }

    /// A decoded block of the run, fetched with one ranged GET on a miss.
    pub(crate) async fn block(&self, dir: &PartitionDir, run: &RunRef, block: BlockRef) -> Result<Arc<Block>> {
        let key = Self::key(dir, run);
        let cache_key = (key.clone(), block.index);
        if let Some(found) = self.inner.lock().expect("cache").blocks.get(&cache_key) {
            return Ok(found.clone());
        }
        let bytes = match self.slice_of_whole(&key, block.range()) {
            Some(bytes) => bytes,
            None => dir.storage().get_range(&dir.path(&run.path), block.range()).await?,
        };
        let size = bytes.len();
        let decoded = Arc::new(Block::decode(bytes).map_err(|e| Error::corrupt(&key, e))?);
        let mut inner = self.inner.lock().expect("cache");
        inner.blocks.insert(cache_key, decoded.clone());
        inner.admit(Entry::Block(key, block.index), size, self.capacity);
        Ok(decoded)
    }
}

impl Inner {
    fn admit(&mut self, entry: Entry, size: usize, capacity: usize) {
        self.order.push_back((entry, size));
        self.bytes += size;
        while self.bytes > capacity && self.order.len() > 1 {
            let Some((old, size)) = self.order.pop_front() else { break };
            self.bytes -= size;
            match old {
                Entry::Index(k) => drop(self.indexes.remove(&k)),
                Entry::Block(k, i) => drop(self.blocks.remove(&(k, i))),
                Entry::Whole(k) => drop(self.whole.remove(&k)),
            }
        }
    }
}
