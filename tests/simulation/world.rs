//! The simulated world: the store, the clock, the service the agent calls, the topology's
//! tasks, and the checks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use weir_engine::format::PartitionDir;
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{
    ActionError, Agent, CallMode, Clock, Commit, CommittedReader, Durable, DurableError, Ending, Engine,
    EngineSettings, ErrorKind, EventContext, EventLog, JournalEntry, LogEvent, LogInput, Outcome, Position, Shift,
    Signal, Storage, TokioClock, Wake, collect_log, collect_partition,
};
use weir_tests::PolicyStore;

use crate::clocked::ClockedStore;

const START_MS: u64 = 1_800_000_000_000;
const PARTITIONS: u32 = 2;
const AGENT: &str = "sim";
const KEYS: u64 = 8;
const MINUTE: Duration = Duration::from_secs(60);
/// Appends happen in the first minutes.
const PRODUCING_MINUTES: u64 = 45;
/// Then the faults go on while nothing is appended: a writer that stalls now (in a batch, a
/// compaction or a release) finds no backlog behind it that would get it fenced.
const QUIET_MINUTES: u64 = 50;
/// The faults and outages stop after both.
const FAULTY_MINUTES: u64 = PRODUCING_MINUTES + QUIET_MINUTES;
/// After the faults stop, every partition must be caught up within this many ticks (stalled
/// zombies wake up within this time too).
const HEALING_MINUTES: u64 = 90;
/// Then the schedule stops and time runs on, so that collection can take everything past
/// its grace period and retention.
const SETTLING_MINUTES: u64 = 180;
/// Short, so that invocations often stop at their deadline and continue.
const INVOCATION_TIMEOUT_MS: u64 = 12 * 1000;
const DEADLINE_MARGIN_MS: u64 = 4 * 1000;

/// What a run did, to compare two runs of one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    requests: u64,
    /// Injected faults by kind: errors, lost responses, timeouts, latency, crashes, stalls.
    faults: BTreeMap<String, u64>,
    model_calls: usize,
    tool_calls: usize,
    invocations: u64,
    outputs: usize,
    dead_letters: usize,
}

/// A committed input as dispatch read it: its number and, for an output (not a dead
/// letter), its key's count after it.
type Delivered = (u64, Option<u64>);

/// One call the service received.
#[derive(Debug, Clone)]
struct Call {
    key: String,
    event: Position,
    name: &'static str,
    idempotency_key: String,
}

pub struct World {
    seed: u64,
    rng: Mutex<fastrand::Rng>,
    clock: Arc<TokioClock>,
    memory: Arc<InMemory>,
    /// Stamps objects with the simulated time; healthy: what the dispatcher and checks read.
    clocked: Arc<ClockedStore>,
    healthy: AtomicBool,
    /// The service's outages: (from, until) in simulated milliseconds.
    outages: Vec<(u64, u64)>,
    model_calls: Mutex<Vec<Call>>,
    tool_calls: Mutex<Vec<Call>>,
    /// Committed outputs and dead letters as the dispatcher read them: (partition, event) to
    /// the input's number and, for outputs, the key's count after it.
    delivered: Mutex<BTreeMap<(u32, Position), Delivered>>,
    /// Inputs appended (by their number), with their keys.
    inputs: Mutex<BTreeMap<u64, String>>,
    /// Signals dead-lettered, by position, with the reason.
    dead_signals: Mutex<BTreeMap<Position, String>>,
    requests: AtomicU64,
    faults: Mutex<BTreeMap<String, u64>>,
    invocations: AtomicU64,
    appends_pending: AtomicU64,
    violations: Mutex<BTreeSet<String>>,
    warm_log: EventLog,
}

impl World {
    pub async fn run(seed: u64) -> Result<Fingerprint, String> {
        let world = Arc::new(World::new(seed).await);
        world.clone().play().await;
        let violations = world.violations.lock().unwrap().clone();
        if !violations.is_empty() {
            return Err(violations.into_iter().collect::<Vec<_>>().join("; "));
        }
        let delivered = world.delivered.lock().unwrap();
        Ok(Fingerprint {
            requests: world.requests.load(Ordering::SeqCst),
            faults: world.faults.lock().unwrap().clone(),
            model_calls: world.model_calls.lock().unwrap().len(),
            tool_calls: world.tool_calls.lock().unwrap().len(),
            invocations: world.invocations.load(Ordering::SeqCst),
            outputs: delivered.values().filter(|(_, count)| count.is_some()).count(),
            dead_letters: delivered.values().filter(|(_, count)| count.is_none()).count(),
        })
    }

    async fn new(seed: u64) -> World {
        let mut rng = fastrand::Rng::with_seed(seed);
        let clock = TokioClock::new(START_MS);
        let memory = Arc::new(InMemory::new());
        let clocked = Arc::new(ClockedStore::new(memory.clone(), clock.clone()));
        let storage = Storage::new(clocked.clone(), "");
        EventLog::create(storage.clone(), PARTITIONS).await.unwrap();
        let outages = (0..rng.u64(0..4))
            .map(|_| {
                let from = START_MS + rng.u64(0..FAULTY_MINUTES * 60_000);
                (from, from + rng.u64(100..5_000))
            })
            .collect();
        // A warm appender: it keeps what it learned of the tails across appends.
        let warm_plan = Arc::new(FaultPlan::random(rng.u64(..), 0.02, vec![Fault::Error, Fault::AppliedThenError]));
        let warm_store = PolicyStore::ingest_role(Arc::new(FaultyStore::new(clocked.clone(), warm_plan)));
        let warm_storage = Storage::new(Arc::new(warm_store), "");
        let warm_log = loop {
            // Its store fails as any other's: it opens the log when a request goes through.
            if let Ok(log) = EventLog::open(warm_storage.clone()).await {
                break log.with_clock(clock.clone());
            }
        };
        World {
            seed,
            rng: Mutex::new(rng),
            clock,
            memory,
            clocked,
            healthy: AtomicBool::new(false),
            outages,
            model_calls: Mutex::default(),
            tool_calls: Mutex::default(),
            delivered: Mutex::default(),
            inputs: Mutex::default(),
            dead_signals: Mutex::default(),
            requests: AtomicU64::new(0),
            faults: Mutex::default(),
            invocations: AtomicU64::new(0),
            appends_pending: AtomicU64::new(0),
            violations: Mutex::default(),
            warm_log,
        }
    }

    fn storage(&self) -> Storage {
        Storage::new(self.clocked.clone(), "")
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().insert(what);
    }

    fn draw<T>(&self, f: impl FnOnce(&mut fastrand::Rng) -> T) -> T {
        f(&mut self.rng.lock().unwrap())
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The faults of one invocation's store: none once the world is healthy.
    fn fault_plan(&self) -> Arc<FaultPlan> {
        if self.healthy.load(Ordering::SeqCst) {
            return Arc::new(FaultPlan::none());
        }
        let (seed, probability, stall) = self.draw(|rng| (rng.u64(..), rng.f64() * 0.06, rng.u8(..) < 48));
        let mut faults = vec![
            Fault::Error,
            Fault::Error,
            Fault::AppliedThenError,
            Fault::AppliedThenAlreadyExists,
            Fault::Timeout(Duration::from_secs(2)),
            Fault::Latency(Duration::from_millis(200)),
            Fault::Latency(Duration::from_secs(20)),
            Fault::Crash,
        ];
        if stall {
            // A writer that stalls past collection's grace period.
            faults.push(Fault::Latency(Duration::from_secs(40 * 60)));
        }
        Arc::new(FaultPlan::random(seed, probability, faults))
    }

    fn count_requests(&self, plan: &FaultPlan) {
        self.requests.fetch_add(plan.requests(), Ordering::SeqCst);
        let mut faults = self.faults.lock().unwrap();
        for (_, fault) in plan.injected() {
            let kind = match fault {
                Fault::Latency(d) if d > Duration::from_secs(60) => "stall".to_string(),
                other => format!("{other:?}").split('(').next().unwrap_or_default().to_string(),
            };
            *faults.entry(kind).or_default() += 1;
        }
    }

    fn settings() -> EngineSettings {
        EngineSettings {
            max_batch_events: 6,
            first_batch_events: 2,
            journal_flush_window_ms: 5,
            retry_backoff_ms: 200,
            compaction_fanout: 2,
            output_retention_ms: 3_600_000,
            log_retention_ms: 3_600_000,
            ..Default::default()
        }
    }

    async fn play(self: Arc<Self>) {
        let mut next_input = 0u64;
        let total = FAULTY_MINUTES + HEALING_MINUTES + SETTLING_MINUTES;
        for minute in 0..total {
            if minute < PRODUCING_MINUTES {
                for _ in 0..self.draw(|rng| rng.u64(0..5)) {
                    let count = self.draw(|rng| rng.u64(1..8));
                    let inputs: Vec<u64> = (next_input..next_input + count).collect();
                    next_input += count;
                    tokio::spawn(self.clone().append(inputs));
                }
            }
            if minute == FAULTY_MINUTES {
                self.healthy.store(true, Ordering::SeqCst);
            }
            if minute < FAULTY_MINUTES + HEALING_MINUTES {
                self.spawn_invocation();
            }
            if minute % 10 == 0 {
                tokio::spawn(self.clone().collect());
            }
            let offset = self.draw(|rng| rng.u64(0..60_000));
            tokio::time::sleep(Duration::from_millis(offset)).await;
            tokio::time::sleep(MINUTE - Duration::from_millis(offset)).await;
            self.dispatch().await;
            self.check_calls();
            if minute == FAULTY_MINUTES + HEALING_MINUTES - 1 {
                self.check_caught_up().await;
            }
        }
        // Twice more, so that the boundary written by one collection lets the next delete.
        self.clone().collect().await;
        self.clone().collect().await;
        self.check_caught_up().await;
        self.check_storage().await;
    }

    /// Appends inputs as one producer batch until it is stored; sometimes the source delivers
    /// the batch again later (a retried duplicate).
    async fn append(self: Arc<Self>, inputs: Vec<u64>) {
        self.appends_pending.fetch_add(1, Ordering::SeqCst);
        // Some inputs wait: for a time (a timer) or for a signal sent after them.
        let mut signals = Vec::new();
        let events: Vec<LogEvent> = inputs
            .iter()
            .map(|&n| {
                let key = format!("key-{}", self.draw(|rng| rng.u64(0..KEYS)));
                self.inputs.lock().unwrap().insert(n, key.clone());
                let payload = match self.draw(|rng| rng.u8(..)) {
                    0..26 => {
                        let wake_at = self.now_ms() + self.draw(|rng| rng.u64(1..20 * 60_000));
                        serde_json::json!({"n": n, "wake_at": wake_at})
                    }
                    26..52 => {
                        signals.push((key.clone(), format!("go-{n}")));
                        serde_json::json!({"n": n, "await": format!("go-{n}")})
                    }
                    _ => serde_json::json!({"n": n}),
                };
                LogEvent::json(key, &payload)
            })
            .collect();
        let batch_id = format!("source-{}", inputs[0]);
        let deliveries = if self.draw(|rng| rng.u8(..) < 80) { 2 } else { 1 };
        for delivery in 0..deliveries {
            if delivery > 0 {
                let later = self.draw(|rng| rng.u64(0..20 * 60_000));
                tokio::time::sleep(Duration::from_millis(later)).await;
            }
            self.store(&batch_id, &events).await;
            // The answers come after the events they answer, each as its own batch.
            for (key, id) in std::mem::take(&mut signals) {
                let later = self.draw(|rng| rng.u64(0..10 * 60_000));
                tokio::time::sleep(Duration::from_millis(later)).await;
                let signal = Signal::new("go", id.clone(), serde_json::json!({"for": id}));
                self.store(&format!("signal-{id}"), &[LogEvent::json(key, &signal.to_payload())]).await;
            }
        }
        self.appends_pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Appends one producer batch until it is stored, warm or cold.
    async fn store(&self, batch_id: &str, events: &[LogEvent]) {
        loop {
            let warm = self.draw(|rng| rng.bool());
            let stored = if warm {
                self.warm_log.append(batch_id, events).await.map(|_| ()).map_err(|e| e.to_string())
            } else {
                self.cold_append(batch_id, events).await
            };
            match stored {
                Ok(()) => return,
                Err(_) => {
                    let pause = self.draw(|rng| rng.u64(1_000..30_000));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
    }

    /// One append by a fresh ingest invocation, which may end abruptly.
    async fn cold_append(&self, batch_id: &str, events: &[LogEvent]) -> Result<(), String> {
        let plan = self.fault_plan();
        let store = PolicyStore::ingest_role(Arc::new(FaultyStore::new(self.clocked.clone(), plan.clone())));
        let append = async {
            let log = EventLog::open(Storage::new(Arc::new(store), "")).await?.with_clock(self.clock.clone());
            log.append(batch_id, events).await
        };
        let result = tokio::select! {
            biased;
            () = plan.wait_crashed() => Err("ended abruptly".to_string()),
            stored = append => stored.map(|_| ()).map_err(|e| e.to_string()),
        };
        self.count_requests(&plan);
        result
    }

    /// A schedule tick's invocation, and the continuations it hands its backlog to.
    fn spawn_invocation(self: &Arc<Self>) {
        let world = self.clone();
        tokio::spawn(async move {
            let mut partitions = None;
            loop {
                let continued = world.clone().invocation(partitions).await;
                if continued.is_empty() {
                    return;
                }
                partitions = Some(continued);
            }
        });
    }

    /// One process invocation: the requested partitions (a continuation's) or every one with
    /// backlog (a schedule tick's), until its deadline. Returns the partitions it left backlog
    /// on, for a continuation.
    async fn invocation(self: Arc<Self>, partitions: Option<Vec<u32>>) -> Vec<u32> {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let started_ms = self.now_ms();
        // An invocation started after the faults stopped meets none.
        let healthy = self.healthy.load(Ordering::SeqCst);
        let plan = self.fault_plan();
        let role =
            Arc::new(PolicyStore::process_role(Arc::new(FaultyStore::new(self.clocked.clone(), plan.clone())), AGENT));
        let agent = SimAgent { world: self.clone(), started_ms };
        let engine = Engine::builder(Storage::new(role.clone(), ""), AGENT, Arc::new(agent))
            .settings(Self::settings())
            .clock(self.clock.clone())
            .seed(self.draw(|rng| rng.u64(..)))
            .build()
            .unwrap();
        let shift = Shift {
            stop_at_ms: started_ms + INVOCATION_TIMEOUT_MS - DEADLINE_MARGIN_MS,
            lease_until_ms: started_ms + INVOCATION_TIMEOUT_MS,
        };
        let work = async {
            let claims: Vec<(u32, Option<Commit>)> = match partitions {
                Some(partitions) => partitions.into_iter().map(|p| (p, None)).collect(),
                None => engine.backlog().await?.into_iter().map(|(p, head)| (p, Some(head))).collect(),
            };
            let drains = claims.into_iter().map(|(p, head)| {
                let engine = &engine;
                async move { (p, engine.drain_until(p, head, shift).await) }
            });
            let mut continued = Vec::new();
            for (p, drained) in futures::future::join_all(drains).await {
                match drained {
                    (_, Ok(Ending::Deadline)) => continued.push(p),
                    // Without faults, only another invocation can stop a drain.
                    (_, Err(e)) if healthy && !matches!(e.kind(), ErrorKind::Fenced | ErrorKind::Leased) => {
                        self.violation(format!("a healthy drain of partition {p} failed: {e}"))
                    }
                    _ => {}
                }
            }
            Ok::<_, weir_engine::Error>(continued)
        };
        let continued = tokio::select! {
            biased;
            () = plan.wait_crashed() => Vec::new(),
            done = work => done.unwrap_or_default(),
        };
        self.count_requests(&plan);
        for refused in role.refused() {
            self.violation(format!("the process role was refused `{refused}`"));
        }
        continued
    }

    /// Collection of every partition and of the log, as the deployed schedule runs it.
    async fn collect(self: Arc<Self>) {
        let plan = self.fault_plan();
        let storage = Storage::new(Arc::new(FaultyStore::new(self.clocked.clone(), plan.clone())), "");
        let settings = Self::settings();
        let work = async {
            for p in 0..PARTITIONS {
                collect_partition(&storage, AGENT, p, &settings, self.clock.as_ref()).await?;
            }
            let log = EventLog::open(storage.clone()).await?;
            collect_log(&log, &settings, self.clock.as_ref()).await
        };
        tokio::select! {
            biased;
            () = plan.wait_crashed() => {}
            _ = work => {}
        }
        self.count_requests(&plan);
    }

    /// Reads every committed output, dead letter and trace, as dispatch and `weir trace` do,
    /// and checks that no input was committed or traced twice.
    async fn dispatch(&self) {
        for p in 0..PARTITIONS {
            let reader = CommittedReader::new(self.storage(), AGENT, p).unwrap();
            let read = futures::join!(reader.outputs(), reader.dead_letters(), reader.traces());
            let (Ok(outputs), Ok(dead), Ok(traces)) = read else {
                self.violation(format!("dispatch could not read partition {p}'s commits"));
                continue;
            };
            let mut delivered = self.delivered.lock().unwrap();
            let mut seen_now = BTreeSet::new();
            // A signal is dead-lettered only when the input it answers was (checked at the end).
            let (dead_signals, dead): (Vec<_>, Vec<_>) = dead.iter().partition(|d| {
                let payload: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
                Signal::from_payload(&payload).is_some()
            });
            for signal in dead_signals {
                self.dead_signals.lock().unwrap().insert(signal.event, signal.reason.clone());
            }
            let read = outputs
                .iter()
                .map(|o| (o.event, o.payload["n"].as_u64(), Some(o.payload["count"].as_u64().unwrap_or(0))))
                .chain(dead.iter().map(|d| {
                    let payload: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
                    (d.event, payload["n"].as_u64(), None)
                }));
            for (event, n, count) in read {
                let Some(n) = n else {
                    self.violation(format!("a commit of partition {p} at {event} has no input number"));
                    continue;
                };
                if !seen_now.insert(event) {
                    self.violation(format!("input {n} at {p}/{event} committed twice"));
                }
                match delivered.get(&(p, event)) {
                    Some(known) if *known != (n, count) => {
                        self.violation(format!("input {n} at {p}/{event} committed twice, differently"))
                    }
                    _ => {
                        delivered.insert((p, event), (n, count));
                    }
                }
            }
            // The trace commits with the outputs: one per decided input, never two.
            let mut traced = BTreeSet::new();
            for trace in &traces {
                if !traced.insert(trace.event) {
                    self.violation(format!("input at {p}/{} traced twice", trace.event));
                }
            }
            if let Some(untraced) = seen_now.difference(&traced).next() {
                self.violation(format!("input at {p}/{untraced} committed without its trace"));
            }
        }
    }

    /// No at-most-once call twice; a repeated call carries its first idempotency key.
    fn check_calls(&self) {
        let mut tools = HashMap::new();
        for call in self.tool_calls.lock().unwrap().iter() {
            if tools.insert(call.idempotency_key.clone(), call).is_some() {
                self.violation(format!("at-most-once call for {} at {} made twice", call.key, call.event));
            }
        }
        let mut keys: HashMap<(String, Position, &str), &str> = HashMap::new();
        let calls = self.model_calls.lock().unwrap();
        for call in calls.iter() {
            let first = keys.entry((call.key.clone(), call.event, call.name)).or_insert(&call.idempotency_key);
            if *first != call.idempotency_key {
                self.violation(format!(
                    "call {} for {} at {} repeated with another key",
                    call.name, call.key, call.event
                ));
            }
        }
    }

    /// Every appended input committed exactly once (an output or a dead letter), and each
    /// key's state applied once per event: its counts run 1, 2, 3 in log order.
    async fn check_caught_up(&self) {
        if self.appends_pending.load(Ordering::SeqCst) > 0 {
            self.violation("appends still pending after the faults stopped".into());
        }
        let delivered = self.delivered.lock().unwrap().clone();
        let inputs = self.inputs.lock().unwrap().clone();
        let mut committed: BTreeMap<u64, usize> = BTreeMap::new();
        for (n, _) in delivered.values() {
            *committed.entry(*n).or_default() += 1;
        }
        let missing: Vec<_> = inputs.keys().filter(|n| !committed.contains_key(n)).collect();
        if !missing.is_empty() {
            self.violation(format!("a partition is wedged: inputs {missing:?} never committed"));
        }
        let twice: Vec<_> = committed.iter().filter(|(_, times)| **times > 1).map(|(n, _)| n).collect();
        if !twice.is_empty() {
            self.violation(format!("inputs {twice:?} committed more than once"));
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for ((_, event), (n, count)) in delivered.iter() {
            let (Some(count), Some(key)) = (count, inputs.get(n)) else { continue };
            let last = counts.entry(key.clone()).or_default();
            if *count != *last + 1 {
                self.violation(format!("key {key}'s state at {event} counts {count} after {last}"));
            }
            *last = *count;
        }
        // A signal dead-lettered answers an input that was dead-lettered, never one that waits.
        for (event, reason) in self.dead_signals.lock().unwrap().iter() {
            let answered: Option<u64> =
                reason.split("`go-").nth(1).and_then(|rest| rest.split('`').next()).and_then(|n| n.parse().ok());
            let dead_input = answered.is_some_and(|n| delivered.values().any(|(m, count)| *m == n && count.is_none()));
            if !dead_input {
                self.violation(format!("signal at {event} dead-lettered: {reason}"));
            }
        }
        // Every wait ended: each timer fired and each signal reached its wait.
        for p in 0..PARTITIONS {
            let reader = CommittedReader::new(self.storage(), AGENT, p).unwrap();
            match reader.waits().await {
                Ok(waits) if waits.is_empty() => {}
                other => self.violation(format!("partition {p} still has waits: {other:?}")),
            }
        }
        // The committed state is where the counts left it: every run a head names is there.
        for (key, last) in counts {
            let partition = weir_engine::partition_of(&key, PARTITIONS);
            let reader = CommittedReader::new(self.storage(), AGENT, partition).unwrap();
            match reader.state(&key).await {
                Ok(Some(state)) if state.as_ref() == last.to_string().as_bytes() => {}
                other => self.violation(format!("key {key}'s committed state is {other:?}, not {last}")),
            }
        }
    }

    /// After the settling time and collection: only the heads, what they name, the hints,
    /// the probes and the retained log remain.
    async fn check_storage(&self) {
        let storage = self.storage();
        let mut allowed: BTreeSet<String> =
            ["log/config.json", "log/create-if-absent.probe", "agents/sim/create-if-absent.probe"]
                .into_iter()
                .map(String::from)
                .collect();
        let mut waiting_prefixes = Vec::new();
        let mut heads = Vec::new();
        // Per partition, the batch its newest segment holds: its claims stay with it.
        let mut kept_batches = Vec::new();
        let log = EventLog::open(storage.clone()).await.unwrap();
        for p in 0..PARTITIONS {
            let base = format!("agents/{AGENT}/p{p:05}");
            let dir = PartitionDir::new(storage.clone(), AGENT, p).unwrap();
            if let Some(head) = dir.latest().await.unwrap() {
                heads.push(format!("p{p}: {} {:?}", head.seq, head.kind));
                allowed.insert(format!("{base}/manifest/{:020}.json", head.seq));
                allowed.extend(head.runs.iter().map(|r| format!("{base}/{}", r.path)));
                // A head that is a batch (its writer ended before a release) names its files.
                let files = head.outputs.iter().chain(&head.dead_letters).chain(&head.trace);
                allowed.extend(files.map(|f| format!("{base}/{}", f.path)));
                allowed.extend(head.journal_carry.iter().map(|path| format!("{base}/{path}")));
                allowed.extend(head.waits.iter().map(|waits| format!("{base}/{}", waits.path)));
                // What the next invocation replays, at or after the head's position.
                for folder in ["journal", "intent"] {
                    waiting_prefixes.push((format!("{base}/{folder}/"), head.position.object_name()));
                }
            }
            for name in ["head-hint.json", "gc-boundary.json"] {
                allowed.insert(format!("{base}/{name}"));
            }
            let segments = log.segments(p).await.unwrap();
            if let Some(newest) = segments.last() {
                allowed.insert(format!("log/p{p:05}/seg/{newest:020}.parquet"));
                allowed.insert(format!("log/p{p:05}/tail-hint.json"));
                let batch = log.read_segment(p, *newest).await.unwrap().unwrap().batch_id;
                kept_batches.push((format!("log/p{p:05}/batch/"), batch));
            }
        }
        let objects: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(self.memory.list(None)).await.unwrap();
        for object in objects {
            let path = object.location.to_string();
            let claim_of_newest = path.contains("/batch/") && self.claim_names_a_kept_batch(&path, &kept_batches).await;
            let waiting = waiting_prefixes.iter().any(|(folder, from)| {
                path.strip_prefix(folder.as_str()).is_some_and(|position| position >= from.as_str())
            });
            if !(allowed.contains(&path) || claim_of_newest || waiting) {
                self.violation(format!("storage still holds `{path}` (seed {}, heads {heads:?})", self.seed));
            }
        }
    }

    /// Whether a batch claim belongs to the batch stored in its partition's newest segment.
    async fn claim_names_a_kept_batch(&self, path: &str, kept: &[(String, String)]) -> bool {
        let Ok(result) = self.memory.get(&path.into()).await else { return false };
        let claim: serde_json::Value = serde_json::from_slice(&result.bytes().await.unwrap()).unwrap_or_default();
        let batch = claim["batch_id"].as_str().unwrap_or_default();
        kept.iter().any(|(claims, kept_batch)| path.starts_with(claims.as_str()) && batch == kept_batch)
    }

    /// Whether the model and the tool are down now.
    fn in_outage(&self) -> bool {
        let now = self.now_ms();
        !self.healthy.load(Ordering::SeqCst) && self.outages.iter().any(|(from, until)| (*from..*until).contains(&now))
    }

    /// Whether the journal recorded `call`'s result before `started_ms`.
    async fn journaled_before(&self, partition: u32, event: Position, key: &str, name: &str, started_ms: u64) -> bool {
        let prefix = format!("agents/{AGENT}/p{partition:05}/journal").into();
        let files: Vec<_> =
            futures::TryStreamExt::try_collect::<Vec<_>>(self.clocked.list(Some(&prefix))).await.unwrap_or_default();
        for file in files {
            if file.last_modified.timestamp_millis() as u64 >= started_ms {
                continue;
            }
            let Ok(result) = self.memory.get(&file.location).await else { continue };
            let bytes = result.bytes().await.unwrap();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let Ok(entry) = serde_json::from_slice::<JournalEntry>(line) else { continue };
                let done = matches!(entry.outcome, Outcome::Done(_));
                if done && entry.call.event == event && entry.call.key == key && entry.name == name {
                    return true;
                }
            }
        }
        false
    }
}

/// The agent: a model call (at least once) on every event, a tool call (at most once) on
/// some, on others a timer (then an at-most-once call that must not come early) or a wait
/// for a signal, a count per key in state, one output per event.
struct SimAgent {
    world: Arc<World>,
    /// When its invocation started: results journaled before then must be replayed.
    started_ms: u64,
}

impl SimAgent {
    async fn model(&self, event: &LogInput, idempotency_key: String) -> Result<u64, std::io::Error> {
        let world = &self.world;
        if world.in_outage() {
            return Err(std::io::Error::other("the model is unavailable"));
        }
        let partition = weir_engine::partition_of(&event.key, PARTITIONS);
        if world.journaled_before(partition, event.position, &event.key, "model", self.started_ms).await {
            world.violation(format!("journaled call `model` for {} at {} made again", event.key, event.position));
        }
        let call = Call { key: event.key.clone(), event: event.position, name: "model", idempotency_key };
        world.model_calls.lock().unwrap().push(call);
        let latency = world.draw(|rng| rng.u64(100..3_000));
        tokio::time::sleep(Duration::from_millis(latency)).await;
        Ok(event.payload["n"].as_u64().unwrap_or(0) % 3)
    }
}

impl SimAgent {
    /// An at-most-once call the world records (every one must carry its own key), after
    /// `check` lets it go out.
    async fn at_most_once(
        &self,
        ctx: &EventContext,
        event: &LogInput,
        name: &'static str,
        check: impl FnOnce(&World) -> Result<(), std::io::Error> + Send,
    ) -> Result<(), ActionError> {
        let world = self.world.clone();
        let made = ctx
            .durable_call(name, CallMode::AtMostOnce, |key| async move {
                check(&world)?;
                let call = Call { key: event.key.clone(), event: event.position, name, idempotency_key: key };
                world.tool_calls.lock().unwrap().push(call);
                Ok::<_, std::io::Error>(())
            })
            .await;
        // A call that failed after its intent was taken is reported interrupted on the next
        // attempt: it may have gone out, so it is never made again.
        match made {
            Ok(()) | Err(DurableError::Interrupted { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl Agent for SimAgent {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let count = ctx.state::<u64>()?.unwrap_or(0) + 1;
        let verdict: u64 = ctx.durable_call("model", CallMode::AtLeastOnce, |key| self.model(event, key)).await?;
        if verdict == 0 {
            // The tool may be down: the hold fails then, and is made on a later attempt.
            self.at_most_once(ctx, event, "hold", |world| match world.in_outage() {
                true => Err(std::io::Error::other("the tool is unavailable")),
                false => Ok(()),
            })
            .await?;
        }
        if let Some(wake_at) = event.payload["wake_at"].as_u64() {
            ctx.sleep_until(wake_at).await?;
            self.at_most_once(ctx, event, "timer", |world| {
                if world.now_ms() < wake_at {
                    world.violation(format!("timer of {} at {} fired early", event.key, event.position));
                }
                Ok(())
            })
            .await?;
        }
        if let Some(id) = event.payload["await"].as_str() {
            let wake = ctx.wait_for("go", id, Duration::from_secs(24 * 3600)).await?;
            if wake != Wake::Signal(serde_json::json!({"for": id})) {
                self.world.violation(format!("the wait of {} at {} ended with {wake:?}", event.key, event.position));
            }
        }
        ctx.set_state(&count)?;
        ctx.emit(&serde_json::json!({"n": event.payload["n"], "count": count}))?;
        Ok(())
    }
}
