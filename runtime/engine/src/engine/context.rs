//! The context an agent handles an event with: state, outputs and durable calls.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_128;

use super::fence::Fence;
use crate::budget::BudgetAccount;
use crate::clock::Clock;
use crate::journal::{CallId, Journal, JournalEntry, Outcome};
use crate::manifest::{PartitionDir, Writer};
use crate::position::Position;
use crate::shadow::Record;
use crate::trace::Trace;
use crate::wait::{Awaited, Notice, PendingWait, WaitError, Wake};

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
    /// Set when the batch can no longer commit (its invocation stopped): calls not yet
    /// started are not started, so none starts after the next invocation read the journal.
    pub(crate) abandoned: AtomicBool,
    /// Where at-most-once calls take their intents, and as whom.
    pub(crate) dir: PartitionDir,
    pub(crate) writer: Writer,
    pub(crate) fence: Arc<Fence>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Collection's grace period: an intent taken longer than half of it after the fence
    /// check before it needs a second check.
    pub(crate) gc_grace_ms: u64,
    /// In a shadow run, production's record of the events of the range.
    pub(crate) records: Option<Records>,
    /// The partition's side of the agent's budget, when the agent has one.
    pub(crate) budget: Option<Arc<BudgetAccount>>,
}

/// Production's record of a shadow's range.
pub(crate) type Records = Arc<crate::shadow::Records>;

impl CallScope {
    /// Whether calls may still start: the batch can still commit as far as this invocation knows.
    pub(crate) fn stopped(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst) || self.fence.is_fenced()
    }
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
        idempotency_key: String,
    },
    /// A newer invocation claimed the partition: this one makes no more calls, and its
    /// batch will not commit.
    #[error("durable call `{name}` not made: the invocation was fenced by a newer one")]
    Fenced {
        /// The call's name.
        name: String,
    },
    /// The journal recorded another call at this step: the action's calls changed order
    /// since the event's earlier attempt (a deploy). The recorded result is not handed over.
    #[error(
        "durable call `{name}` meets a journaled call `{journaled}` at its step: the action's calls changed since the event's earlier attempt"
    )]
    Mismatch {
        /// The call's name.
        name: String,
        /// The name the journal recorded at this step.
        journaled: String,
    },
    /// The store could not be reached to make the call safely (its fence check or its
    /// intent): the event is not at fault, and its batch will not commit.
    #[error("durable call `{name}` not made: the store is unavailable: {reason}")]
    Unavailable {
        /// The call's name.
        name: String,
        /// The store's error.
        reason: String,
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
    trace: Trace,
    calls: CallSequence,
    /// Set when a durable call could not reach the store: whatever the action returns then,
    /// its failure is not the event's fault.
    unavailable: std::sync::Mutex<Option<String>>,
    record: Option<Record>,
    /// The first wait this attempt met without an outcome: the event suspends there.
    pending_wait: std::sync::Mutex<Option<PendingWait>>,
    /// The wait (branch, step) this run resumes at: the last wait whose outcome the journal
    /// gives (with those before it on its branch). Any later wait suspends afresh, so that a
    /// decision journaled by an attempt that did not commit never stands in for the signal
    /// the key has not yet received.
    resumes: Option<(String, u32)>,
}

impl EventContext {
    pub(crate) fn new(scope: Arc<CallScope>, key: String, event: Position, state: Option<Bytes>) -> Self {
        EventContext {
            key,
            event,
            state,
            state_changed: false,
            outputs: Vec::new(),
            trace: Trace::new(scope.clock.clone()),
            calls: CallSequence::new(String::new()),
            unavailable: Default::default(),
            record: scope.records.as_ref().map(|records| records.record(event)),
            pending_wait: Default::default(),
            resumes: None,
            scope,
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

    /// In a shadow run, production's record of this event (the calls it made, for the agent
    /// to answer the same calls from) and the policy for calls it lacks
    /// (`docs/replay.md`). `None` outside shadow runs.
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// The spans of this attempt at the event: what its handling records of its actions and
    /// calls, committed with the batch when this attempt decides the event
    /// (`docs/observability.md`).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Whether the agent's budget ([`Agent::spend_limit`](crate::Agent::spend_limit)) lets
    /// this event, starting at `now_ms`, spend: `None` if it does, or why not. The answer is
    /// journaled, so every attempt at the event gets the first attempt's answer; asking
    /// takes a slice of the budget from its ledger when the partition's grant is spent
    /// (docs/observability.md, "Budgets per agent"). `None` when the agent has no budget.
    ///
    /// ```
    /// # async fn demo(ctx: &weir_engine::EventContext) -> Result<(), weir_engine::ActionError> {
    /// if let Some(reason) = ctx.agent_budget(1_000).await? {
    ///     return Err(weir_engine::Rejected::new(reason).into());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn agent_budget(&self, now_ms: u64) -> Result<Option<String>, DurableError<crate::Error>> {
        let Some(account) = self.scope.budget.clone() else { return Ok(None) };
        let admit = account.clone();
        let branch = self.branch("weir.agent-budget");
        let answer = branch.durable("agent budget", async move { admit.admit(now_ms).await }).await?;
        // A replayed answer's event spends in the period it was checked in, too.
        account.checked(account.limit().period(now_ms));
        Ok(answer)
    }

    /// A branch of this event's handling with calls numbered on their own, so that
    /// concurrent branches may interleave in any order and still replay.
    ///
    /// A label must name the same branch in every attempt (an event id, a request number),
    /// and each label is used once per event: a second branch of the same label would
    /// number its calls from 0 again and replay the first one's results.
    ///
    /// ```
    /// # async fn demo(ctx: &weir_engine::EventContext) -> Result<(), weir_engine::DurableError<std::io::Error>> {
    /// use weir_engine::Durable;
    ///
    /// let (a, b) = (ctx.branch("chat-0"), ctx.branch("chat-1"));
    /// let (x, y) = futures::join!(
    ///     a.durable("ask", async { Ok::<_, std::io::Error>(1) }),
    ///     b.durable("ask", async { Ok::<_, std::io::Error>(2) }),
    /// );
    /// assert_eq!((x?, y?), (1, 2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn branch(&self, label: &str) -> Branch<'_> {
        Branch { ctx: self, calls: CallSequence::new(label.to_string()) }
    }

    /// Whether this attempt met a wait it could not answer: the event suspends there when
    /// the action returns, whatever it returns. An agent that collects outputs to emit at
    /// the end emits those sent before the wait then (docs/waits.md, "Outputs").
    pub fn is_suspended(&self) -> bool {
        self.pending_wait.lock().expect("pending wait").is_some()
    }

    /// Makes this attempt a resumption at the wait `step` of `branch`.
    pub(crate) fn resumes_at(&mut self, branch: &str, step: u32) {
        self.resumes = Some((branch.to_string(), step));
    }

    /// The wait this attempt suspended at, if any.
    pub(crate) fn take_wait(&self) -> Option<PendingWait> {
        self.pending_wait.lock().expect("pending wait").take()
    }

    /// Why a durable call of this attempt could not reach the store, if one could not.
    pub(crate) fn unavailable(&self) -> Option<String> {
        self.unavailable.lock().expect("unavailable").clone()
    }

    /// The state, outputs and trace this attempt produced.
    pub(crate) fn finish(self) -> (Option<Option<Bytes>>, Vec<serde_json::Value>, Trace) {
        let state = self.state_changed.then_some(self.state);
        (state, self.outputs, self.trace)
    }
}

/// A branch of an event's handling: durable calls numbered apart from the others.
#[derive(Debug)]
pub struct Branch<'a> {
    ctx: &'a EventContext,
    calls: CallSequence,
}

impl Durable for EventContext {
    fn calls(&self) -> Calls<'_> {
        Calls { ctx: self, sequence: &self.calls }
    }
}

impl Durable for Branch<'_> {
    fn calls(&self) -> Calls<'_> {
        Calls { ctx: self.ctx, sequence: &self.calls }
    }
}

/// Durable calls, written once for every handle that makes them: an [`EventContext`], a
/// [`Branch`], and contexts built on them (the agent crate's). An implementor only says
/// where its calls are numbered.
///
/// ```
/// use weir_engine::{ActionError, Agent, Durable, EventContext, LogInput};
///
/// struct Scorer;
///
/// #[async_trait::async_trait]
/// impl Agent for Scorer {
///     async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
///         let score: u64 = ctx.durable("score", async { Ok::<_, std::io::Error>(4) }).await?;
///         ctx.emit(&serde_json::json!({"key": event.key, "score": score}))?;
///         Ok(())
///     }
/// }
/// ```
pub trait Durable {
    /// Where this handle's calls are numbered.
    fn calls(&self) -> Calls<'_>;

    /// The idempotency key the next durable call will carry.
    fn next_idempotency_key(&self) -> String {
        let Calls { ctx, sequence } = self.calls();
        sequence.idempotency_key(ctx, sequence.next_step.load(Ordering::SeqCst))
    }

    /// Runs `call` once for this event: its result is journaled, and a replay returns the
    /// journaled result without running it again.
    ///
    /// Calls are numbered in the order `durable` is called, so several may run at once
    /// (`futures::join!`) as long as the order of the calls is deterministic. Where it is
    /// not (a loop whose next call depends on which of several concurrent calls ends first),
    /// give each concurrent part its own [`branch`](EventContext::branch).
    fn durable<'a, T, E, F>(
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
    fn durable_call<'a, T, E, F, C>(
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
        let Calls { ctx, sequence } = self.calls();
        let step = sequence.next_step.fetch_add(1, Ordering::SeqCst);
        let id = CallId { event: ctx.event, key: ctx.key.clone(), branch: sequence.branch.clone(), step };
        let idempotency_key = sequence.idempotency_key(ctx, step);
        let name = name.to_string();
        async move {
            let scope = &ctx.scope;
            let journal_error = |reason: String| DurableError::Journal { name: name.clone(), reason };
            match scope.journal.lookup(&id) {
                Some(entry) if entry.name != name => {
                    return Err(DurableError::Mismatch { name, journaled: entry.name });
                }
                Some(JournalEntry { outcome: Outcome::Done(value), .. }) => {
                    scope.counts.replayed.fetch_add(1, Ordering::Relaxed);
                    return serde_json::from_str(value.get()).map_err(|e| journal_error(e.to_string()));
                }
                Some(JournalEntry { outcome: Outcome::Intent, .. }) => {
                    return Err(DurableError::Interrupted { name, idempotency_key });
                }
                None => {}
            }
            if scope.stopped() {
                return Err(stopped(scope, name));
            }
            if mode == CallMode::AtMostOnce && !take_intent(ctx, &id, &name, &idempotency_key).await? {
                return Err(DurableError::Interrupted { name, idempotency_key });
            }
            scope.counts.executed.fetch_add(1, Ordering::Relaxed);
            let value =
                call(idempotency_key).await.map_err(|source| DurableError::Failed { name: name.clone(), source })?;
            let recorded = Outcome::done(&value).map_err(|e| journal_error(e.to_string()))?;
            scope.journal.record(JournalEntry { call: id, name, outcome: recorded });
            Ok(value)
        }
    }

    /// Suspends the key until a [`Signal`](crate::Signal) of `kind` with `correlation_id`
    /// arrives as an event of this key, or `timeout` passes; returns which came first.
    ///
    /// The first time an attempt meets the wait it returns [`WaitError::Suspended`]: pass it
    /// on with `?`. The engine commits the suspension with the batch, queues the key's later
    /// events behind it, and runs the event again when the signal or the timeout comes; the
    /// calls before the wait then replay from the journal and the wait returns its outcome
    /// (docs/waits.md). A wait is a step of this handle's calls, like
    /// [`durable`](Self::durable); one event waits for one thing at a time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_engine::{ActionError, Agent, Durable, EventContext, LogInput, Wake};
    ///
    /// /// Ships an order once a person confirms it, or cancels it after a day.
    /// struct Confirm;
    ///
    /// #[async_trait::async_trait]
    /// impl Agent for Confirm {
    ///     async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
    ///         let order = event.payload["order"].as_str().unwrap_or_default().to_string();
    ///         let decision = match ctx.wait_for("confirmation", &order, Duration::from_secs(86_400)).await? {
    ///             Wake::Signal(answer) if answer["ok"] == true => "ship",
    ///             _ => "cancel",
    ///         };
    ///         ctx.emit(&serde_json::json!({"order": order, "decision": decision}))?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn wait_for(
        &self,
        kind: &str,
        correlation_id: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Wake, WaitError>> + Send + '_ {
        let result = self.calls().signal_wait(kind, correlation_id, timeout, None);
        async move { result }
    }

    /// Like [`wait_for`](Self::wait_for), and when the attempt suspends, commits `notice`
    /// as an output of the event with the suspension, once: a request that someone answers
    /// with the signal (an approval request, which dispatch delivers to the sinks).
    ///
    /// ```
    /// # async fn demo(ctx: &weir_engine::EventContext) -> Result<(), weir_engine::WaitError> {
    /// use std::time::Duration;
    /// use weir_engine::Durable;
    ///
    /// let id = ctx.next_idempotency_key();
    /// let request = serde_json::json!({"approval_request": {"id": id, "tool": "restart", "node": "prod-3"}});
    /// let answer = ctx.wait_with_notice("approval", &id, Duration::from_secs(3600), request).await?;
    /// # Ok(())
    /// # }
    /// ```
    fn wait_with_notice(
        &self,
        kind: &str,
        correlation_id: &str,
        timeout: Duration,
        notice: serde_json::Value,
    ) -> impl Future<Output = Result<Wake, WaitError>> + Send + '_ {
        let result = self.calls().signal_wait(kind, correlation_id, timeout, Some(Notice::Delivered(notice)));
        async move { result }
    }

    /// Like [`wait_for`](Self::wait_for), and when the attempt suspends, keeps `held` in the
    /// suspension, where whoever reads the waits finds it ([`WaitingKey::notice`]), without
    /// committing it as an output: a request that a process of the agent's own answers with
    /// the signal (a model call through a provider's batch API, docs/batch-calls.md).
    ///
    /// ```
    /// # async fn demo(ctx: &weir_engine::EventContext) -> Result<(), weir_engine::WaitError> {
    /// use std::time::Duration;
    /// use weir_engine::Durable;
    ///
    /// let id = ctx.next_idempotency_key();
    /// let held = serde_json::json!({"model_batch_request": {"model": "reviewer", "request": {"messages": []}}});
    /// let reply = ctx.wait_holding("model_batch", &id, Duration::from_secs(25 * 3600), held).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`WaitingKey::notice`]: crate::WaitingKey::notice
    fn wait_holding(
        &self,
        kind: &str,
        correlation_id: &str,
        timeout: Duration,
        held: serde_json::Value,
    ) -> impl Future<Output = Result<Wake, WaitError>> + Send + '_ {
        let result = self.calls().signal_wait(kind, correlation_id, timeout, Some(Notice::Held(held)));
        async move { result }
    }

    /// Suspends the key until the engine's clock reads `at_ms` (milliseconds since the
    /// epoch), like [`wait_for`](Self::wait_for) without a signal. A time already past
    /// returns at once.
    ///
    /// ```
    /// # async fn demo(ctx: &weir_engine::EventContext) -> Result<(), weir_engine::WaitError> {
    /// use weir_engine::Durable;
    ///
    /// // A reminder an hour after the order was placed.
    /// let placed_ms = 1_700_000_000_000;
    /// ctx.sleep_until(placed_ms + 3_600_000).await?;
    /// # Ok(())
    /// # }
    /// ```
    fn sleep_until(&self, at_ms: u64) -> impl Future<Output = Result<(), WaitError>> + Send + '_ {
        let result = self.calls().wait("sleep".to_string(), Awaited::Timer, at_ms, None).map(|_| ());
        async move { result }
    }
}

impl Calls<'_> {
    /// A wait for a signal of `kind` with `correlation_id`, timing out after `timeout`.
    fn signal_wait(
        self,
        kind: &str,
        correlation_id: &str,
        timeout: Duration,
        notice: Option<Notice>,
    ) -> Result<Wake, WaitError> {
        let name = format!("wait:{kind}:{correlation_id}");
        let awaited = Awaited::Signal { kind: kind.to_string(), correlation_id: correlation_id.to_string() };
        let timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        let due_ms = self.ctx.scope.clock.now_ms().saturating_add(timeout_ms);
        self.wait(name, awaited, due_ms, notice)
    }

    /// Answers a wait from the journal, or records it as the wait the attempt suspends at.
    fn wait(self, name: String, awaited: Awaited, due_ms: u64, notice: Option<Notice>) -> Result<Wake, WaitError> {
        let Calls { ctx, sequence } = self;
        let step = sequence.next_step.fetch_add(1, Ordering::SeqCst);
        let id = CallId { event: ctx.event, key: ctx.key.clone(), branch: sequence.branch.clone(), step };
        let journal_error = |reason: String| WaitError::Journal { name: name.clone(), reason };
        // The wait resumed at, and the waits before it on its branch: those ended in
        // resumptions that committed (each decision was copied into the suspension the
        // event then committed at the later wait), so an event that waits twice in turn
        // goes past the first one when it resumes at the second.
        let decided = ctx.resumes.as_ref().is_some_and(|(branch, at)| *branch == id.branch && step <= *at);
        match ctx.scope.journal.lookup(&id).filter(|_| decided) {
            Some(entry) if entry.name != name => {
                return Err(WaitError::Mismatch { name, journaled: entry.name });
            }
            Some(JournalEntry { outcome: Outcome::Done(value), .. }) => {
                return serde_json::from_str(value.get()).map_err(|e| journal_error(e.to_string()));
            }
            Some(JournalEntry { outcome: Outcome::Intent, .. }) => {
                return Err(journal_error("the journal holds an intent at the wait's step".into()));
            }
            None => {}
        }
        // A time already past needs no suspension: it stays past in every later attempt.
        if due_ms <= ctx.scope.clock.now_ms() {
            return Ok(Wake::TimedOut);
        }
        let what = awaited.to_string();
        let mut pending = ctx.pending_wait.lock().expect("pending wait");
        // Only the first wait of an attempt suspends it; a later one is met again after it.
        if pending.is_none() {
            *pending = Some(PendingWait { branch: id.branch, step, name, awaited, due_ms: Some(due_ms), notice });
        }
        Err(WaitError::Suspended(what))
    }
}

/// Where a handle's durable calls are numbered: an event and one sequence of its calls.
#[derive(Debug, Clone, Copy)]
pub struct Calls<'a> {
    ctx: &'a EventContext,
    sequence: &'a CallSequence,
}

/// Numbers the durable calls of one branch and runs them through the journal.
#[derive(Debug)]
struct CallSequence {
    branch: String,
    next_step: AtomicU32,
}

impl CallSequence {
    fn new(branch: String) -> Self {
        CallSequence { branch, next_step: AtomicU32::new(0) }
    }

    /// Keys of the unnamed branch leave the branch out, as they did before branches existed.
    fn idempotency_key(&self, ctx: &EventContext, step: u32) -> String {
        let (prefix, key, event) = (&ctx.scope.key_prefix, &ctx.key, ctx.event);
        let id = match self.branch.as_str() {
            "" => format!("{prefix}\0{key}\0{event}\0{step}"),
            branch => format!("{prefix}\0{key}\0{event}\0{branch}\0{step}"),
        };
        format!("{:032x}", xxh3_128(id.as_bytes()))
    }
}

/// Why a call of a batch that can no longer commit was not made.
fn stopped<E>(scope: &CallScope, name: String) -> DurableError<E> {
    if scope.fence.is_fenced() {
        DurableError::Fenced { name }
    } else {
        DurableError::Journal { name, reason: "its batch was abandoned: the invocation stopped".into() }
    }
}

/// Takes an at-most-once call's intent object after checking that the invocation is not
/// fenced (docs/storage-format.md, "Exclusive at-most-once calls" and the rules after it).
/// `Ok(false)`: another invocation holds the call.
async fn take_intent<E>(
    ctx: &EventContext,
    call: &CallId,
    name: &str,
    idempotency_key: &str,
) -> Result<bool, DurableError<E>> {
    let scope = &ctx.scope;
    // The store client retries passing failures itself; one that persists is not the
    // event's fault.
    let failed = |e: crate::Error| {
        if scope.fence.is_fenced() {
            return DurableError::Fenced { name: name.to_string() };
        }
        *ctx.unavailable.lock().expect("unavailable") = Some(e.to_string());
        DurableError::Unavailable { name: name.to_string(), reason: e.to_string() }
    };
    let checked_ms = scope.fence.check().await.map_err(failed)?;
    if !crate::intent::take(&scope.dir, call, name, idempotency_key, &scope.writer).await.map_err(failed)? {
        return Ok(false);
    }
    // Journaled too, but not waited for: an attempt of this invocation that meets the
    // call again reports it as interrupted without a request.
    let intent = JournalEntry { call: call.clone(), name: name.to_string(), outcome: Outcome::Intent };
    scope.journal.record(intent);
    if scope.clock.now_ms().saturating_sub(checked_ms) > scope.gc_grace_ms / 2 {
        scope.fence.check().await.map_err(failed)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Idempotency keys are stored by the providers and tools that dedupe on them: they
    /// must stay what every earlier version computed.
    #[tokio::test]
    async fn idempotency_keys_are_the_hash_of_the_call_identity() {
        let dir = crate::manifest::PartitionDir::new(crate::Storage::from_url("memory://").unwrap(), "a", 3).unwrap();
        let writer = Writer { epoch: 1, nonce: "n".into() };
        let fence = Arc::new(Fence::new(dir.clone(), writer.clone(), 1, Arc::new(crate::ManualClock::default())));
        let journal = Journal::start(
            dir.clone(),
            Position::new(0, 0),
            "n".into(),
            std::time::Duration::ZERO,
            Default::default(),
            fence.clone(),
            &crate::engine::Tasks::default(),
        );
        let scope = Arc::new(CallScope {
            journal,
            key_prefix: "root\0agent\x003".into(),
            counts: Arc::default(),
            abandoned: AtomicBool::new(false),
            dir,
            writer,
            fence,
            clock: Arc::new(crate::ManualClock::default()),
            gc_grace_ms: 0,
            records: None,
            budget: None,
        });
        let ctx = EventContext::new(scope, "product-7".into(), Position::new(42, 7), None);
        // xxh3_128 of the identity: root, agent, partition 3, key, event 42:7, step 0, each
        // ended by a NUL but the last; the named branch's label comes before the step.
        assert_eq!(ctx.next_idempotency_key(), "723dd311f745aca04168c507370fe658");
        assert_eq!(ctx.branch("chat-1").next_idempotency_key(), "7e3576645327c2188f9e343290c96361");
    }
}
