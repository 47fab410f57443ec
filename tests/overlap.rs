//! The holes of overlapping invocations (docs/storage-format.md, "Overlapping invocations"),
//! each shown on the interleaving that opened it: an at-most-once call taken by two
//! invocations, a fenced invocation still calling, invocations fencing each other for
//! nothing, collection under a stalled writer, an append below the retained tail, a replay
//! handing one call another's result, and a store that ignores create-if-absent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::memory::InMemory;
use tokio::sync::Notify;
use weir_engine::format::PartitionDir;
use weir_engine::{
    ActionError, Agent, CallMode, ClaimOptions, Clock, CommittedReader, Durable, DurableError, Engine, EngineSettings,
    ErrorKind, EventContext, EventLog, LogEvent, LogInput, ManualClock, Shift, Storage, SystemClock, collect_log,
    collect_partition,
};
use weir_tests::{Gate, PolicyStore};

/// Scores an event (at least once, held while `hold` is set), then notifies (at most once).
#[derive(Debug, Default)]
struct Notifier {
    /// Set: the score call waits for `release` before it answers.
    hold: Option<Arc<Notify>>,
    /// Whether a score call is waiting.
    scoring: Arc<Notify>,
    notifications: Arc<Mutex<Vec<String>>>,
    interrupted: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Agent for Notifier {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let hold = self.hold.clone();
        let scoring = self.scoring.clone();
        let score: u64 = ctx
            .durable("score", async move {
                if let Some(hold) = hold {
                    scoring.notify_one();
                    hold.notified().await;
                }
                Ok::<_, std::io::Error>(1)
            })
            .await?;
        let notifications = self.notifications.clone();
        let sent = ctx
            .durable_call("notify", CallMode::AtMostOnce, |key| async move {
                notifications.lock().unwrap().push(key);
                Ok::<_, std::io::Error>(())
            })
            .await;
        match sent {
            Ok(()) => {}
            Err(DurableError::Interrupted { .. }) => {
                self.interrupted.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => return Err(e.into()),
        }
        ctx.set_state(&score)?;
        ctx.emit(&serde_json::json!({"key": event.key, "score": score}))?;
        Ok(())
    }
}

fn settings() -> EngineSettings {
    EngineSettings { journal_flush_window_ms: 1, max_batch_events: 10, ..Default::default() }
}

async fn log_with_one_event(storage: &Storage) -> EventLog {
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    log.append("b0", &[LogEvent::json("card-1", &serde_json::json!({"amount": 900}))]).await.unwrap();
    log
}

fn engine(storage: &Storage, agent: Notifier) -> Engine {
    Engine::builder(storage.clone(), "cards", Arc::new(agent)).settings(settings()).build().unwrap()
}

/// An invocation fenced between an event's first (slow) call and its at-most-once call
/// learns that it is fenced and does not make the call; the invocation that took over makes
/// it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_invocation_stops_before_its_at_most_once_call() {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    log_with_one_event(&storage).await;
    let notifications = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(Notify::new());
    let slow = Notifier { hold: Some(release.clone()), notifications: notifications.clone(), ..Default::default() };
    let scoring = slow.scoring.clone();
    let mut stale = engine(&storage, slow).claim(0).await.unwrap();
    let stale_batch = tokio::spawn(async move { stale.process_batch().await });
    scoring.notified().await;

    let fresh = Notifier { notifications: notifications.clone(), ..Default::default() };
    let report = engine(&storage, fresh).drain_partition(0).await.unwrap();
    assert_eq!(report.outputs, 1);
    release.notify_one();
    let stale_result = stale_batch.await.unwrap();
    assert_eq!(stale_result.unwrap_err().kind(), ErrorKind::Fenced);
    assert_eq!(notifications.lock().unwrap().len(), 1, "one notification: {notifications:?}");
}

/// Two invocations that both pass the fence check race for one at-most-once call: the one
/// whose intent object is created first makes the call, the other reports it interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_most_once_call_is_held_by_one_invocation() {
    let memory: Arc<InMemory> = Arc::new(InMemory::new());
    let storage = Storage::new(memory.clone(), "");
    log_with_one_event(&storage).await;
    let notifications = Arc::new(Mutex::new(Vec::new()));
    // The first invocation's intent is held at the store until the second made the call.
    let gate = Gate::new("/intent/");
    let gated = storage.with_store(Arc::new(PolicyStore::new(memory.clone()).with_gate(gate.clone())));
    let first = Notifier { notifications: notifications.clone(), ..Default::default() };
    let first_interrupted = first.interrupted.clone();
    let mut stale = engine(&gated, first).claim(0).await.unwrap();
    let stale_batch = tokio::spawn(async move { stale.process_batch().await });
    gate.wait_held().await;

    let fresh = Notifier { notifications: notifications.clone(), ..Default::default() };
    engine(&storage, fresh).drain_partition(0).await.unwrap();
    assert_eq!(notifications.lock().unwrap().len(), 1);
    gate.open();
    assert_eq!(stale_batch.await.unwrap().unwrap_err().kind(), ErrorKind::Fenced);
    assert_eq!(notifications.lock().unwrap().len(), 1, "the stale invocation did not call: {notifications:?}");
    assert_eq!(first_interrupted.load(Ordering::SeqCst), 1, "it found the call held");
}

/// A claim leaves a partition to the invocation whose lease is live, the backlog check
/// skips it, and a release or the lease's end lets the next claim in.
#[tokio::test]
async fn a_lease_keeps_other_claims_out_until_released_or_expired() {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = log_with_one_event(&storage).await;
    let clock = ManualClock::new(SystemClock.now_ms());
    let engine = Engine::builder(storage.clone(), "cards", Arc::new(Notifier::default()))
        .settings(settings())
        .clock(clock.clone())
        .build()
        .unwrap();
    let lease = |ms: u64| ClaimOptions { lease_until_ms: Some(clock.now_ms() + ms), ..Default::default() };
    let holder = engine.claim_with(0, lease(60_000)).await.unwrap();
    let refused = engine.claim(0).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Leased, "{refused}");
    assert!(engine.backlog().await.unwrap().is_empty(), "a leased partition is no one else's backlog");
    holder.release().await.unwrap();
    assert_eq!(engine.backlog().await.unwrap().len(), 1, "released: backlog again");

    // A holder that crashed keeps the partition only until its lease ends.
    let crashed = engine.claim_with(0, lease(60_000)).await.unwrap();
    drop(crashed);
    assert_eq!(engine.claim(0).await.unwrap_err().kind(), ErrorKind::Leased);
    clock.advance(Duration::from_secs(61));
    let now = clock.now_ms();
    let shift = Shift { stop_at_ms: now + 10_000, lease_until_ms: now + 60_000 };
    let (report, ending) = engine.drain_until(0, None, shift).await;
    ending.unwrap();
    assert_eq!(report.events, 1);
    // drain_until released its lease: the next claim need not wait.
    log.append("b1", &[LogEvent::json("card-1", &serde_json::json!({"amount": 5}))]).await.unwrap();
    assert_eq!(engine.drain_partition(0).await.unwrap().events, 1);
}

/// A writer that wrote its state run and then stalled, or died, before its commit, on a
/// partition nothing else claims. Within the grace period collection spares the run (it is
/// numbered after the head: the commit may still come). Past it, collection takes that
/// number itself, which fences the writer, and the run goes: nothing is left numbered after
/// the head. The event is not lost: the next invocation processes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_takes_the_number_of_a_commit_that_never_came() {
    let memory: Arc<InMemory> = Arc::new(InMemory::new());
    let storage = Storage::new(memory.clone(), "");
    log_with_one_event(&storage).await;
    // The writer's batch commit (manifest 2, after its claim's 1) waits at the store.
    let gate = Gate::new("/manifest/00000000000000000002.json");
    let gated = storage.with_store(Arc::new(PolicyStore::new(memory.clone()).with_gate(gate.clone())));
    let mut writer = engine(&gated, Notifier::default()).claim(0).await.unwrap();
    let stalled = tokio::spawn(async move { writer.process_batch().await });
    gate.wait_held().await;
    let state_runs = || async {
        let listed = storage.list_after(&storage.path("agents/cards/p00000/state"), None).await.unwrap();
        listed.len()
    };
    assert_eq!(state_runs().await, 1, "the stalled commit's run");

    let settings = EngineSettings::default();
    let within = ManualClock::new(SystemClock.now_ms() + settings.gc_grace_ms / 2);
    let report = collect_partition(&storage, "cards", 0, &settings, within.as_ref()).await.unwrap();
    assert_eq!((report.runs, state_runs().await), (0, 1), "spared within the grace period: {report:?}");

    let past = ManualClock::new(SystemClock.now_ms() + settings.gc_grace_ms + 60_000);
    let report = collect_partition(&storage, "cards", 0, &settings, past.as_ref()).await.unwrap();
    assert_eq!((report.runs, state_runs().await), (1, 0), "taken past it: {report:?}");
    let reader = CommittedReader::new(storage.clone(), "cards", 0).unwrap();
    let head = reader.head().await.unwrap().unwrap();
    assert_eq!((head.seq(), head.kind()), (2, weir_engine::CommitKind::Release), "collection took number 2");

    gate.open();
    let fenced = stalled.await.unwrap().unwrap_err();
    assert_eq!(fenced.kind(), ErrorKind::Fenced, "the writer cannot commit over collection's number");
    assert_eq!(engine(&storage, Notifier::default()).drain().await.unwrap().events, 1, "the event is processed");
    assert_eq!(reader.state("card-1").await.unwrap().as_deref(), Some(&b"1"[..]));
}

/// An appender that learned the tail, then came back after retention collected every
/// segment below the readers, appends at the tail, not into the hole it left.
#[tokio::test]
async fn a_warm_appender_never_writes_below_the_retained_tail() {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let clock = ManualClock::new(SystemClock.now_ms());
    let warm = EventLog::create(storage.clone(), 1).await.unwrap().with_clock(clock.clone());
    let event = |n: u32| vec![LogEvent::json("card-1", &serde_json::json!({"n": n}))];
    assert_eq!(warm.append("a", &event(0)).await.unwrap()[0].segment, 0);
    let other = EventLog::open(storage.clone()).await.unwrap();
    for n in 1..4 {
        other.append(&format!("b{n}"), &event(n)).await.unwrap();
    }
    let engine = engine(&storage, Notifier::default());
    assert_eq!(engine.drain().await.unwrap().events, 4);
    let retention = EngineSettings { log_retention_ms: 3_600_000, ..Default::default() };
    let later = ManualClock::new(SystemClock.now_ms() + 2 * 3_600_000);
    assert_eq!(collect_log(&other, &retention, later.as_ref()).await.unwrap().segments, 3);

    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(warm.append("late", &event(4)).await.unwrap()[0].segment, 4, "after the retained tail");
    assert_eq!(engine.drain().await.unwrap().events, 1, "and processed");
}

/// A journaled call answers only the call of its name: after the action's calls changed
/// order, the event fails with both names instead of taking another call's result.
#[tokio::test]
async fn a_replayed_call_must_carry_its_own_name() {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    log_with_one_event(&storage).await;
    let dir = PartitionDir::new(storage.clone(), "cards", 0).unwrap();
    let entry = serde_json::json!({
        "event": {"segment": 0, "index": 0}, "key": "card-1", "step": 0, "name": "refund", "outcome": {"done": 7}
    });
    let journal = dir.path("journal/00000000000000000000-000000/earlier-000000.jnl");
    storage.put(&journal, format!("{entry}\n").into()).await.unwrap();
    let agent = Notifier::default();
    let notifications = agent.notifications.clone();
    let report = engine(&storage, agent).drain_partition(0).await.unwrap();
    assert_eq!((report.outputs, report.dead_letters), (0, 1));
    let dead = CommittedReader::new(storage.clone(), "cards", 0).unwrap().dead_letters().await.unwrap();
    assert!(dead[0].reason.contains("`score` meets a journaled call `refund`"), "{}", dead[0].reason);
    assert!(notifications.lock().unwrap().is_empty(), "nothing ran on another call's result");
}

/// A store that lets a create-if-absent replace what is there is refused, by name, before
/// an engine or an appender relies on it.
#[tokio::test]
async fn a_store_that_ignores_create_if_absent_is_refused() {
    let memory: Arc<InMemory> = Arc::new(InMemory::new());
    log_with_one_event(&Storage::new(memory.clone(), "")).await;
    let careless = Storage::new(Arc::new(PolicyStore::ignoring_create(memory.clone())), "");
    let claim = engine(&careless, Notifier::default()).claim(0).await.unwrap_err();
    assert_eq!(claim.kind(), ErrorKind::InvalidInput);
    assert!(claim.to_string().contains("ignores create-if-absent (If-None-Match: *)"), "{claim}");
    let log = EventLog::open(careless).await.unwrap();
    let append = log.append("b1", &[LogEvent::json("k", &serde_json::json!({}))]).await.unwrap_err();
    assert!(append.to_string().contains("ignores create-if-absent"), "{append}");
}
