//! The context an agent handles an event with: state, outputs and durable calls.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_128;

use crate::journal::{CallId, Journal, JournalEntry, Outcome};
use crate::position::Position;

/// Counts of durable calls, over an invocation.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// Calls whose future ran.
    pub executed: AtomicU64,
    /// Calls answered from the journal.
    pub replayed: AtomicU64,
}

/// What every context of a batch shares.
#[derive(Debug)]
pub(crate) struct CallScope {
    pub(crate) journal: Arc<Journal>,
    /// Identifies the log, agent and partition in idempotency keys.
    pub(crate) key_prefix: String,
    pub(crate) counts: Arc<CallCounts>,
}

/// Why a durable call returned no value.
#[derive(Debug, thiserror::Error)]
pub enum DurableError<E> {
    /// The call itself failed (not journaled: it is made again when the event is retried).
    #[error("durable call `{name}` failed: {source}")]
    Failed {
        /// The call's name.
        name: String,
        /// The call's error.
        source: E,
    },
    /// An at-most-once call started in an earlier attempt and never reported back: it is
    /// not run again.
    #[error("at-most-once call `{name}` (idempotency key {idempotency_key}) was interrupted in an earlier attempt")]
    Interrupted {
        /// The call's name.
        name: String,
        /// Its idempotency key.
        idempotency_key: String,
    },
    /// The journal could not record or replay the call.
    #[error("journal of durable call `{name}`: {reason}")]
    Journal {
        /// The call's name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// How often a durable call may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// Retried with the same idempotency key until its result is journaled.
    AtLeastOnce,
    /// Its intent is journaled before it runs; if interrupted it is never run again.
    AtMostOnce,
}

/// Everything an agent may touch while handling one event.
#[derive(Debug)]
pub struct EventContext {
    scope: Arc<CallScope>,
    key: String,
    event: Position,
    state: Option<Bytes>,
    state_changed: bool,
    outputs: Vec<serde_json::Value>,
    next_step: AtomicU32,
}

impl EventContext {
    pub(crate) fn new(scope: Arc<CallScope>, key: String, event: Position, state: Option<Bytes>) -> Self {
        EventContext {
            scope,
            key,
            event,
            state,
            state_changed: false,
            outputs: Vec::new(),
            next_step: AtomicU32::new(0),
        }
    }

    /// The event's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The event's log position.
    pub fn position(&self) -> Position {
        self.event
    }

    /// The key's state, as the previous event of the key left it.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.state.as_deref().map(serde_json::from_slice).transpose()
    }

    /// Replaces the key's state.
    pub fn set_state<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        self.state = Some(Bytes::from(serde_json::to_vec(value)?));
        self.state_changed = true;
        Ok(())
    }

    /// Deletes the key's state.
    pub fn clear_state(&mut self) {
        self.state = None;
        self.state_changed = true;
    }

    /// Emits an output; it is committed with the batch.
    pub fn emit<T: Serialize + ?Sized>(&mut self, output: &T) -> Result<(), serde_json::Error> {
        self.outputs.push(serde_json::to_value(output)?);
        Ok(())
    }

    /// The idempotency key the next durable call will carry.
    pub fn next_idempotency_key(&self) -> String {
        self.idempotency_key(self.next_step.load(Ordering::SeqCst))
    }

    fn idempotency_key(&self, step: u32) -> String {
        let id = format!("{}\0{}\0{}\0{}", self.scope.key_prefix, self.key, self.event, step);
        format!("{:032x}", xxh3_128(id.as_bytes()))
    }

    /// Runs `call` once for this event: its result is journaled, and a replay returns the
    /// journaled result without running it again.
    ///
    /// Calls are numbered in the order `durable` is called, so several may run at once
    /// (`futures::join!`) as long as the order of the calls is deterministic.
    pub fn durable<'a, T, E, F>(
        &'a self,
        name: &str,
        call: F,
    ) -> impl Future<Output = Result<T, DurableError<E>>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        E: 'a,
        F: Future<Output = Result<T, E>> + Send + 'a,
    {
        self.durable_call(name, CallMode::AtLeastOnce, |_| call)
    }

    /// Like [`durable`](Self::durable), with the call's idempotency key handed to it and a
    /// choice of [`CallMode`].
    pub fn durable_call<'a, T, E, F, C>(
        &'a self,
        name: &str,
        mode: CallMode,
        call: C,
    ) -> impl Future<Output = Result<T, DurableError<E>>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        E: 'a,
        F: Future<Output = Result<T, E>> + Send + 'a,
        C: FnOnce(String) -> F + Send + 'a,
    {
        let step = self.next_step.fetch_add(1, Ordering::SeqCst);
        let id = CallId { key: self.key.clone(), event: self.event, step };
        let idempotency_key = self.idempotency_key(step);
        let name = name.to_string();
        async move {
            let journal = &self.scope.journal;
            let journal_error = |reason: String| DurableError::Journal { name: name.clone(), reason };
            match journal.lookup(&id) {
                Some(Outcome::Done(value)) => {
                    self.scope.counts.replayed.fetch_add(1, Ordering::Relaxed);
                    return serde_json::from_value(value).map_err(|e| journal_error(e.to_string()));
                }
                Some(Outcome::Intent) => return Err(DurableError::Interrupted { name, idempotency_key }),
                None => {}
            }
            if mode == CallMode::AtMostOnce {
                let intent = JournalEntry { call: id.clone(), name: name.clone(), outcome: Outcome::Intent };
                journal.record_durably(intent).await.map_err(journal_error)?;
            }
            self.scope.counts.executed.fetch_add(1, Ordering::Relaxed);
            let value =
                call(idempotency_key).await.map_err(|source| DurableError::Failed { name: name.clone(), source })?;
            let recorded = serde_json::to_value(&value).map_err(|e| journal_error(e.to_string()))?;
            journal.record(JournalEntry { call: id, name, outcome: Outcome::Done(recorded) });
            Ok(value)
        }
    }

    /// The state and outputs this attempt produced.
    pub(crate) fn finish(self) -> (Option<Option<Bytes>>, Vec<serde_json::Value>) {
        let state = self.state_changed.then_some(self.state);
        (state, self.outputs)
    }
}
