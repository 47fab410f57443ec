//! The event log: partitions of immutable segments, appended idempotently by batch id.
//!
//! See `docs/storage-format.md` ("The event log") for the protocol and why it stores a batch
//! once even when duplicates race.

mod reader;
pub mod records;
mod segment;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

pub use reader::LogReader;
pub use segment::{LogEvent, Segment};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::layout;
use crate::position::Position;
use crate::storage::Storage;

/// The log's configuration, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct LogConfig {
    format: u32,
    partitions: u32,
}

/// A batch claim: which segment a producer batch was (to be) stored at.
#[derive(Debug, Serialize, Deserialize)]
struct BatchClaim {
    batch_id: String,
    seq: u64,
}

/// A segment known to exist, near the tail.
#[derive(Debug, Serialize, Deserialize)]
struct TailHint {
    seq: u64,
}

/// How often (in segments) appenders record the tail hint.
const TAIL_HINT_EVERY: u64 = 64;

/// How long an appender trusts the next segment number it learned: a sixth of the shortest
/// log retention, so that the number cannot have been written and collected since
/// (docs/storage-format.md, "Appends never land below the retained tail").
const TAIL_TRUSTED_MS: u64 = crate::engine::MIN_LOG_RETENTION_MS / 6;

/// Where an append put a partition's share of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: u32,
    /// The segment that holds the events.
    pub segment: u64,
    /// How many events the segment holds.
    pub events: usize,
}

/// A partitioned event log on object storage.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_engine::{EventLog, LogEvent, Storage};
/// let log = EventLog::create(Storage::from_url("memory://").unwrap(), 4).await.unwrap();
/// let events = vec![LogEvent::json("user-1", &serde_json::json!({"n": 1}))];
/// let first = log.append("batch-1", &events).await.unwrap();
/// let again = log.append("batch-1", &events).await.unwrap();
/// assert_eq!(first, again, "the same batch id is stored once");
/// let p = log.partition_of("user-1");
/// assert_eq!(log.read_segment(p, 0).await.unwrap().unwrap().events, events);
/// # });
/// ```
#[derive(Debug)]
pub struct EventLog {
    storage: Storage,
    partitions: u32,
    /// Next segment number per partition as this process last saw it, and when: a guess,
    /// never trusted for long.
    tails: Mutex<HashMap<u32, (u64, u64)>>,
    clock: Arc<dyn Clock>,
    /// Whether the store was found to honour create-if-absent, checked before the first append.
    probed: tokio::sync::OnceCell<()>,
}

impl EventLog {
    /// Creates the log with `partitions` partitions, or opens it if it exists with that count.
    pub async fn create(storage: Storage, partitions: u32) -> Result<Self> {
        if partitions == 0 {
            return Err(Error::InvalidInput("a log needs at least one partition".into()));
        }
        let config = LogConfig { format: 1, partitions };
        let path = storage.path(layout::LOG_CONFIG);
        if !storage.create(&path, Bytes::from(serde_json::to_vec(&config).expect("config serializes"))).await? {
            let existing = Self::open(storage.clone()).await?;
            if existing.partitions != partitions {
                return Err(Error::InvalidInput(format!(
                    "the log at `{path}` has {} partitions, not {partitions}",
                    existing.partitions
                )));
            }
        }
        Ok(Self::new(storage, partitions, Arc::new(SystemClock)))
    }

    /// Opens an existing log.
    pub async fn open(storage: Storage) -> Result<Self> {
        let path = storage.path(layout::LOG_CONFIG);
        let bytes = storage.get(&path).await?.ok_or_else(|| Error::NoLog { root: storage.root().to_string() })?;
        let config: LogConfig = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
        if config.format != 1 || config.partitions == 0 {
            return Err(Error::corrupt(&path, format!("unsupported log config {config:?}")));
        }
        Ok(Self::new(storage, config.partitions, Arc::new(SystemClock)))
    }

    /// The same log, with appends reading time from `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn new(storage: Storage, partitions: u32, clock: Arc<dyn Clock>) -> Self {
        EventLog { storage, partitions, tails: Mutex::default(), clock, probed: tokio::sync::OnceCell::new() }
    }

    /// Opens the log, whatever its partition count, or creates it with `partitions` if there
    /// is none.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use weir_engine::{EventLog, Storage};
    /// let storage = Storage::from_url("memory://").unwrap();
    /// assert_eq!(EventLog::open_or_create(storage.clone(), 4).await.unwrap().partitions(), 4);
    /// assert_eq!(EventLog::open_or_create(storage, 16).await.unwrap().partitions(), 4, "opened as it is");
    /// # });
    /// ```
    pub async fn open_or_create(storage: Storage, partitions: u32) -> Result<Self> {
        match Self::open(storage.clone()).await {
            Err(Error::NoLog { .. }) => Self::create(storage, partitions).await,
            opened => opened,
        }
    }

    /// The storage the log lives in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// How many partitions the log has.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition that holds `key`'s events.
    pub fn partition_of(&self, key: &str) -> u32 {
        partition_of(key, self.partitions)
    }

    /// Appends a producer batch, split by partition; appending the same `batch_id` again
    /// stores nothing new and returns where it was stored.
    pub async fn append(&self, batch_id: &str, events: &[LogEvent]) -> Result<Vec<Appended>> {
        if batch_id.is_empty() {
            return Err(Error::InvalidInput("a batch id must not be empty".into()));
        }
        let mut by_partition: BTreeMap<u32, Vec<LogEvent>> = BTreeMap::new();
        for event in events {
            by_partition.entry(self.partition_of(&event.key)).or_default().push(event.clone());
        }
        let appends = by_partition.iter().map(|(&p, events)| self.append_to_partition(p, batch_id, events));
        futures::future::try_join_all(appends).await
    }

    /// Appends events that all belong to `partition`.
    pub async fn append_to_partition(&self, partition: u32, batch_id: &str, events: &[LogEvent]) -> Result<Appended> {
        self.check_partition(partition)?;
        if let Some(stray) = events.iter().find(|e| self.partition_of(&e.key) != partition) {
            return Err(Error::InvalidInput(format!(
                "key `{}` belongs to another partition than {partition}",
                stray.key
            )));
        }
        let body =
            segment::encode(batch_id, events).map_err(|e| Error::InvalidInput(format!("batch `{batch_id}`: {e}")))?;
        let hash = batch_hash(batch_id, partition);
        let probe = self.probed.get_or_try_init(|| self.storage.check_create_if_absent(layout::LOG_PROBE));
        let (guess, probed) = futures::future::join(self.tail_guess(partition), probe).await;
        probed?;
        let mut guess = guess?;
        for attempt in 0u32.. {
            let claim_path = self.storage.path(&layout::batch_claim(partition, hash, attempt));
            let claim = BatchClaim { batch_id: batch_id.to_string(), seq: guess };
            let claim = if self
                .storage
                .create(&claim_path, Bytes::from(serde_json::to_vec(&claim).expect("claim")))
                .await?
            {
                claim
            } else {
                let bytes = self
                    .storage
                    .get(&claim_path)
                    .await?
                    .ok_or_else(|| Error::corrupt(&claim_path, "claim vanished"))?;
                let found: BatchClaim = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&claim_path, e))?;
                if found.batch_id != batch_id {
                    return Err(Error::corrupt(&claim_path, format!("hash collision with batch `{}`", found.batch_id)));
                }
                found
            };
            let segment_path = self.segment_path(partition, claim.seq);
            let stored = self.storage.create(&segment_path, body.clone()).await?
                || self.read_segment(partition, claim.seq).await?.is_some_and(|s| s.batch_id == batch_id);
            if stored {
                let now = self.clock.now_ms();
                self.tails.lock().expect("tails").insert(partition, (claim.seq + 1, now));
                if claim.seq % TAIL_HINT_EVERY == 0 {
                    self.write_tail_hint(partition, claim.seq).await;
                }
                return Ok(Appended { partition, segment: claim.seq, events: events.len() });
            }
            guess = self.tail_after(partition, claim.seq).await?;
        }
        unreachable!("the attempt counter is unbounded")
    }

    /// Reads segment `seq` of `partition`; `None` past the tail.
    pub async fn read_segment(&self, partition: u32, seq: u64) -> Result<Option<Segment>> {
        let path = self.segment_path(partition, seq);
        let Some(bytes) = self.storage.get(&path).await? else { return Ok(None) };
        segment::decode(bytes).map(Some).map_err(|e| Error::corrupt(&path, e))
    }

    /// The sequence number the next segment of `partition` will get: one GET of the tail
    /// hint and one LIST from there.
    pub async fn tail(&self, partition: u32) -> Result<u64> {
        let hint_path = self.storage.path(&layout::tail_hint(partition));
        let hint = match self.storage.get(&hint_path).await? {
            Some(bytes) => {
                Some(serde_json::from_slice::<TailHint>(&bytes).map_err(|e| Error::corrupt(&hint_path, e))?.seq)
            }
            None => None,
        };
        let offset = hint.map(|seq| self.segment_path(partition, seq));
        let objects = self.storage.list_after(&self.segments_dir(partition), offset.as_ref()).await?;
        // The hinted segment exists or has a successor: collection always keeps the newest.
        Ok(objects.iter().filter_map(|o| segment_seq(&o.location)).max().or(hint).map_or(0, |s| s + 1))
    }

    /// Whether `partition` holds events at or after `position`: the backlog of a reader
    /// whose next event is `position`.
    pub async fn has_events_from(&self, partition: u32, position: Position) -> Result<bool> {
        // A position past a segment's end names the next segment, so there are events from
        // it exactly when that segment exists.
        Ok(self.tail(partition).await? > position.segment)
    }

    /// When segment `seq` of `partition` was appended, in milliseconds since the epoch (the
    /// object's `Last-Modified`: segments are written once): one HEAD; `None` if it does
    /// not exist. The age of the oldest event not yet processed is now less this, for the
    /// segment at the committed position.
    pub async fn appended_at_ms(&self, partition: u32, seq: u64) -> Result<Option<u64>> {
        match self.storage.store().head(&self.segment_path(partition, seq)).await {
            Ok(meta) => Ok(Some(meta.last_modified.timestamp_millis().max(0) as u64)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a recent segment so that a cold appender lists only what follows it. Best
    /// effort: a stale or missing hint costs list pages, never correctness.
    async fn write_tail_hint(&self, partition: u32, seq: u64) {
        let path = self.storage.path(&layout::tail_hint(partition));
        let body = Bytes::from(serde_json::to_vec(&TailHint { seq }).expect("hint serializes"));
        if let Err(e) = self.storage.put(&path, body).await {
            tracing::warn!(partition, seq, error = %e, "could not write the log tail hint");
        }
    }

    /// The sequence numbers of the segments that exist, in order.
    pub async fn segments(&self, partition: u32) -> Result<Vec<u64>> {
        Ok(self.segment_objects(partition).await?.into_iter().map(|(seq, _)| seq).collect())
    }

    /// Each retained segment of `partition` with when it was appended (the store's
    /// last-modified time), milliseconds since the epoch, in log order.
    pub async fn segment_times(&self, partition: u32) -> Result<Vec<(u64, u64)>> {
        let objects = self.segment_objects(partition).await?;
        Ok(objects.into_iter().map(|(seq, o)| (seq, o.last_modified.timestamp_millis().max(0) as u64)).collect())
    }

    /// The segments that exist, in order, with their object metadata.
    pub(crate) async fn segment_objects(&self, partition: u32) -> Result<Vec<(u64, ObjectMeta)>> {
        let objects = self.storage.list_after(&self.segments_dir(partition), None).await?;
        Ok(objects.into_iter().filter_map(|o| Some((segment_seq(&o.location)?, o))).collect())
    }

    /// Deletes segments and their batch claims: all the claims first, so that a late retry
    /// of a batch appends anew instead of writing below the readers (see the storage format).
    pub(crate) async fn delete_segments(&self, partition: u32, seqs: &[u64]) -> Result<()> {
        let mut claims = Vec::new();
        for &seq in seqs {
            if let Some(segment) = self.read_segment(partition, seq).await? {
                let hash = batch_hash(&segment.batch_id, partition);
                let dir = self.storage.path(&layout::batch_claims(partition, hash));
                claims.extend(self.storage.list_after(&dir, None).await?.into_iter().map(|c| c.location));
            }
        }
        self.storage.delete_all(claims).await?;
        self.storage.delete_all(seqs.iter().map(|&seq| self.segment_path(partition, seq)).collect()).await
    }

    fn check_partition(&self, partition: u32) -> Result<()> {
        if partition >= self.partitions {
            return Err(Error::InvalidInput(format!(
                "partition {partition} out of range: the log has {}",
                self.partitions
            )));
        }
        Ok(())
    }

    async fn tail_guess(&self, partition: u32) -> Result<u64> {
        let now = self.clock.now_ms();
        if let Some(&(tail, learned_ms)) = self.tails.lock().expect("tails").get(&partition)
            && now.saturating_sub(learned_ms) < TAIL_TRUSTED_MS
        {
            return Ok(tail);
        }
        self.tail(partition).await
    }

    /// The tail, knowing that segment `seq` exists: one LIST from there.
    async fn tail_after(&self, partition: u32, seq: u64) -> Result<u64> {
        let objects =
            self.storage.list_after(&self.segments_dir(partition), Some(&self.segment_path(partition, seq))).await?;
        Ok(objects.iter().filter_map(|o| segment_seq(&o.location)).max().unwrap_or(seq) + 1)
    }

    fn segments_dir(&self, partition: u32) -> Path {
        self.storage.path(&layout::segments(partition))
    }

    fn segment_path(&self, partition: u32, seq: u64) -> Path {
        self.storage.path(&layout::segment(partition, seq))
    }
}

/// The partition of `key` in a log of `partitions` partitions: `xxh3_64(key) % partitions`.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    (xxh3_64(key.as_bytes()) % u64::from(partitions)) as u32
}

fn batch_hash(batch_id: &str, partition: u32) -> u64 {
    xxh3_64(format!("{batch_id}\0{partition}").as_bytes())
}

fn segment_seq(path: &Path) -> Option<u64> {
    layout::segment_seq(path.filename()?)
}
