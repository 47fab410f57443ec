//! Everything an agent committed, over every partition.

use futures::{StreamExt, TryStreamExt};
use weir_engine::{Clock, CommittedOutputs, CommittedReader, DeadLetter, EventLog, EventTrace, Output, Storage};

use crate::error::Result;

/// Partitions read at once.
const PARTITIONS_AT_ONCE: usize = 8;

/// An agent's committed outputs and dead letters, by partition, in commit order.
#[derive(Debug, Default)]
pub struct Committed {
    /// Each commit's outputs, partition by partition.
    pub commits: Vec<CommittedOutputs>,
    /// Each dead letter with its partition.
    pub dead_letters: Vec<(u32, DeadLetter)>,
}

impl Committed {
    /// Reads what `agent` committed on every partition of `log`.
    pub async fn read(log: &EventLog, agent: &str) -> Result<Self> {
        let reads = (0..log.partitions()).map(|partition| async move {
            let reader = CommittedReader::new(log.storage().clone(), agent, partition)?;
            let outputs = reader.outputs_from(0).try_collect::<Vec<_>>();
            let (outputs, dead_letters) = futures::try_join!(outputs, reader.dead_letters())?;
            Ok::<_, weir_engine::Error>((partition, outputs, dead_letters))
        });
        let partitions: Vec<_> = futures::stream::iter(reads).buffered(PARTITIONS_AT_ONCE).try_collect().await?;
        let mut committed = Committed::default();
        for (partition, outputs, dead_letters) in partitions {
            committed.commits.extend(outputs);
            committed.dead_letters.extend(dead_letters.into_iter().map(|d| (partition, d)));
        }
        Ok(committed)
    }

    /// Each output with its partition, in commit order.
    pub fn outputs(&self) -> impl ExactSizeIterator<Item = (u32, &Output)> + '_ {
        let rows: Vec<(u32, &Output)> =
            self.commits.iter().flat_map(|c| c.outputs.iter().map(move |o| (c.partition, o))).collect();
        rows.into_iter()
    }
}

/// The committed traces of the events handled in the last `age_ms` (all when `None`), by
/// the root span's start: what `weir stats` and `weir cost` sum.
pub async fn traces_since(log: &EventLog, agent: &str, age_ms: Option<u64>) -> Result<Vec<EventTrace>> {
    traces_since_in(log.storage(), log.partitions(), agent, age_ms).await
}

/// Like [`traces_since`], of the commits under `root` (production's, or a shadow's) over
/// `partitions` partitions.
pub async fn traces_since_in(
    root: &Storage,
    partitions: u32,
    agent: &str,
    age_ms: Option<u64>,
) -> Result<Vec<EventTrace>> {
    let since_ms = age_ms.map(|age| weir_engine::SystemClock.now_ms().saturating_sub(age));
    let traces = traces_in(root, partitions, agent).await?.into_iter().map(|(_, trace)| trace);
    Ok(traces.filter(|t| since_ms.is_none_or(|since| t.spans[0].start_ms >= since)).collect())
}

/// Each committed event's trace still retained, with its partition, partition by partition
/// in log order.
pub async fn traces(log: &EventLog, agent: &str) -> Result<Vec<(u32, EventTrace)>> {
    traces_in(log.storage(), log.partitions(), agent).await
}

async fn traces_in(root: &Storage, partitions: u32, agent: &str) -> Result<Vec<(u32, EventTrace)>> {
    let reads = (0..partitions).map(|partition| async move {
        let traces = CommittedReader::new(root.clone(), agent, partition)?.traces().await?;
        Ok::<_, weir_engine::Error>(traces.into_iter().map(move |t| (partition, t)))
    });
    let partitions: Vec<_> = futures::stream::iter(reads).buffered(PARTITIONS_AT_ONCE).try_collect().await?;
    Ok(partitions.into_iter().flatten().collect())
}
