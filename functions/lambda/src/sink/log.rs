//! Another agent's event log: outputs become its input events, keyed as they were here.

use weir_engine::{EventLog, LogEvent, Storage};

use super::Delivery;
use crate::error::Result;

/// Appends outputs to an event log.
#[derive(Debug)]
pub struct LogSink {
    log: EventLog,
}

impl LogSink {
    /// A batch is the rest of one commit's outputs, whatever its size: one append.
    pub const MAX_BATCH: usize = usize::MAX;

    /// Opens the log in the store at `store_url`, creating it with `partitions` if absent.
    pub async fn open(store_url: &str, partitions: u32) -> Result<Self> {
        Ok(LogSink { log: EventLog::create(Storage::from_url(store_url)?, partitions).await? })
    }

    /// Appends the batch under its first delivery id: a redelivery starts at the same
    /// output and covers the same ones, so the log stores it once.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        let Some(first) = batch.first() else { return Ok(()) };
        let events: Vec<LogEvent> = batch.iter().map(|d| LogEvent::json(d.key.clone(), &d.payload)).collect();
        self.log.append(&format!("weir-dispatch:{}", first.id), &events).await?;
        Ok(())
    }
}
