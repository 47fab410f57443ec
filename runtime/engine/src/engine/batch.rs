//! Running one micro-batch: per key in log order, keys concurrently, each key continuing
//! from where the batch before left it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::agent::{Agent, LogInput, Rejected, Unavailable};
use super::context::{CallScope, EventContext};
use super::settings::EngineSettings;
use crate::outputs::{DeadLetter, Output};
use crate::position::Position;
use crate::trace::{EventTrace, SpanEnd, Trace};
use crate::trace_parent::TRACE_PARENT_ATTRIBUTE;

/// The events of one key in a batch, in log order: each with its payload and the trace
/// context its producer's request carried.
#[derive(Debug)]
pub(crate) struct KeyEvents {
    pub(crate) key: String,
    pub(crate) events: Vec<(Position, Bytes, Option<String>)>,
}

/// What running a key's events produced.
#[derive(Debug, Default)]
pub(crate) struct KeyOutcome {
    pub(crate) key: String,
    /// `Some(new)` when the key's state changed (`Some(None)`: deleted).
    pub(crate) new_state: Option<Option<Bytes>>,
    pub(crate) outputs: Vec<Output>,
    pub(crate) dead_letters: Vec<DeadLetter>,
    /// The trace of each event the key's run decided (processed or dead-lettered).
    pub(crate) traces: Vec<EventTrace>,
    /// Set when an event's actions failed for something that is not the event's fault: the
    /// key stopped there, and the batch must not commit.
    pub(crate) unavailable: Option<String>,
}

/// A key's snapshot once an earlier batch, still running or committing, is done with it.
/// An error means that batch's run of the key ended without one (it panicked or was
/// aborted): the later batch must not run the key then.
pub(crate) type Handoff = Shared<oneshot::Receiver<Option<Bytes>>>;

/// Where a key's events start from.
#[derive(Debug)]
pub(crate) enum StartState {
    /// The committed snapshot.
    Committed(Option<Bytes>),
    /// What an earlier batch in flight leaves.
    After(Handoff),
}

/// A key of a batch: its events, where they start from, and where the key's snapshot goes
/// when they are done (to the same key in the next batch).
#[derive(Debug)]
pub(crate) struct KeyRun {
    pub(crate) events: KeyEvents,
    pub(crate) start: StartState,
    pub(crate) handoff: oneshot::Sender<Option<Bytes>>,
}

/// Groups a batch's events by key, keeping log order within each key.
pub(crate) fn group_by_key(events: Vec<(Position, crate::log::LogEvent)>) -> Vec<KeyEvents> {
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<KeyEvents> = Vec::new();
    for (position, event) in events {
        let slot = *slots.entry(event.key.clone()).or_insert_with(|| {
            groups.push(KeyEvents { key: event.key.clone(), events: Vec::new() });
            groups.len() - 1
        });
        groups[slot].events.push((position, event.payload, event.trace_parent));
    }
    groups
}

/// Runs every key's events, at most `max_concurrent_keys` keys at once, on the runtime's
/// worker threads. Dropping the returned future aborts the keys still running.
pub(crate) async fn run_batch(
    agent: Arc<dyn Agent>,
    scope: Arc<CallScope>,
    settings: Arc<EngineSettings>,
    keys: Vec<KeyRun>,
) -> Vec<KeyOutcome> {
    let mut pending = keys.into_iter();
    let mut running = JoinSet::new();
    let mut outcomes = Vec::new();
    loop {
        while running.len() < settings.max_concurrent_keys.max(1) {
            let Some(key) = pending.next() else { break };
            let (agent, scope, settings) = (agent.clone(), scope.clone(), settings.clone());
            running.spawn(async move {
                let state = match key.start {
                    StartState::Committed(state) => state,
                    StartState::After(earlier) => match earlier.await {
                        Ok(state) => state,
                        // Nothing to hand on either: this batch will not commit.
                        Err(_) => return KeyOutcome { key: key.events.key, ..Default::default() },
                    },
                };
                let (outcome, state) = run_key(agent, scope, settings, key.events, state).await;
                let _ = key.handoff.send(state);
                outcome
            });
        }
        match running.join_next().await {
            Some(Ok(outcome)) => outcomes.push(outcome),
            Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            None => break,
        }
    }
    outcomes
}

async fn run_key(
    agent: Arc<dyn Agent>,
    scope: Arc<CallScope>,
    settings: Arc<EngineSettings>,
    group: KeyEvents,
    mut state: Option<Bytes>,
) -> (KeyOutcome, Option<Bytes>) {
    let mut outcome = KeyOutcome { key: group.key.clone(), ..Default::default() };
    for (position, payload, trace_parent) in group.events {
        let traced = |trace: Trace, end: SpanEnd| EventTrace {
            commit_seq: 0,
            key: group.key.clone(),
            event: position,
            spans: trace.finish(match &trace_parent {
                Some(parent) => end.attribute(TRACE_PARENT_ATTRIBUTE, parent.as_str()),
                None => end,
            }),
        };
        let dead = |reason: String, attempts: u32| DeadLetter {
            key: group.key.clone(),
            event: position,
            payload: payload.clone(),
            reason,
            attempts,
        };
        if payload.len() > settings.max_event_bytes {
            let reason =
                format!("event of {} bytes exceeds max_event_bytes={}", payload.len(), settings.max_event_bytes);
            outcome.traces.push(traced(Trace::new(scope.clock.clone()), SpanEnd::failed(&reason)));
            outcome.dead_letters.push(dead(reason, 0));
            continue;
        }
        let decoded = match serde_json::from_slice(&payload) {
            Ok(value) => value,
            Err(e) => {
                let reason = format!("payload is not JSON: {e}");
                outcome.traces.push(traced(Trace::new(scope.clock.clone()), SpanEnd::failed(&reason)));
                outcome.dead_letters.push(dead(reason, 0));
                continue;
            }
        };
        let event = LogInput { key: group.key.clone(), position, payload: decoded };
        let mut attempt = 0;
        // The errors of the attempts before the one that decides the event, for its trace.
        let mut retries: Vec<String> = Vec::new();
        let root = |end: SpanEnd, attempt: u32, retries: &[String]| {
            let end = end.attribute("weir.attempts", attempt);
            match retries.is_empty() {
                true => end,
                false => end.attribute("weir.retries", retries.to_vec()),
            }
        };
        loop {
            attempt += 1;
            let mut ctx = EventContext::new(scope.clone(), group.key.clone(), position, state.clone());
            let result = AssertUnwindSafe(agent.on_event(&event, &mut ctx)).catch_unwind().await;
            let unavailable = match &result {
                Ok(Err(e)) if e.is::<Unavailable>() => Some(e.to_string()),
                Ok(Err(e)) => ctx.unavailable().map(|store| format!("{e} (store: {store})")),
                _ => None,
            };
            if let Some(reason) = unavailable {
                // Not the event's fault: no attempt is counted, and the key goes no further
                // in this batch, which will not commit.
                tracing::warn!(key = %group.key, %position, %reason, "event waits: something it needs is unavailable");
                outcome.unavailable = Some(reason);
                return (outcome, state);
            }
            let error = match result {
                Ok(Ok(())) => {
                    let (new_state, outputs, trace) = ctx.finish();
                    outcome.traces.push(traced(trace, root(SpanEnd::ok(), attempt, &retries)));
                    if let Some(new_state) = new_state {
                        state = new_state.clone();
                        outcome.new_state = Some(new_state);
                    }
                    let outputs = outputs.into_iter().enumerate();
                    outcome.outputs.extend(outputs.map(|(i, payload)| Output {
                        key: group.key.clone(),
                        event: position,
                        index: i as u32,
                        payload,
                    }));
                    break;
                }
                Ok(Err(e)) if e.is::<Rejected>() => {
                    tracing::warn!(key = %group.key, %position, reason = %e, "event rejected");
                    let reason = format!("rejected: {e}");
                    outcome.traces.push(traced(ctx.finish().2, root(SpanEnd::failed(&reason), attempt, &retries)));
                    outcome.dead_letters.push(dead(reason, attempt));
                    break;
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("action panicked: {}", panic_message(&panic)),
            };
            if scope.stopped() {
                // Fenced or abandoned: the batch will not commit, so the event is neither
                // retried nor dead-lettered here; the invocation that took over handles it.
                tracing::debug!(key = %group.key, %position, error = %error, "batch stopped");
                return (outcome, state);
            }
            if attempt >= settings.max_attempts.max(1) {
                tracing::warn!(key = %group.key, %position, attempts = attempt, error = %error, "dead-lettering event");
                let reason = format!("actions failed after {attempt} attempts: {error}");
                outcome.traces.push(traced(ctx.finish().2, root(SpanEnd::failed(&error), attempt, &retries)));
                outcome.dead_letters.push(dead(reason, attempt));
                break;
            }
            retries.push(error.clone());
            tracing::debug!(key = %group.key, %position, attempt, error = %error, "retrying event");
            let backoff = settings.retry_backoff_ms.saturating_mul(1 << (attempt - 1).min(16));
            tokio::time::sleep(EngineSettings::ms(backoff)).await;
        }
    }
    (outcome, state)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}
