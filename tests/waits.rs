//! Durable waits (docs/waits.md): a key waits for a signal or a time while its later events
//! queue and other keys go on; it resumes once, with its calls before the wait replayed;
//! signals that match no wait are dead-lettered; timers fire once across crashes and racing
//! invocations. Time is a `ManualClock`: no test waits on a wall clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::memory::InMemory;
use weir_engine::{
    ActionError, Agent, Clock, CommittedReader, Durable, Engine, EngineSettings, ErrorKind, EventContext, EventLog,
    LogEvent, LogInput, ManualClock, Position, Signal, Storage, Unavailable, Wake,
};

const HOUR_MS: u64 = 3_600_000;

/// Orders wait for an approval (or an hour); notes just emit; reminders sleep until a time.
#[derive(Default)]
struct Orders {
    /// Every durable call that ran, as `name:key`.
    calls: Mutex<Vec<String>>,
    /// Fail the first run after a wait as if the invocation died there (after its call).
    crash_after_wait: AtomicBool,
}

impl Orders {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| *c == call).count()
    }

    async fn call(&self, name: &str, key: &str) -> Result<String, std::io::Error> {
        self.calls.lock().unwrap().push(format!("{name}:{key}"));
        Ok(format!("{name}-done"))
    }
}

#[async_trait::async_trait]
impl Agent for Orders {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let key = event.key.clone();
        match event.payload["kind"].as_str() {
            Some("order") => {
                let id = event.payload["id"].as_str().unwrap_or_default().to_string();
                ctx.durable("check", self.call("check", &key)).await?;
                ctx.emit(&serde_json::json!({"pending": id}))?;
                let wake = ctx.wait_for("approval", &id, Duration::from_millis(HOUR_MS)).await?;
                let decision = match wake {
                    Wake::Signal(answer) if answer["approved"] == true => "approved",
                    Wake::Signal(_) => "denied",
                    Wake::TimedOut => "timed out",
                };
                if decision == "approved" {
                    ctx.durable("ship", self.call("ship", &key)).await?;
                }
                if self.crash_after_wait.swap(false, Ordering::SeqCst) {
                    return Err(Unavailable::new("the invocation died here").into());
                }
                ctx.set_state(&decision)?;
                ctx.emit(&serde_json::json!({"order": id, "decision": decision}))?;
            }
            Some("remind") => {
                let at = event.payload["at"].as_u64().unwrap_or_default();
                ctx.sleep_until(at).await?;
                ctx.durable("remind", self.call("remind", &key)).await?;
                ctx.emit(&serde_json::json!({"reminded": at}))?;
            }
            _ => {
                let seen = ctx.state::<String>()?;
                ctx.emit(&serde_json::json!({"note": event.payload["n"], "after": seen}))?;
            }
        }
        Ok(())
    }
}

struct World {
    storage: Storage,
    log: EventLog,
    clock: Arc<ManualClock>,
    agent: Arc<Orders>,
}

impl World {
    async fn new() -> Self {
        let storage = Storage::new(Arc::new(InMemory::new()), "");
        let clock = ManualClock::new(1_700_000_000_000);
        let log = EventLog::create(storage.clone(), 1).await.unwrap().with_clock(clock.clone());
        World { storage, log, clock, agent: Arc::default() }
    }

    fn engine(&self) -> Engine {
        let settings = EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() };
        Engine::builder(self.storage.clone(), "orders", self.agent.clone())
            .settings(settings)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    async fn append(&self, batch: &str, events: &[(&str, serde_json::Value)]) {
        let events: Vec<LogEvent> = events.iter().map(|(key, payload)| LogEvent::json(*key, payload)).collect();
        self.log.append(batch, &events).await.unwrap();
    }

    async fn signal(&self, batch: &str, key: &str, id: &str, approved: bool) {
        let signal = Signal::new("approval", id, serde_json::json!({"approved": approved}));
        self.append(batch, &[(key, signal.to_payload())]).await;
    }

    fn reader(&self) -> CommittedReader {
        CommittedReader::new(self.storage.clone(), "orders", 0).unwrap()
    }

    /// Every committed output of `key`, in commit order.
    async fn outputs(&self, key: &str) -> Vec<serde_json::Value> {
        let outputs = self.reader().outputs().await.unwrap();
        outputs.into_iter().filter(|o| o.key == key).map(|o| o.payload).collect()
    }
}

fn order(id: &str) -> serde_json::Value {
    serde_json::json!({"kind": "order", "id": id})
}

fn note(n: u32) -> serde_json::Value {
    serde_json::json!({"kind": "note", "n": n})
}

/// A waiting key's later events queue behind its wait while another key commits; the
/// signal resumes the wait once, the calls before it are not made again, and the queued
/// events run after it, in order.
#[tokio::test]
async fn a_key_waits_while_its_later_events_queue_and_other_keys_commit() {
    let world = World::new().await;
    world.append("b0", &[("alice", order("o-1")), ("alice", note(1)), ("bob", note(1)), ("alice", note(2))]).await;
    let first = world.engine().drain().await.unwrap();
    assert_eq!(first.events, 4);
    assert_eq!(world.outputs("alice").await, vec![serde_json::json!({"pending": "o-1"})]);
    assert_eq!(world.outputs("bob").await, vec![serde_json::json!({"note": 1, "after": null})]);
    let waits = world.reader().waits().await.unwrap();
    assert_eq!(waits.len(), 1);
    assert_eq!((waits[0].key.as_str(), waits[0].correlation_id.as_deref(), waits[0].queued), ("alice", Some("o-1"), 2));

    // Other keys keep going while alice waits.
    world.append("b1", &[("bob", note(2)), ("alice", note(3))]).await;
    world.engine().drain().await.unwrap();
    assert_eq!(world.outputs("bob").await.len(), 2);
    assert_eq!(world.outputs("alice").await.len(), 1, "alice's notes queue");
    assert_eq!(world.reader().waits().await.unwrap()[0].queued, 3);

    world.signal("b2", "alice", "o-1", true).await;
    let resumed = world.engine().drain().await.unwrap();
    assert_eq!(resumed.events, 1);
    let notes = |n: u32| serde_json::json!({"note": n, "after": "approved"});
    assert_eq!(
        world.outputs("alice").await,
        vec![
            serde_json::json!({"pending": "o-1"}),
            serde_json::json!({"order": "o-1", "decision": "approved"}),
            notes(1),
            notes(2),
            notes(3),
        ],
        "the pending output once, the decision, then the queued notes in log order"
    );
    assert_eq!(world.agent.count("check:alice"), 1, "the call before the wait replayed: {:?}", world.agent.calls());
    assert_eq!(world.agent.count("ship:alice"), 1);
    assert!(world.reader().waits().await.unwrap().is_empty());
    assert_eq!(world.reader().state("alice").await.unwrap().as_deref(), Some(&b"\"approved\""[..]));
    // The order's trace is the resuming batch's, not the one that took the event.
    let first = Position::new(0, 0);
    let trace = world.reader().trace(first).await.unwrap().expect("the waited event's trace is found");
    assert_eq!(trace.event, first);
}

/// A second answer, an answer for a wait the key never began and a signal to a key that is
/// not waiting are dead-lettered with their reason; the held call ran once.
#[tokio::test]
async fn answers_that_match_no_wait_are_dead_lettered_with_a_reason() {
    let world = World::new().await;
    world.append("b0", &[("alice", order("o-1"))]).await;
    world.engine().drain().await.unwrap();
    world.signal("b1", "alice", "o-2", true).await;
    world.signal("b2", "alice", "o-1", true).await;
    world.signal("b3", "alice", "o-1", false).await;
    world.signal("b4", "bob", "o-1", true).await;
    world.engine().drain().await.unwrap();
    let dead = world.reader().dead_letters().await.unwrap();
    let reasons: Vec<(&str, &str)> = dead.iter().map(|d| (d.key.as_str(), d.reason.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            ("alice", "signal `approval` `o-2` matches no wait: key `alice` is not waiting"),
            ("alice", "signal `approval` `o-1` matches no wait: key `alice` is not waiting"),
            ("bob", "signal `approval` `o-1` matches no wait: key `bob` is not waiting"),
        ]
    );
    assert_eq!(world.agent.count("ship:alice"), 1);
    let decisions: Vec<_> = world.outputs("alice").await.into_iter().filter(|o| o.get("decision").is_some()).collect();
    assert_eq!(decisions, vec![serde_json::json!({"order": "o-1", "decision": "approved"})]);
}

/// A wait's timeout is found from the head alone (the backlog check), fires once, and
/// an answer after it is refused.
#[tokio::test]
async fn a_timeout_fires_once_from_the_index_of_wake_ups() {
    let world = World::new().await;
    world.append("b0", &[("alice", order("o-1"))]).await;
    let engine = world.engine();
    engine.drain().await.unwrap();
    assert!(engine.backlog().await.unwrap().is_empty(), "nothing due yet");
    world.clock.advance(Duration::from_millis(HOUR_MS));
    let due = engine.backlog().await.unwrap();
    assert_eq!(due.len(), 1, "the partition has a due wait though its log has no new event");
    let report = engine.drain().await.unwrap();
    assert_eq!((report.events, report.batches), (0, 1));
    assert!(engine.backlog().await.unwrap().is_empty());
    engine.drain().await.unwrap();
    world.signal("b1", "alice", "o-1", true).await;
    engine.drain().await.unwrap();
    assert_eq!(world.agent.count("ship:alice"), 0, "denied by default after the timeout");
    let decisions: Vec<_> = world.outputs("alice").await.into_iter().filter(|o| o.get("decision").is_some()).collect();
    assert_eq!(decisions, vec![serde_json::json!({"order": "o-1", "decision": "timed out"})]);
    assert_eq!(world.reader().dead_letters().await.unwrap().len(), 1, "the late answer is refused");
}

/// An invocation that dies after the resumed run made its call leaves the wait in place;
/// the next one resumes it with the same decision and does not make the call again.
#[tokio::test(start_paused = true)]
async fn an_answer_during_a_crash_resumes_once_without_repeating_calls() {
    let world = World::new().await;
    world.append("b0", &[("alice", order("o-1")), ("alice", note(1))]).await;
    world.engine().drain().await.unwrap();
    world.signal("b1", "alice", "o-1", true).await;
    world.agent.crash_after_wait.store(true, Ordering::SeqCst);
    let engine = world.engine();
    let mut crashed = engine.claim(0).await.unwrap();
    assert_eq!(crashed.process_batch().await.unwrap_err().kind(), ErrorKind::Unavailable);
    // Let its journal's group commit run, as an invocation that died a moment later would.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(crashed);
    assert_eq!(world.reader().waits().await.unwrap().len(), 1, "the wait stays until a commit ends it");
    assert_eq!(world.agent.count("ship:alice"), 1);

    world.engine().drain().await.unwrap();
    assert_eq!(world.agent.count("ship:alice"), 1, "journaled after the wait: replayed");
    assert_eq!(world.agent.count("check:alice"), 1);
    let outputs = world.outputs("alice").await;
    assert_eq!(outputs.len(), 3, "pending, decision, note: {outputs:?}");
    assert!(world.reader().waits().await.unwrap().is_empty());
}

/// Timers fire once whatever invocations race for them: the one that commits ends the
/// wait, the other is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_once_across_racing_invocations() {
    let world = World::new().await;
    let at = world.clock.now_ms() + 60_000;
    world.append("b0", &[("alice", serde_json::json!({"kind": "remind", "at": at})), ("bob", note(1))]).await;
    world.engine().drain().await.unwrap();
    assert_eq!(world.agent.count("remind:alice"), 0);
    world.clock.advance(Duration::from_millis(60_000));
    let (a, b) = (world.engine(), world.engine());
    let mut first = a.claim(0).await.unwrap();
    let mut second = b.claim(0).await.unwrap();
    let fenced = first.process_batch().await;
    assert_eq!(fenced.unwrap_err().kind(), ErrorKind::Fenced);
    let report = second.process_batch().await.unwrap();
    assert_eq!(report.resumed, 1);
    second.release().await.unwrap();
    world.engine().drain().await.unwrap();
    let reminded: Vec<_> = world.outputs("alice").await;
    assert_eq!(reminded, vec![serde_json::json!({"reminded": at})]);
    assert!(world.reader().waits().await.unwrap().is_empty());
    // The fenced invocation may have run the call; the journal keeps the winner from
    // making it again only if it was flushed first, so the call is at least once, the
    // output exactly once.
    assert!(world.agent.count("remind:alice") >= 1);
}

/// Many keys, each waiting for its own answer: a wait for every key, one answer each,
/// every decision committed once.
/// Two requests of one key answered in the other order: the second answer queues behind
/// the first wait and answers the second wait once it begins.
#[tokio::test]
async fn answers_in_the_other_order_both_reach_their_waits() {
    let world = World::new().await;
    world.append("b0", &[("alice", order("o-1")), ("alice", order("o-2"))]).await;
    world.engine().drain().await.unwrap();
    world.signal("b1", "alice", "o-2", true).await;
    world.engine().drain().await.unwrap();
    assert_eq!(world.reader().waits().await.unwrap()[0].correlation_id.as_deref(), Some("o-1"));
    world.signal("b2", "alice", "o-1", false).await;
    world.engine().drain().await.unwrap();
    let decisions: Vec<_> = world.outputs("alice").await.into_iter().filter(|o| o.get("decision").is_some()).collect();
    assert_eq!(
        decisions,
        vec![
            serde_json::json!({"order": "o-1", "decision": "denied"}),
            serde_json::json!({"order": "o-2", "decision": "approved"}),
        ]
    );
    assert!(world.reader().waits().await.unwrap().is_empty());
    assert!(world.reader().dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_key_resumes_on_its_own_answer() {
    let world = World::new().await;
    let keys: Vec<String> = (0..20).map(|k| format!("card-{k}")).collect();
    let orders: Vec<(&str, serde_json::Value)> = keys.iter().map(|k| (k.as_str(), order(k))).collect();
    world.append("b0", &orders).await;
    world.engine().drain().await.unwrap();
    assert_eq!(world.reader().waits().await.unwrap().len(), 20);
    for (i, key) in keys.iter().enumerate() {
        world.signal(&format!("s{i}"), key, key, i % 2 == 0).await;
    }
    world.engine().drain().await.unwrap();
    assert!(world.reader().waits().await.unwrap().is_empty());
    let mut decisions: HashMap<String, String> = HashMap::new();
    for output in world.reader().outputs().await.unwrap() {
        if let Some(decision) = output.payload.get("decision") {
            assert!(decisions.insert(output.key.clone(), decision.as_str().unwrap().into()).is_none());
        }
    }
    assert_eq!(decisions.len(), 20);
    assert_eq!(world.agent.calls().iter().filter(|c| c.starts_with("ship:")).count(), 10);
}
