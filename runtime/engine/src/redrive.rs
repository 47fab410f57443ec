//! Dead letters back into the log: after the agent (or the input) is fixed, chosen dead
//! letters are appended again, each exactly once.
//!
//! Each dead letter is appended under a batch id made of its identity (agent, partition,
//! position), so the log's idempotent append stores it once however often the requeue runs
//! (while the log keeps its batch claims: `log_retention_ms`).

use futures::{StreamExt, TryStreamExt};

use crate::committed::CommittedReader;
use crate::error::Result;
use crate::log::{EventLog, LogEvent};
use crate::outputs::DeadLetter;
use crate::position::Position;

/// Appends to the log at once.
const APPENDS_AT_ONCE: usize = 16;

/// Which dead letters to list or requeue; an unset field selects all.
///
/// ```
/// use weir_engine::{DeadLetterFilter, Position};
///
/// let filter = DeadLetterFilter { reason: Some("not JSON".into()), ..Default::default() };
/// assert!(filter.from.is_none());
/// let range = DeadLetterFilter { from: Some(Position::new(3, 0)), to: Some(Position::new(5, 0)), ..Default::default() };
/// assert!(range.partition.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this partition's.
    pub partition: Option<u32>,
    /// Only this key's.
    pub key: Option<String>,
    /// Only those whose reason contains this text.
    pub reason: Option<String>,
    /// Only those of events at or after this position.
    pub from: Option<Position>,
    /// Only those of events before this position.
    pub to: Option<Position>,
}

impl DeadLetterFilter {
    /// Whether `letter`, committed on `partition`, is selected.
    pub fn selects(&self, partition: u32, letter: &DeadLetter) -> bool {
        self.partition.is_none_or(|p| p == partition)
            && self.key.as_ref().is_none_or(|k| *k == letter.key)
            && self.reason.as_ref().is_none_or(|r| letter.reason.contains(r.as_str()))
            && self.from.is_none_or(|from| letter.event >= from)
            && self.to.is_none_or(|to| letter.event < to)
    }
}

/// A dead letter with the partition it was committed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDeadLetter {
    /// The partition.
    pub partition: u32,
    /// The dead letter.
    pub letter: DeadLetter,
}

/// The dead letters of `agent` that `filter` selects, partition by partition in commit order.
pub async fn dead_letters(log: &EventLog, agent: &str, filter: &DeadLetterFilter) -> Result<Vec<PartitionDeadLetter>> {
    let partitions = (0..log.partitions()).filter(|p| filter.partition.is_none_or(|only| only == *p));
    let mut selected = Vec::new();
    for partition in partitions {
        let letters = CommittedReader::new(log.storage().clone(), agent, partition)?.dead_letters().await?;
        let chosen = letters.into_iter().filter(|letter| filter.selects(partition, letter));
        selected.extend(chosen.map(|letter| PartitionDeadLetter { partition, letter }));
    }
    Ok(selected)
}

/// Appends the dead letters of `agent` that `filter` selects to the log again, with their
/// keys and the producer's bytes, and returns them. Each goes under its own batch id, so a
/// requeue that runs again (after a crash, or by mistake) adds nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_engine::{DeadLetterFilter, EventLog, Storage};
///
/// let log = EventLog::create(Storage::from_url("memory://").unwrap(), 2).await.unwrap();
/// let requeued = weir_engine::requeue_dead_letters(&log, "my-agent", &DeadLetterFilter::default()).await.unwrap();
/// assert!(requeued.is_empty(), "no dead letters yet");
/// # });
/// ```
pub async fn requeue_dead_letters(
    log: &EventLog,
    agent: &str,
    filter: &DeadLetterFilter,
) -> Result<Vec<PartitionDeadLetter>> {
    let selected = dead_letters(log, agent, filter).await?;
    let appends = selected.iter().map(|dead| async move {
        let event = LogEvent::new(dead.letter.key.clone(), dead.letter.payload.clone());
        let batch_id = format!("redrive-{agent}-p{}-{}", dead.partition, dead.letter.event);
        log.append_to_partition(dead.partition, &batch_id, &[event]).await
    });
    futures::stream::iter(appends).buffer_unordered(APPENDS_AT_ONCE).try_collect::<Vec<_>>().await?;
    tracing::info!(agent, requeued = selected.len(), "dead letters requeued");
    Ok(selected)
}
