//! One invocation's hold on one partition: claim, pull, run, commit, compact.
//!
//! Batches are pipelined: up to `max_batches_in_flight` pulled batches run at once, each key
//! continuing in a later batch from the snapshot its earlier batch left, while commits go
//! one at a time, in order.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::oneshot;

use super::batch::{Handoff, KeyEvents, KeyOutcome, KeyRun, KeySnapshot, StartState, group_by_key, run_batch};
use super::context::{CallScope, Records};
use super::fence::Fence;
use super::{ClaimOptions, Shared, Tasks};
use crate::budget::{Amount, BudgetAccount, PartitionSpend};
use crate::committed::Commit;
use crate::error::{Error, Result};
use crate::journal::{self, CallId, Journal, JournalEntry};
use crate::layout;
use crate::log::{LogEvent, LogReader};
use crate::manifest::{CommitKind, FileRef, Manifest, PartitionDir, Writer};
use crate::outputs;
use crate::position::Position;
use crate::state;
use crate::trace;
use crate::wait::{self, Waits};

/// What one micro-batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    /// Input events processed (0 and no `seq`: the partition was caught up; nothing was
    /// committed; 0 with a `seq`: only waits whose time had come ran).
    pub events: usize,
    /// Distinct keys among them.
    pub keys: usize,
    /// Outputs committed.
    pub outputs: usize,
    /// Dead letters committed.
    pub dead_letters: usize,
    /// The batch's manifest, if it committed one.
    pub seq: Option<u64>,
    /// The position after the batch.
    pub position: Position,
    /// Time from the end of the actions to the commit: writing files and the manifest.
    pub commit_latency: Duration,
    /// Waits that ended (a signal came or a time passed) and whose events ran again.
    pub resumed: usize,
    /// Keys waiting after the batch.
    pub waiting: usize,
}

/// An invocation's claim on a partition. Created by [`Engine::claim`](super::Engine::claim).
#[derive(Debug)]
pub struct PartitionProcessor {
    shared: Arc<Shared>,
    dir: PartitionDir,
    head: Manifest,
    writer: Writer,
    /// When this invocation last knew its head to be the head of the chain.
    head_seen_ms: u64,
    reader: LogReader,
    /// Where the next batch to pull starts: the head's position when none is in flight.
    pulled: Position,
    /// What earlier attempts journaled for events from `pulled` on; `None` after a claim,
    /// until the first batch reads it from storage.
    replay: Option<HashMap<CallId, JournalEntry>>,
    /// A shadow run's record of its range: read by the first batch.
    records: Option<Records>,
    /// The suspended keys as of the head; `None` after a claim, until the first batch reads
    /// them.
    waits: Option<Waits>,
    /// Batches pulled and running, oldest first.
    in_flight: VecDeque<RunningBatch>,
    /// Per key, the snapshot the newest batch in flight that has the key will leave.
    handoffs: HashMap<String, (u64, Handoff)>,
    /// Numbers the batches pulled by this invocation.
    next_batch: u64,
    /// Most events the next pull takes: `first_batch_events` after a claim, doubled by each
    /// pull up to `max_batch_events` (a slow start, so that the first commit comes soon).
    batch_limit: usize,
    /// Whether `head-hint.json` still names a manifest older than this claim.
    hint_stale: bool,
    fence: Arc<Fence>,
    /// What runs beside the caller: batches, their journals' flushes, the head hint.
    tasks: Tasks,
    /// The partition's side of the agent's budget, when the agent has one.
    budget: Option<Arc<BudgetAccount>>,
}

/// A batch whose actions run in a task of their own.
#[derive(Debug)]
struct RunningBatch {
    number: u64,
    next: Position,
    events: usize,
    keys: Vec<String>,
    scope: Arc<CallScope>,
    /// `None` if it was stopped before it ended.
    run: tokio::task::JoinHandle<Option<Vec<KeyOutcome>>>,
}

impl Drop for PartitionProcessor {
    fn drop(&mut self) {
        // The batches' tasks stop with `tasks`.
        self.abandon_in_flight();
    }
}

impl PartitionProcessor {
    /// Claims `partition`, fencing every older invocation, from its chain's head: `known`, or
    /// read now.
    pub(crate) async fn claim(shared: Arc<Shared>, partition: u32, options: ClaimOptions) -> Result<Self> {
        let ClaimOptions { head: known, lease_until_ms } = options;
        let dir = PartitionDir::new(shared.storage.clone(), &shared.agent_name, partition)?;
        let head = async {
            match known {
                Some(head) => Ok(head.into_manifest()),
                None => dir.latest().await.map(|head| head.unwrap_or_else(Manifest::genesis)),
            }
        };
        // The chain's head does not depend on the log's configuration: both are read at once.
        let (log, latest) = futures::future::join(shared.log(), head).await;
        let partitions = log?.partitions();
        if partition >= partitions {
            return Err(Error::InvalidInput(format!("partition {partition} out of range: the log has {partitions}")));
        }
        let latest = latest?;
        let now = shared.clock.now_ms();
        if let Some(until_ms) = latest.lease_until_ms.filter(|&until| until > now) {
            return Err(Error::Leased { partition, until_ms });
        }
        let writer = Writer { epoch: latest.seq + 1, nonce: shared.nonce() };
        let mut claim = latest.successor(writer.clone(), CommitKind::Claim, now);
        claim.lease_until_ms = lease_until_ms;
        if !dir.commit(&claim).await? {
            return Err(Error::Fenced { partition, seq: claim.seq });
        }
        tracing::debug!(partition, seq = claim.seq, nonce = %writer.nonce, "claimed partition");
        let batch_limit = shared.settings.first_batch_events.clamp(1, shared.settings.max_batch_events.max(1));
        let budget = shared.agent.spend_limit().map(|limit| {
            Arc::new(BudgetAccount::new(limit, shared.storage.clone(), &shared.agent_name, partition, claim.spend))
        });
        Ok(PartitionProcessor {
            pulled: claim.position,
            fence: Arc::new(Fence::new(dir.clone(), writer.clone(), claim.seq, shared.clock.clone())),
            shared,
            dir,
            head: claim,
            writer,
            head_seen_ms: now,
            reader: LogReader::new(partition),
            replay: None,
            records: None,
            waits: None,
            in_flight: VecDeque::new(),
            handoffs: HashMap::new(),
            next_batch: 0,
            batch_limit,
            hint_stale: true,
            tasks: Tasks::default(),
            budget,
        })
    }

    pub fn partition(&self) -> u32 {
        self.dir.partition()
    }

    /// The last commit this invocation made.
    pub fn head(&self) -> Commit {
        Commit::new(self.head.clone())
    }

    /// Commits the next micro-batch: the oldest in flight, after pulling and starting batches
    /// up to `max_batches_in_flight`. A batch that commits nothing (no `seq`) means the
    /// partition is caught up. On an error, the batches still in flight are abandoned with
    /// the processor.
    pub async fn process_batch(&mut self) -> Result<BatchReport> {
        let report = self.next_batch().await?;
        if std::mem::take(&mut self.hint_stale) {
            // Only a hint (a stale one makes the next claim list more), so nothing waits for
            // it; and it is written after the first batch, not at the claim, so that it does
            // not compete with that batch's reads on the way to the first commit.
            let (dir, seq) = (self.dir.clone(), self.head.seq);
            self.tasks.spawn(async move { dir.write_head_hint(seq).await });
        }
        Ok(report)
    }

    async fn next_batch(&mut self) -> Result<BatchReport> {
        // The first batch after a claim runs alone, so that no batch behind it competes with
        // it for the agent's model permits and the CPU: the first commit comes soonest.
        let first_uncommitted = self.next_batch == 0 || self.in_flight.front().is_some_and(|batch| batch.number == 0);
        let depth = if first_uncommitted { 1 } else { self.shared.settings.max_batches_in_flight.max(1) };
        while self.in_flight.len() < depth {
            // Only an idle pipeline waits for more events: a busy one pulls what is there.
            if !self.start_batch(self.in_flight.is_empty()).await? {
                break;
            }
        }
        let Some(batch) = self.in_flight.front_mut() else {
            return Ok(BatchReport { position: self.head.position, ..Default::default() });
        };
        let outcomes = match (&mut batch.run).await {
            Ok(Some(outcomes)) => outcomes,
            Ok(None) => return Err(Error::Interrupted("the batch was stopped with its partition".into())),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(Error::Interrupted(format!("batch task ended without a result: {e}"))),
        };
        if let Some(reason) = outcomes.iter().find_map(|o| o.unavailable.clone()) {
            return Err(Error::Unavailable { partition: self.partition(), reason });
        }
        let batch = self.in_flight.pop_front().expect("the front batch");
        self.handoffs.retain(|_, (number, _)| *number != batch.number);
        self.commit_batch(batch, outcomes).await
    }

    /// Pulls the next batch and starts running it. Returns false if there were no events.
    async fn start_batch(&mut self, wait: bool) -> Result<bool> {
        let start = self.pulled;
        // The first batch reads what earlier attempts journaled while it pulls its events:
        // one round trip less before the first commit.
        let (dir, known, known_waits) = (self.dir.clone(), self.replay.take(), self.waits.take());
        let head_waits = self.head.waits.clone();
        let replayed = async move {
            let replay = async {
                match known {
                    Some(replay) => Ok(replay),
                    None => journal::load(&dir, start).await,
                }
            };
            let waits = async {
                match known_waits {
                    Some(waits) => Ok(waits),
                    None => wait::load(&dir, head_waits.as_ref()).await,
                }
            };
            futures::future::try_join(replay, waits).await
        };
        let records = self.records().await?;
        let (pulled, replay) = futures::future::join(self.pull(start, wait), replayed).await;
        let ((events, next), (replay, waits)) = (pulled?, replay?);
        let now = self.shared.clock.now_ms();
        let mut groups = group_by_key(events);
        let event_count = groups.iter().map(|g| g.events.len()).sum();
        // Waiting keys whose time has come run even without events of their own. Keys a
        // batch in flight has are left to it: it hands their wait on.
        let due: Vec<String> = waits
            .iter()
            .filter(|(key, suspension)| suspension.is_due(now) && !self.handoffs.contains_key(*key))
            .filter(|(key, _)| !groups.iter().any(|g| &g.key == *key))
            .map(|(key, _)| key.clone())
            .collect();
        self.waits = Some(waits);
        if groups.is_empty() && due.is_empty() {
            self.replay = Some(replay);
            return Ok(false);
        }
        groups.extend(due.into_iter().map(|key| KeyEvents { key, events: Vec::new(), trace_parents: HashMap::new() }));
        let settings = self.shared.settings.clone();
        // Entries beyond this batch stay in its journal too: its commit carries them on. So
        // do entries of events before it: only a resumed event has them (docs/waits.md).
        let later = replay.iter().filter(|(call, _)| call.event >= next || call.event < start);
        self.replay = Some(later.map(|(call, entry)| (call.clone(), entry.clone())).collect());
        let journal = Journal::start(
            self.dir.clone(),
            start,
            self.writer.nonce.clone(),
            Duration::from_millis(settings.journal_flush_window_ms),
            replay,
            self.fence.clone(),
            &self.tasks,
        );
        let scope = Arc::new(CallScope {
            journal: journal.clone(),
            key_prefix: format!("{}\0{}\0{}", self.dir.storage().root(), self.shared.agent_name, self.partition()),
            counts: self.shared.counts.clone(),
            abandoned: Default::default(),
            dir: self.dir.clone(),
            writer: self.writer.clone(),
            fence: self.fence.clone(),
            clock: self.shared.clock.clone(),
            gc_grace_ms: settings.gc_grace_ms,
            records,
            budget: self.budget.clone(),
        });
        let keys: Vec<String> = groups.iter().map(|g| g.key.clone()).collect();
        let unseen: Vec<String> = keys.iter().filter(|k| !self.handoffs.contains_key(*k)).cloned().collect();
        let mut committed = state::read_snapshots(&self.dir, &self.head.runs, &unseen, &self.shared.cache).await?;
        let number = self.next_batch;
        self.next_batch += 1;
        let runs = groups
            .into_iter()
            .map(|events| {
                let start = match self.handoffs.get(&events.key) {
                    Some((_, earlier)) => StartState::After(earlier.clone()),
                    None => {
                        let state = committed.remove(&events.key).flatten();
                        let wait = self.waits.as_ref().and_then(|w| w.get(&events.key)).cloned();
                        StartState::Committed(KeySnapshot { state, wait })
                    }
                };
                let (handoff, receiver) = oneshot::channel();
                self.handoffs.insert(events.key.clone(), (number, receiver.shared()));
                KeyRun { events, start, handoff }
            })
            .collect();
        let run = self.tasks.spawn(run_batch(self.shared.agent.clone(), scope.clone(), settings, runs));
        self.in_flight.push_back(RunningBatch { number, next, events: event_count, keys, scope, run });
        self.pulled = next;
        Ok(true)
    }

    /// Writes a finished batch's state, outputs and dead letters and commits them.
    async fn commit_batch(&mut self, batch: RunningBatch, outcomes: Vec<KeyOutcome>) -> Result<BatchReport> {
        let RunningBatch { next, events: event_count, keys, scope, .. } = batch;
        let started = Instant::now();
        let mut state_updates = BTreeMap::new();
        let (mut outputs, mut dead_letters, mut traces) = (Vec::new(), Vec::new(), Vec::new());
        let mut waits = self.waits.clone().unwrap_or_default();
        let (mut waits_changed, mut resumed) = (false, 0);
        for outcome in outcomes {
            resumed += outcome.resumed;
            if let Some(changed) = outcome.wait {
                waits_changed = true;
                match changed {
                    Some(suspension) => waits.insert(outcome.key.clone(), suspension),
                    None => waits.remove(&outcome.key),
                };
            }
            if let Some(new_state) = outcome.new_state {
                state_updates.insert(outcome.key, new_state);
            }
            outputs.extend(outcome.outputs);
            dead_letters.extend(outcome.dead_letters);
            traces.extend(outcome.traces);
        }
        outputs.sort_by_key(|o| (o.event, o.index));
        dead_letters.sort_by_key(|d| d.event);
        traces.sort_by_key(|t| t.event);
        // Waiting events are behind the new position but not done: what attempts that did not
        // commit journaled for them (a resumption's calls after its wait, a queued event's
        // calls) is carried too, or the next claim would not list it (docs/waits.md).
        let waiting: HashSet<(Position, &str)> = waits
            .iter()
            .flat_map(|(key, s)| {
                std::iter::once(s.event.event).chain(s.queued.iter().map(|q| q.event)).map(|e| (e, key.as_str()))
            })
            .collect();
        let carry = scope.journal.entries_matching(|e| e.event >= next || waiting.contains(&(e.event, e.key.as_str())));
        drop(scope);

        let now = self.shared.clock.now_ms();
        let mut manifest = self.head.successor(self.writer.clone(), CommitKind::Batch, now);
        let (seq, nonce, partition) = (manifest.seq, self.writer.nonce.clone(), self.partition());
        manifest.position = next;
        manifest.totals.events += event_count as u64;
        manifest.totals.outputs += outputs.len() as u64;
        manifest.totals.dead_letters += dead_letters.len() as u64;
        if let Some(budget) = &self.budget {
            let period = budget.commit_period(now);
            manifest.spend = Some(PartitionSpend::after(self.head.spend, period, Amount::of_traces(&traces)));
        }
        let mut writes: Vec<(String, Bytes)> = Vec::new();
        if !state_updates.is_empty() {
            let run = state::build_run(&state_updates)?;
            let path = layout::state_run(seq, &nonce);
            manifest.runs.insert(0, state::run_ref(path.clone(), 0, &run));
            writes.push((path, run.bytes));
        }
        if !outputs.is_empty() {
            let path = layout::outputs(seq, &nonce);
            writes.push((path.clone(), outputs::encode_outputs(outputs.iter().map(|o| (partition, seq, o)))));
            manifest.outputs = Some(FileRef { path, rows: outputs.len() as u64 });
        }
        if !dead_letters.is_empty() {
            let path = layout::dead_letters(seq, &nonce);
            writes.push((path.clone(), outputs::encode_dead_letters(partition, seq, &dead_letters)));
            manifest.dead_letters = Some(FileRef { path, rows: dead_letters.len() as u64 });
        }
        if !traces.is_empty() {
            let path = layout::trace(seq, &nonce);
            let rows = traces.iter().map(|t| t.spans.len() as u64).sum();
            traces.iter_mut().for_each(|t| t.commit_seq = seq);
            writes.push((path.clone(), trace::encode_traces(traces.iter().map(|t| (partition, t)))));
            manifest.trace = Some(FileRef { path, rows });
        }
        if waits_changed {
            manifest.waits = match wait::encode(layout::waits(seq, &nonce), &waits) {
                Some((reference, bytes)) => {
                    writes.push((reference.path.clone(), bytes));
                    Some(reference)
                }
                None => None,
            };
        }
        if !carry.is_empty() {
            let path = layout::journal_carry(next, &nonce, seq);
            writes.push((path.clone(), journal::encode(&carry)));
            manifest.journal_carry = Some(path);
        }
        self.commit(manifest, writes).await?;
        let waiting = waits.len();
        self.waits = Some(waits);
        let commit_latency = started.elapsed();
        if let Some(sink) = &self.shared.trace_sink {
            sink.committed(&self.shared.agent_name, partition, seq, &traces);
        }
        self.compact().await?;
        Ok(BatchReport {
            events: event_count,
            keys: keys.len(),
            outputs: outputs.len(),
            dead_letters: dead_letters.len(),
            seq: Some(seq),
            position: next,
            commit_latency,
            resumed,
            waiting,
        })
    }

    /// Writes a commit's files, then creates its manifest: the commit point. The runs it
    /// wrote are cached, so that reading them back costs no request.
    async fn commit(&mut self, manifest: Manifest, writes: Vec<(String, Bytes)>) -> Result<()> {
        let storage = self.dir.storage();
        let paths: Vec<_> = writes.iter().map(|(path, _)| self.dir.path(path)).collect();
        let puts = paths.iter().zip(&writes).map(|(path, (_, bytes))| storage.put(path, bytes.clone()));
        futures::future::try_join_all(puts).await?;
        let attempt_ms = self.shared.clock.now_ms();
        let fenced = Error::Fenced { partition: self.partition(), seq: manifest.seq };
        if !self.dir.commit(&manifest).await? {
            return Err(fenced);
        }
        // Only a writer that stalled longer than collection's grace period can have
        // re-created a number that collection deleted: check the boundary then. The void
        // manifest stays for collection, which deletes everything below the boundary.
        if attempt_ms.saturating_sub(self.head_seen_ms) > self.shared.settings.gc_grace_ms / 2
            && manifest.seq < self.dir.gc_boundary().await?
        {
            tracing::warn!(partition = self.partition(), seq = manifest.seq, "stalled past collection: commit void");
            return Err(fenced);
        }
        self.fence.committed(manifest.seq);
        if let Some(budget) = &self.budget {
            budget.committed(manifest.spend);
        }
        for run in &manifest.runs {
            if let Some((_, bytes)) = writes.iter().find(|(path, _)| *path == run.path) {
                self.shared.cache.insert_whole(&self.dir, run, bytes.clone());
            }
        }
        self.head = manifest;
        self.head_seen_ms = attempt_ms;
        Ok(())
    }

    /// Ends this invocation's hold on the partition: batches still in flight are abandoned;
    /// if its claim took a lease, a `release` manifest (the same state, no lease) lets the
    /// next invocation claim at once; and the partition's background writes (the head hint)
    /// are waited for, so that none is in flight when the invocation returns.
    pub async fn release(mut self) -> Result<()> {
        self.abandon_in_flight();
        let released = match self.head.lease_until_ms {
            None => Ok(()),
            Some(_) => {
                let now = self.shared.clock.now_ms();
                let mut release = self.head.successor(self.writer.clone(), CommitKind::Release, now);
                release.lease_until_ms = None;
                self.commit(release, Vec::new()).await
            }
        };
        self.tasks.finish().await;
        released
    }

    /// Stops the batches in flight: they can no longer commit, so they make no more calls.
    fn abandon_in_flight(&mut self) {
        for batch in self.in_flight.drain(..) {
            batch.scope.abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
            batch.run.abort();
        }
        self.handoffs.clear();
    }

    /// Merges runs while some level is full; each merge is its own fenced commit.
    async fn compact(&mut self) -> Result<()> {
        while let Some(range) = state::plan_compaction(&self.head.runs, self.shared.settings.compaction_fanout) {
            let now = self.shared.clock.now_ms();
            let mut manifest = self.head.successor(self.writer.clone(), CommitKind::Compaction, now);
            let merged = state::compact(&self.dir, &self.head.runs, range.clone(), &self.shared.cache).await?;
            let mut writes = Vec::new();
            let mut replacement = None;
            if let Some((level, run)) = merged {
                let path = layout::state_run(manifest.seq, &self.writer.nonce);
                replacement = Some(state::run_ref(path.clone(), level, &run));
                writes.push((path, run.bytes));
            }
            manifest.runs.splice(range, replacement);
            self.commit(manifest, writes).await?;
        }
        Ok(())
    }

    /// Reads events from `from`: up to the batch limit, waiting up to `max_batch_wait_ms`
    /// for more if `wait`. Returns them and the position after them.
    async fn pull(&mut self, from: Position, wait: bool) -> Result<(Vec<(Position, LogEvent)>, Position)> {
        let settings = self.shared.settings.clone();
        if self.fence.is_fenced() {
            return Err(Error::Fenced { partition: self.partition(), seq: self.head.seq + 1 });
        }
        let max = self.batch_limit;
        self.batch_limit = (max * 2).min(settings.max_batch_events.max(1));
        let deadline = Instant::now() + Duration::from_millis(if wait { settings.max_batch_wait_ms } else { 0 });
        let (mut events, mut position) = self.read(from, max).await?;
        while events.len() < max && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms.max(1))).await;
            let (more, next) = self.read(position, max - events.len()).await?;
            events.extend(more);
            position = next;
        }
        Ok((events, position))
    }

    /// Up to `max` events from `from` and the position after them; in a shadow run, only
    /// the events its range selects, and none from the end of its range on.
    async fn read(&mut self, from: Position, max: usize) -> Result<(Vec<(Position, LogEvent)>, Position)> {
        let log = self.shared.log().await?;
        let Some(shadow) = &self.shared.shadow else { return self.reader.read(log, from, max).await };
        let Some(range) = shadow.range(self.dir.partition()) else { return Ok((Vec::new(), from)) };
        let (mut selected, mut position) = (Vec::new(), from);
        // Passed-over events are not a batch's: read on until one is selected or the range ends.
        while selected.is_empty() && position < range.until {
            let (events, next) = self.reader.read(log, position, max).await?;
            if events.is_empty() {
                break;
            }
            selected.extend(events.into_iter().filter(|(p, _)| range.selects(*p)));
            position = next.min(range.until);
        }
        Ok((selected, position))
    }

    /// A shadow run's record of this partition's range, read once per claim.
    async fn records(&mut self) -> Result<Option<Records>> {
        let Some(shadow) = &self.shared.shadow else { return Ok(None) };
        if self.records.is_none() {
            self.records = Some(Arc::new(shadow.records(self.dir.partition()).await?));
        }
        Ok(self.records.clone())
    }
}
