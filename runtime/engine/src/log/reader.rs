//! Pulling events from a position.

use std::sync::Arc;

use super::{EventLog, LogEvent, Segment};
use crate::error::Result;
use crate::position::Position;

/// Reads one partition of a log from a position, keeping the segment it is in the middle of.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_engine::{EventLog, LogEvent, LogReader, Position, Storage};
/// let log = EventLog::create(Storage::from_url("memory://").unwrap(), 1).await.unwrap();
/// let events: Vec<_> = (0..5).map(|i| LogEvent::json("k", &serde_json::json!(i))).collect();
/// log.append("b", &events).await.unwrap();
/// let mut reader = LogReader::new(0);
/// let (first, next) = reader.read(&log, Position::default(), 3).await.unwrap();
/// assert_eq!((first.len(), next), (3, Position::new(0, 3)));
/// let (rest, next) = reader.read(&log, next, 10).await.unwrap();
/// assert_eq!((rest.len(), next), (2, Position::new(1, 0)));
/// # });
/// ```
#[derive(Debug)]
pub struct LogReader {
    partition: u32,
    cached: Option<(u64, Arc<Segment>)>,
}

impl LogReader {
    /// A reader of `partition`.
    pub fn new(partition: u32) -> Self {
        LogReader { partition, cached: None }
    }

    /// Up to `max` events from `from`, in log order, and the position after them. Reading
    /// stops at the tail: the first segment that does not exist.
    pub async fn read(
        &mut self,
        log: &EventLog,
        from: Position,
        max: usize,
    ) -> Result<(Vec<(Position, LogEvent)>, Position)> {
        let mut position = from;
        let mut events = Vec::new();
        while events.len() < max {
            let Some(segment) = self.segment(log, position.segment).await? else { break };
            let start = position.index as usize;
            let take = (max - events.len()).min(segment.events.len().saturating_sub(start));
            for (i, event) in segment.events.iter().enumerate().skip(start).take(take) {
                events.push((Position::new(position.segment, i as u32), event.clone()));
            }
            position.index += take as u32;
            if position.index as usize >= segment.events.len() {
                position = Position::new(position.segment + 1, 0);
            }
        }
        Ok((events, position))
    }

    async fn segment(&mut self, log: &EventLog, seq: u64) -> Result<Option<Arc<Segment>>> {
        if let Some((cached, segment)) = &self.cached
            && *cached == seq
        {
            return Ok(Some(segment.clone()));
        }
        let Some(segment) = log.read_segment(self.partition, seq).await? else { return Ok(None) };
        let segment = Arc::new(segment);
        self.cached = Some((seq, segment.clone()));
        Ok(Some(segment))
    }
}
