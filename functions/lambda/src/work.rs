//! An invocation's share of partitions: which to work on, until when, and what became of
//! each. Shared by process and dispatch, which have the same shape.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// Partitions worked on at once: enough to hide store latency, few enough that one
/// invocation's memory holds their batches.
const PARTITIONS_AT_ONCE: usize = 8;

/// The payload of a process or dispatch invocation: `{}` (every partition with work) or
/// `{"partitions": [3, 7]}` (those, as a continuation passes them on); for process,
/// `{"shadow": "prompt-v2"}` runs a replay's shadow (`docs/replay.md`).
///
/// ```
/// use weir_functions::work::PartitionRequest;
/// let all: PartitionRequest = serde_json::from_str("{}").unwrap();
/// assert_eq!(all.partitions, None);
/// let some: PartitionRequest = serde_json::from_str(r#"{"partitions": [3, 7]}"#).unwrap();
/// assert_eq!(some.partitions, Some(vec![3, 7]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    /// The partitions to work on; `None`: every partition that has work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<u32>>,
    /// A shadow to run instead of the agent's own commits (`docs/replay.md`): `partitions`
    /// of its plan, or all of them. Only the process function takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
}

/// When an invocation must stop starting work: its deadline less a margin for the work in
/// flight and the continuation.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    deadline: SystemTime,
    stop_at: SystemTime,
}

impl Deadline {
    /// Stop starting work `margin` before `deadline`.
    pub fn new(deadline: SystemTime, margin: Duration) -> Self {
        Deadline { deadline, stop_at: deadline.checked_sub(margin).unwrap_or(SystemTime::UNIX_EPOCH) }
    }

    /// The engine's view of this invocation's time: when to stop starting batches, and the
    /// lease its claims hold (the deadline itself).
    pub fn shift(&self) -> weir_engine::Shift {
        let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        weir_engine::Shift { stop_at_ms: ms(self.stop_at), lease_until_ms: ms(self.deadline) }
    }

    /// The deadline of a Lambda invocation, less `margin`.
    pub fn of(context: &lambda_runtime::Context, margin: Duration) -> Self {
        Deadline::new(context.deadline(), margin)
    }

    /// Whether to stop starting work now.
    pub fn reached(&self) -> bool {
        SystemTime::now() >= self.stop_at
    }
}

/// What became of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionOutcome {
    /// No work left.
    Done,
    /// Work remains; the deadline came first.
    Deadline,
    /// Another invocation took the partition: it carries on.
    Fenced,
    /// Another invocation holds the partition's lease: it carries on.
    Leased,
    /// Something its events need (a model, a tool, the store) is down: it waits at its last
    /// commit, with no continuation, for the next scheduled invocation.
    Unavailable(String),
    /// It failed with this error.
    Failed(String),
}

/// Runs `work` on each partition, a few at once, and returns the results in completion order.
pub(crate) async fn for_each_partition<T, F, Fut>(partitions: Vec<u32>, work: F) -> Vec<T>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = T>,
{
    futures::stream::iter(partitions).map(work).buffer_unordered(PARTITIONS_AT_ONCE).collect().await
}

impl PartitionOutcome {
    /// How a partition's work that ended with `result` went: losing the partition to
    /// another invocation is not a failure.
    pub(crate) fn of(partition: u32, result: crate::Result<PartitionOutcome>) -> PartitionOutcome {
        match result {
            Ok(outcome) => outcome,
            Err(e) if e.kind() == weir_engine::ErrorKind::Fenced => {
                tracing::info!(partition, error = %e, "partition taken over by another invocation");
                PartitionOutcome::Fenced
            }
            Err(e) if e.kind() == weir_engine::ErrorKind::Leased => {
                tracing::info!(partition, error = %e, "partition held by another invocation's lease");
                PartitionOutcome::Leased
            }
            Err(e) if e.kind() == weir_engine::ErrorKind::Unavailable => {
                tracing::warn!(partition, error = %e, "partition waits: something its events need is down");
                PartitionOutcome::Unavailable(e.to_string())
            }
            Err(e) => {
                tracing::error!(partition, error = %e, "partition failed");
                PartitionOutcome::Failed(e.to_string())
            }
        }
    }
}

/// An error naming each failed partition, if any failed.
pub(crate) fn check_failures<'a>(outcomes: impl IntoIterator<Item = (u32, &'a PartitionOutcome)>) -> crate::Result<()> {
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|(partition, outcome)| match outcome {
            PartitionOutcome::Failed(e) => Some(format!("partition {partition}: {e}")),
            _ => None,
        })
        .collect();
    match failures.is_empty() {
        true => Ok(()),
        false => Err(crate::Error::Partitions(failures.join("; "))),
    }
}
