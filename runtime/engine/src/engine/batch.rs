//! Running one micro-batch: per key in log order, keys concurrently, each key continuing
//! from where the batch before left it.

use std::collections::{HashMap, VecDeque};
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
use crate::journal::{CallId, JournalEntry, Outcome};
use crate::outputs::{DeadLetter, Output};
use crate::position::Position;
use crate::trace::{EventTrace, SpanEnd, Trace};
use crate::trace_parent::{TRACE_PARENT_ATTRIBUTE, TRACE_STATE_ATTRIBUTE};
use crate::wait::{Awaited, NOTICE_FIELD, Notice, Queued, Signal, Suspension, Wake};

/// The events of one key in a batch, in log order.
#[derive(Debug)]
pub(crate) struct KeyEvents {
    pub(crate) key: String,
    pub(crate) events: Vec<(Position, Bytes)>,
    /// The trace context the producer's request carried, of the events that had one.
    pub(crate) trace_parents: HashMap<Position, (String, Option<String>)>,
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
    /// `Some(new)` when the key's wait changed: begun, an event queued, or ended (`Some(None)`).
    pub(crate) wait: Option<Option<Arc<Suspension>>>,
    /// How many of the key's waits ended in this batch.
    pub(crate) resumed: usize,
}

/// A key as a batch finds and leaves it: its state and, if it waits, its suspension.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySnapshot {
    pub(crate) state: Option<Bytes>,
    pub(crate) wait: Option<Arc<Suspension>>,
}

/// A key's snapshot once an earlier batch, still running or committing, is done with it.
/// An error means that batch's run of the key ended without one (it panicked or was
/// aborted): the later batch must not run the key then.
pub(crate) type Handoff = Shared<oneshot::Receiver<KeySnapshot>>;

/// Where a key's events start from.
#[derive(Debug)]
pub(crate) enum StartState {
    /// The committed snapshot.
    Committed(KeySnapshot),
    /// What an earlier batch in flight leaves.
    After(Handoff),
}

/// A key of a batch: its events, where they start from, and where the key's snapshot goes
/// when they are done (to the same key in the next batch).
#[derive(Debug)]
pub(crate) struct KeyRun {
    pub(crate) events: KeyEvents,
    pub(crate) start: StartState,
    pub(crate) handoff: oneshot::Sender<KeySnapshot>,
}

/// Groups a batch's events by key, keeping log order within each key.
pub(crate) fn group_by_key(events: Vec<(Position, crate::log::LogEvent)>) -> Vec<KeyEvents> {
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<KeyEvents> = Vec::new();
    for (position, event) in events {
        let slot = *slots.entry(event.key.clone()).or_insert_with(|| {
            groups.push(KeyEvents { key: event.key.clone(), events: Vec::new(), trace_parents: HashMap::new() });
            groups.len() - 1
        });
        if let Some(parent) = event.trace_parent {
            groups[slot].trace_parents.insert(position, (parent, event.trace_state));
        }
        groups[slot].events.push((position, event.payload));
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

/// How one run of one event ended.
enum EventEnd {
    /// Its actions succeeded: the state they left (`None`: unchanged) and their outputs
    /// beyond those committed before a wait.
    Done { new_state: Option<Option<Bytes>>, outputs: Vec<Output> },
    /// Dead-lettered.
    Dead(DeadLetter),
    /// Stopped at a wait: the suspension (its queue empty) and the outputs to commit with it.
    Suspended { suspension: Suspension, outputs: Vec<Output> },
    /// Something it needs is unavailable, or the batch stopped: the key goes no further.
    Stop,
}

/// What a run of an event carries over from its waits: its outputs' numbering (the first
/// `emitted` were committed before a wait and are dropped, the others are numbered from
/// `next_index`, after the waits' notices), and the wait it resumes at, if it resumes.
#[derive(Debug, Clone, Default)]
struct Rerun {
    emitted: u32,
    next_index: u32,
    resumes: Option<(String, u32)>,
}

/// What running a key's items does as it goes: the outcome and the key's snapshot.
struct KeyRunner {
    agent: Arc<dyn Agent>,
    scope: Arc<CallScope>,
    settings: Arc<EngineSettings>,
    outcome: KeyOutcome,
    snapshot: KeySnapshot,
    wait_changed: bool,
    /// The producers' trace contexts of this batch's events of the key.
    trace_parents: HashMap<Position, (String, Option<String>)>,
}

async fn run_key(
    agent: Arc<dyn Agent>,
    scope: Arc<CallScope>,
    settings: Arc<EngineSettings>,
    group: KeyEvents,
    snapshot: KeySnapshot,
) -> (KeyOutcome, KeySnapshot) {
    let outcome = KeyOutcome { key: group.key.clone(), ..Default::default() };
    let trace_parents = group.trace_parents;
    let mut runner = KeyRunner { agent, scope, settings, outcome, snapshot, wait_changed: false, trace_parents };
    runner.run_items(group.events.into()).await;
    let KeyRunner { mut outcome, snapshot, wait_changed, .. } = runner;
    if wait_changed {
        outcome.wait = Some(snapshot.wait.clone());
    }
    (outcome, snapshot)
}

impl KeyRunner {
    /// Runs the key's events in order, its wait first if its time has come.
    async fn run_items(&mut self, mut items: VecDeque<(Position, Bytes)>) {
        let runner = self;
        if let Some(wait) = runner.snapshot.wait.clone().filter(|w| w.is_due(runner.scope.clock.now_ms()))
            && !runner.resume(&wait, Wake::TimedOut, &mut items).await
        {
            return;
        }
        while let Some((position, payload)) = items.pop_front() {
            let key = runner.outcome.key.clone();
            let decoded = match runner.check(position, &payload) {
                Some(decoded) => decoded,
                None => continue,
            };
            let signal = Signal::from_payload(&decoded);
            match (runner.snapshot.wait.clone(), signal) {
                (_, Some(Err(reason))) => runner.reject(position, &payload, reason),
                (Some(wait), Some(Ok(signal))) if wait.awaited.matches(&signal) => {
                    if !runner.resume(&wait, Wake::Signal(signal.payload), &mut items).await {
                        break;
                    }
                }
                (None, Some(Ok(signal))) => runner.reject(
                    position,
                    &payload,
                    format!(
                        "signal `{}` `{}` matches no wait: key `{key}` is not waiting",
                        signal.kind, signal.correlation_id
                    ),
                ),
                // Any other event of a waiting key queues behind the wait, a signal too: it
                // may answer a wait that a queued event will begin.
                (Some(mut wait), _) => {
                    // What earlier attempts journaled for it goes with it: after this commit
                    // the journal files that hold it are behind the head.
                    let journal = runner.scope.journal.entries_of(position, &key);
                    let queued = Queued::new(position, &payload, journal).expect("checked to be JSON");
                    Arc::make_mut(&mut wait).queued.push(queued);
                    runner.snapshot.wait = Some(wait);
                    runner.wait_changed = true;
                }
                (None, None) => {
                    let event = LogInput { key, position, payload: decoded };
                    if !runner.run(event, payload, Rerun::default()).await {
                        break;
                    }
                }
            }
        }
    }

    /// Dead-letters an event that is too large or not JSON; otherwise returns it decoded.
    fn check(&mut self, position: Position, payload: &Bytes) -> Option<serde_json::Value> {
        let reason = if payload.len() > self.settings.max_event_bytes {
            format!("event of {} bytes exceeds max_event_bytes={}", payload.len(), self.settings.max_event_bytes)
        } else {
            match serde_json::from_slice(payload) {
                Ok(value) => return Some(value),
                Err(e) => format!("payload is not JSON: {e}"),
            }
        };
        self.reject(position, payload, reason);
        None
    }

    /// Dead-letters an event without running it.
    fn reject(&mut self, position: Position, payload: &Bytes, reason: String) {
        tracing::warn!(key = %self.outcome.key, %position, %reason, "dead-lettering event");
        let trace = Trace::new(self.scope.clock.clone());
        self.outcome.traces.push(self.traced(position, trace, SpanEnd::failed(&reason)));
        self.outcome.dead_letters.push(DeadLetter {
            key: self.outcome.key.clone(),
            event: position,
            payload: payload.clone(),
            reason,
            attempts: 0,
        });
    }

    fn traced(&self, position: Position, trace: Trace, end: SpanEnd) -> EventTrace {
        let end = match self.trace_parents.get(&position) {
            Some((parent, Some(state))) => {
                end.attribute(TRACE_PARENT_ATTRIBUTE, parent.as_str()).attribute(TRACE_STATE_ATTRIBUTE, state.as_str())
            }
            Some((parent, None)) => end.attribute(TRACE_PARENT_ATTRIBUTE, parent.as_str()),
            None => end,
        };
        EventTrace { commit_seq: 0, key: self.outcome.key.clone(), event: position, spans: trace.finish(end) }
    }

    /// Ends the key's wait with `wake` and runs its event again, then puts the events that
    /// queued behind it first in line. False if the key can go no further in this batch.
    async fn resume(&mut self, wait: &Suspension, wake: Wake, items: &mut VecDeque<(Position, Bytes)>) -> bool {
        let (key, position) = (self.outcome.key.clone(), wait.event.event);
        tracing::debug!(%key, %position, awaited = %wait.awaited, ?wake, "resuming a waiting event");
        self.snapshot.wait = None;
        self.wait_changed = true;
        self.outcome.resumed += 1;
        let journal = &self.scope.journal;
        journal.seed(wait.journal.iter().cloned());
        // An earlier attempt's decision stands: its later calls were made on it.
        let call = CallId { event: position, key: key.clone(), branch: wait.branch.clone(), step: wait.step };
        if journal.lookup(&call).is_none() {
            let outcome = Outcome::done(&wake).expect("a wake serializes");
            journal.record(JournalEntry { call, name: wait.name.clone(), outcome });
        }
        for queued in wait.queued.iter().rev() {
            journal.seed(queued.journal.iter().cloned());
            items.push_front((queued.event, queued.bytes()));
        }
        let payload = wait.event.bytes();
        let decoded = serde_json::from_slice(&payload).expect("a suspended event is JSON");
        let rerun = Rerun {
            emitted: wait.emitted,
            next_index: wait.next_index(),
            resumes: Some((wait.branch.clone(), wait.step)),
        };
        self.run(LogInput { key, position, payload: decoded }, payload, rerun).await
    }

    /// Runs one event and records how it ended. False if the key can go no further.
    async fn run(&mut self, event: LogInput, payload: Bytes, rerun: Rerun) -> bool {
        let position = event.position;
        match self.attempts(&event, payload, rerun).await {
            EventEnd::Done { new_state, outputs } => {
                if let Some(new_state) = new_state {
                    self.snapshot.state = new_state.clone();
                    self.outcome.new_state = Some(new_state);
                }
                self.outcome.outputs.extend(outputs);
            }
            EventEnd::Dead(dead) => self.outcome.dead_letters.push(dead),
            EventEnd::Suspended { suspension, outputs } => {
                tracing::debug!(key = %event.key, %position, awaited = %suspension.awaited, "event waits");
                self.outcome.outputs.extend(outputs);
                self.snapshot.wait = Some(Arc::new(suspension));
                self.wait_changed = true;
            }
            EventEnd::Stop => return false,
        }
        true
    }

    /// Runs an event's actions until they succeed, wait, are rejected or fail
    /// `max_attempts` times.
    async fn attempts(&mut self, event: &LogInput, payload: Bytes, rerun: Rerun) -> EventEnd {
        let Rerun { emitted, next_index, resumes } = rerun;
        let (key, position, scope) = (event.key.clone(), event.position, self.scope.clone());
        let dead = |reason: String, attempts: u32| DeadLetter {
            key: key.clone(),
            event: position,
            payload: payload.clone(),
            reason,
            attempts,
        };
        // Outputs committed before a wait are emitted again by the run after it: dropped.
        let numbered = |outputs: Vec<serde_json::Value>| -> Vec<Output> {
            let new = outputs.into_iter().skip(emitted as usize).enumerate();
            new.map(|(i, payload)| Output { key: key.clone(), event: position, index: next_index + i as u32, payload })
                .collect()
        };
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
            let state = self.snapshot.state.clone();
            let mut ctx = EventContext::new(scope.clone(), key.clone(), position, state);
            if let Some((branch, step)) = &resumes {
                ctx.resumes_at(branch, *step);
            }
            let result = AssertUnwindSafe(self.agent.on_event(event, &mut ctx)).catch_unwind().await;
            let unavailable = match &result {
                Ok(Err(e)) if e.is::<Unavailable>() => Some(e.to_string()),
                Ok(Err(e)) => ctx.unavailable().map(|store| format!("{e} (store: {store})")),
                _ => None,
            };
            if let Some(reason) = unavailable {
                // Not the event's fault: no attempt is counted, and the key goes no further
                // in this batch, which will not commit.
                tracing::warn!(%key, %position, %reason, "event waits: something it needs is unavailable");
                self.outcome.unavailable = Some(reason);
                return EventEnd::Stop;
            }
            if let (Ok(_), Some(wait)) = (&result, ctx.take_wait()) {
                // Suspended (whether the action passed the wait's error on or not): state
                // changes are made again after the wait; outputs go out now, once.
                let journal = scope.journal.entries_of(position, &key);
                let (_, outputs, _) = ctx.finish();
                let mut outputs = numbered(outputs);
                let emitted = emitted + outputs.len() as u32;
                // The wait's notice (an approval request) goes out once, after the outputs.
                let (mut notice, deliver) = match wait.notice {
                    Some(Notice::Delivered(notice)) => (Some(notice), true),
                    Some(Notice::Held(held)) => (Some(held), false),
                    None => (None, false),
                };
                // Named with the wait and its expiry, so that a sink can make answers
                // (approval links) that expire with it.
                if let (Some(fields), Awaited::Signal { kind, correlation_id }) =
                    (notice.as_mut().and_then(|n| n.as_object_mut()), &wait.awaited)
                {
                    let about = serde_json::json!({"type": kind, "correlation_id": correlation_id, "expires_at_ms": wait.due_ms});
                    fields.insert(NOTICE_FIELD.to_string(), about);
                }
                if let (Some(notice), true) = (&notice, deliver) {
                    let index = next_index + outputs.len() as u32;
                    outputs.push(Output { key: key.clone(), event: position, index, payload: notice.clone() });
                }
                let kept_notice = notice;
                let next_index = next_index + outputs.len() as u32;
                let suspension = Suspension {
                    event: Queued::new(position, &payload, Vec::new()).expect("the event ran, so it is JSON"),
                    branch: wait.branch,
                    step: wait.step,
                    name: wait.name,
                    awaited: wait.awaited,
                    due_ms: wait.due_ms,
                    journal,
                    emitted,
                    next_index: Some(next_index),
                    queued: Vec::new(),
                    since_ms: scope.clock.now_ms(),
                    notice: kept_notice,
                };
                return EventEnd::Suspended { suspension, outputs };
            }
            let error = match result {
                Ok(Ok(())) => {
                    let (new_state, outputs, trace) = ctx.finish();
                    self.outcome.traces.push(self.traced(position, trace, root(SpanEnd::ok(), attempt, &retries)));
                    return EventEnd::Done { new_state, outputs: numbered(outputs) };
                }
                Ok(Err(e)) if e.is::<Rejected>() => {
                    tracing::warn!(%key, %position, reason = %e, "event rejected");
                    let reason = format!("rejected: {e}");
                    let end = root(SpanEnd::failed(&reason), attempt, &retries);
                    self.outcome.traces.push(self.traced(position, ctx.finish().2, end));
                    return EventEnd::Dead(dead(reason, attempt));
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("action panicked: {}", panic_message(&panic)),
            };
            if scope.stopped() {
                // Fenced or abandoned: the batch will not commit, so the event is neither
                // retried nor dead-lettered here; the invocation that took over handles it.
                tracing::debug!(%key, %position, error = %error, "batch stopped");
                return EventEnd::Stop;
            }
            if attempt >= self.settings.max_attempts.max(1) {
                tracing::warn!(%key, %position, attempts = attempt, error = %error, "dead-lettering event");
                let reason = format!("actions failed after {attempt} attempts: {error}");
                let end = root(SpanEnd::failed(&error), attempt, &retries);
                self.outcome.traces.push(self.traced(position, ctx.finish().2, end));
                return EventEnd::Dead(dead(reason, attempt));
            }
            retries.push(error.clone());
            tracing::debug!(%key, %position, attempt, error = %error, "retrying event");
            let backoff = self.settings.retry_backoff_ms.saturating_mul(1 << (attempt - 1).min(16));
            tokio::time::sleep(EngineSettings::ms(backoff)).await;
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}
