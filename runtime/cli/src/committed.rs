//! Everything an agent committed, over every partition.

use futures::{StreamExt, TryStreamExt};
use weir_engine::{CommittedReader, DeadLetter, EventLog, Output};

use crate::error::Result;

/// Partitions read at once.
const PARTITIONS_AT_ONCE: usize = 8;

/// An agent's committed outputs and dead letters, by partition, in commit order.
#[derive(Debug, Default)]
pub struct Committed {
    /// Each output with its partition.
    pub outputs: Vec<(u32, Output)>,
    /// Each dead letter with its partition.
    pub dead_letters: Vec<(u32, DeadLetter)>,
}

impl Committed {
    /// Reads what `agent` committed on every partition of `log`.
    pub async fn read(log: &EventLog, agent: &str) -> Result<Self> {
        let reads = (0..log.partitions()).map(|partition| async move {
            let reader = CommittedReader::new(log.storage().clone(), agent, partition)?;
            let (outputs, dead_letters) = futures::try_join!(reader.outputs(), reader.dead_letters())?;
            Ok::<_, weir_engine::Error>((partition, outputs, dead_letters))
        });
        let partitions: Vec<_> = futures::stream::iter(reads).buffered(PARTITIONS_AT_ONCE).try_collect().await?;
        let mut committed = Committed::default();
        for (partition, outputs, dead_letters) in partitions {
            committed.outputs.extend(outputs.into_iter().map(|o| (partition, o)));
            committed.dead_letters.extend(dead_letters.into_iter().map(|d| (partition, d)));
        }
        Ok(committed)
    }
}
