//! Durable calls, after Flink Agents' own scenarios: several in one action, one that errors,
//! replay of a journaled result, an interrupted at-most-once call, and per-key order with
//! cross-key concurrency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_engine::{
    ActionError, Agent, CallId, CallMode, CommittedReader, Durable, DurableError, Engine, EngineSettings, EventContext,
    EventLog, JournalEntry, LogEvent, LogInput, Outcome, Position, Storage,
};

/// Makes three durable calls per event: two at once, then an at-most-once one; fails the
/// first attempt of a call named in the payload.
#[derive(Default)]
struct ThreeCalls {
    executed: Mutex<Vec<(String, String)>>,
    failed_once: Mutex<HashMap<String, bool>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    per_key_in_flight: Mutex<HashMap<String, usize>>,
    per_key_overlap: AtomicUsize,
}

impl ThreeCalls {
    async fn call(&self, name: &str, key: String, fail_first: bool) -> Result<String, std::io::Error> {
        self.executed.lock().unwrap().push((name.to_string(), key.clone()));
        if fail_first && !self.failed_once.lock().unwrap().insert(key.clone(), true).unwrap_or(false) {
            return Err(std::io::Error::other(format!("{name} failed once")));
        }
        Ok(format!("{name}-result"))
    }
}

#[async_trait::async_trait]
impl Agent for ThreeCalls {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        {
            let mut per_key = self.per_key_in_flight.lock().unwrap();
            let n = per_key.entry(event.key.clone()).or_default();
            *n += 1;
            if *n > 1 {
                self.per_key_overlap.fetch_add(1, Ordering::SeqCst);
            }
        }
        let fail = event.payload["fail_first"].as_str().unwrap_or_default();
        let (fail_a, fail_b) = (fail == "a", fail == "b");
        let (a, b) = futures::join!(
            ctx.durable_call("a", CallMode::AtLeastOnce, |key| self.call("a", key, fail_a)),
            ctx.durable_call("b", CallMode::AtLeastOnce, |key| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                self.call("b", key, fail_b).await
            }),
        );
        let result = (|| -> Result<(String, String), ActionError> { Ok((a?, b?)) })();
        let c = match ctx.durable_call("c", CallMode::AtMostOnce, |key| self.call("c", key, false)).await {
            Ok(value) => value,
            Err(DurableError::Interrupted { .. }) => "interrupted".to_string(),
            Err(e) => return Err(e.into()),
        };
        *self.per_key_in_flight.lock().unwrap().get_mut(&event.key).unwrap() -= 1;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let (a, b) = result?;
        ctx.emit(&serde_json::json!({"a": a, "b": b, "c": c}))?;
        Ok(())
    }
}

async fn setup(events: Vec<LogEvent>) -> Storage {
    let storage = Storage::from_url("memory://").unwrap();
    EventLog::create(storage.clone(), 1).await.unwrap().append("b", &events).await.unwrap();
    storage
}

async fn drain(storage: &Storage, agent: Arc<ThreeCalls>) -> Vec<serde_json::Value> {
    let settings = EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() };
    Engine::builder(storage.clone(), "calls", agent).settings(settings).build().unwrap().drain().await.unwrap();
    let outputs = CommittedReader::new(storage.clone(), "calls", 0).unwrap().outputs().await.unwrap();
    outputs.into_iter().map(|o| o.payload).collect()
}

fn entry(step: u32, name: &str, outcome: Outcome) -> JournalEntry {
    JournalEntry {
        call: CallId { event: Position::new(0, 0), key: "k".into(), branch: String::new(), step },
        name: name.into(),
        outcome,
    }
}

/// Writes journal entries as a crashed earlier attempt would have (format: storage-format.md).
async fn journal_from_a_crashed_attempt(storage: &Storage, entries: &[JournalEntry]) {
    let lines: String = entries.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    let path = storage.path("agents/calls/p00000/journal/00000000000000000000-000000/0123456789abcdef-000000.jnl");
    storage.put(&path, lines.into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_calls_in_one_action_run_once_each() {
    let storage = setup(vec![LogEvent::json("k", &serde_json::json!({}))]).await;
    let agent = Arc::new(ThreeCalls::default());
    let outputs = drain(&storage, agent.clone()).await;
    assert_eq!(outputs, vec![serde_json::json!({"a": "a-result", "b": "b-result", "c": "c-result"})]);
    let names: Vec<String> = agent.executed.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_is_retried_with_its_key_and_successful_ones_are_not_repeated() {
    let storage = setup(vec![LogEvent::json("k", &serde_json::json!({"fail_first": "b"}))]).await;
    let agent = Arc::new(ThreeCalls::default());
    let outputs = drain(&storage, agent.clone()).await;
    assert_eq!(outputs.len(), 1);
    let executed = agent.executed.lock().unwrap().clone();
    let of = |name: &str| executed.iter().filter(|(n, _)| n == name).map(|(_, k)| k.clone()).collect::<Vec<_>>();
    assert_eq!(of("a").len(), 1, "a succeeded in the first attempt and is replayed in the second");
    assert_eq!(of("b").len(), 2, "b failed, so the event's retry calls it again");
    assert_eq!(of("b")[0], of("b")[1], "with the same idempotency key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_results_replay_and_interrupted_intents_do_not_run_again() {
    let storage = setup(vec![LogEvent::json("k", &serde_json::json!({}))]).await;
    journal_from_a_crashed_attempt(
        &storage,
        &[entry(0, "a", Outcome::done(&"a-from-journal").unwrap()), entry(2, "c", Outcome::Intent)],
    )
    .await;
    let agent = Arc::new(ThreeCalls::default());
    let outputs = drain(&storage, agent.clone()).await;
    assert_eq!(outputs, vec![serde_json::json!({"a": "a-from-journal", "b": "b-result", "c": "interrupted"})]);
    let names: Vec<String> = agent.executed.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, vec!["b"], "only the call with nothing journaled ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_run_concurrently_and_each_key_in_order() {
    let events: Vec<LogEvent> =
        (0..40).map(|i| LogEvent::json(format!("key-{}", i % 8), &serde_json::json!({"i": i}))).collect();
    let storage = setup(events).await;
    let agent = Arc::new(ThreeCalls::default());
    assert_eq!(drain(&storage, agent.clone()).await.len(), 40);
    assert!(agent.max_in_flight.load(Ordering::SeqCst) > 1, "events of different keys overlapped");
    assert_eq!(agent.per_key_overlap.load(Ordering::SeqCst), 0, "events of one key never overlapped");
}

/// Two branches of two calls each, run at once; the branch's calls are numbered apart.
struct TwoBranches {
    executed: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Agent for TwoBranches {
    async fn on_event(&self, _: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let run = |label: &'static str| {
            let branch = ctx.branch(label);
            async move {
                let mut results = Vec::new();
                for step in 0..2 {
                    let name = format!("{label}{step}");
                    let call = async {
                        // The first branch is slower, so completion order differs from start order.
                        tokio::time::sleep(Duration::from_millis(if label == "x" { 20 } else { 1 })).await;
                        self.executed.lock().unwrap().push(name.clone());
                        Ok::<_, std::io::Error>(format!("{name}-result"))
                    };
                    results.push(branch.durable(&name, call).await?);
                }
                Ok::<_, DurableError<std::io::Error>>(results)
            }
        };
        let (x, y) = futures::join!(run("x"), run("y"));
        ctx.emit(&serde_json::json!({"x": x?, "y": y?}))?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_number_their_calls_apart_and_replay_whatever_order_they_finished_in() {
    let storage = setup(vec![LogEvent::json("k", &serde_json::json!({}))]).await;
    let mut journaled = entry(1, "y1", Outcome::done(&"y1-from-journal").unwrap());
    journaled.call.branch = "y".into();
    journal_from_a_crashed_attempt(&storage, &[journaled]).await;
    let agent = Arc::new(TwoBranches { executed: Mutex::new(Vec::new()) });
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    Engine::builder(storage.clone(), "calls", agent.clone()).settings(settings).build().unwrap().drain().await.unwrap();
    let outputs = CommittedReader::new(storage.clone(), "calls", 0).unwrap().outputs().await.unwrap();
    assert_eq!(
        outputs[0].payload,
        serde_json::json!({"x": ["x0-result", "x1-result"], "y": ["y0-result", "y1-from-journal"]})
    );
    let mut executed = agent.executed.lock().unwrap().clone();
    executed.sort();
    assert_eq!(executed, vec!["x0", "x1", "y0"]);
}

/// Refuses every event.
struct Refuses;

#[async_trait::async_trait]
impl Agent for Refuses {
    async fn on_event(&self, _: &LogInput, _: &mut EventContext) -> Result<(), ActionError> {
        Err(weir_engine::Rejected::new("never valid").into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_event_is_dead_lettered_at_once() {
    let storage = setup(vec![LogEvent::json("k", &serde_json::json!({}))]).await;
    let settings = EngineSettings { max_attempts: 5, ..Default::default() };
    Engine::builder(storage.clone(), "calls", Arc::new(Refuses))
        .settings(settings)
        .build()
        .unwrap()
        .drain()
        .await
        .unwrap();
    let dead = CommittedReader::new(storage.clone(), "calls", 0).unwrap().dead_letters().await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts, dead[0].reason.as_str()), (1, 1, "rejected: never valid"));
}
