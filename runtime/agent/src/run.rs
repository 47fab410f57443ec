//! One run: the events that follow from one input, and what they change.

use std::collections::VecDeque;

use serde_json::Value;
use weir_engine::Position;

use crate::event::{Event, Lineage};
use crate::long_term::LongTermMemory;
use crate::memory::Memory;

/// The state of one run: its queue of events, memories and outputs.
#[derive(Debug)]
pub(crate) struct Run {
    position: Position,
    sent: u32,
    pub(crate) queue: VecDeque<Event>,
    pub(crate) memory: Memory,
    pub(crate) sensory: Memory,
    pub(crate) long_term: LongTermMemory,
    pub(crate) outputs: Vec<Value>,
    /// The model every call of the run goes to instead of the one it names: the key's
    /// budget is spent, and the budget says to fall back to it.
    pub(crate) model_override: Option<String>,
}

impl Run {
    pub(crate) fn new(position: Position, memory: Memory, long_term: LongTermMemory) -> Self {
        let sensory = Memory::default();
        Run {
            position,
            sent: 0,
            queue: VecDeque::new(),
            memory,
            sensory,
            long_term,
            outputs: Vec::new(),
            model_override: None,
        }
    }

    /// Gives `event` the next id of the run and queues it.
    pub(crate) fn enqueue(&mut self, mut event: Event, upstream: Option<&str>, action: Option<&str>) -> String {
        event.id = self.next_id();
        event.lineage = Lineage { upstream_event: upstream.map(str::to_string), action: action.map(str::to_string) };
        let id = event.id.clone();
        self.queue.push_back(event);
        id
    }

    /// The next id: `<position>/<n>`, the same in every attempt of the run.
    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("{}/{}", self.position, self.sent);
        self.sent += 1;
        id
    }
}
