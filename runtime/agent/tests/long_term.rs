//! Long-term memory: memories added by actions commit with the key's state, so a crash at any
//! request of a batch leaves each memory exactly once; past a set's capacity the oldest are
//! summarised by a journaled model call; memories expire after the set's TTL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use serde_json::json;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{Action, ActionError, Context, Event, InputEvent, MemorySetConfig, WorkflowAgent};
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{Engine, EngineSettings, EventLog, LogEvent, ManualClock, Storage};

const AGENT: &str = "agent-under-test";

/// Remembers each transaction's decision for its card, and outputs how many earlier
/// decisions about the same merchant it recalled.
async fn decide(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let merchant = input.input["merchant"].as_str().unwrap_or_default().to_string();
    let recalled = ctx.recall("decisions", &merchant, 10).await?;
    let text =
        format!("txn {} at {merchant}: {}", input.input["txn"], input.input["decision"].as_str().unwrap_or_default());
    let metadata = BTreeMap::from([("merchant".to_string(), merchant)]);
    ctx.remember("decisions", text, metadata).await?;
    ctx.output(&json!({"txn": input.input["txn"], "recalled": recalled.len()}))?;
    Ok(())
}

fn agent(config: MemorySetConfig, summarizer: Option<Arc<FakeModel>>) -> WorkflowAgent {
    let mut builder = WorkflowAgent::builder()
        .memory_set("decisions", config)
        .action(Action::new("decide", decide).on::<InputEvent>());
    if let Some(model) = summarizer {
        builder = builder.model("summarizer", model);
    }
    builder.build().unwrap()
}

fn transactions() -> Vec<LogEvent> {
    (0..12)
        .map(|i| {
            let card = format!("card-{}", i % 3);
            let decision = if i % 4 == 0 { "hold" } else { "allow" };
            LogEvent::json(card, &json!({"txn": i, "merchant": format!("m-{}", i % 2), "decision": decision}))
        })
        .collect()
}

fn settings() -> EngineSettings {
    EngineSettings { max_batch_events: 4, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

async fn seeded_storage() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    log.append("transactions", &transactions()).await.unwrap();
    storage
}

/// Each card's memories as committed: (id, text), oldest first.
async fn memories(storage: &Storage) -> BTreeMap<String, Vec<(String, String)>> {
    let test =
        AgentTest::on(storage.clone(), Arc::new(agent(MemorySetConfig::default(), None)), settings()).await.unwrap();
    let mut all = BTreeMap::new();
    for card in ["card-0", "card-1", "card-2"] {
        let memory = test.long_term(card).await.unwrap();
        all.insert(card.to_string(), memory.items("decisions").map(|m| (m.id.clone(), m.text.clone())).collect());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_request_of_a_batch_that_adds_memories_leaves_each_memory_once() {
    let baseline_storage = seeded_storage().await;
    let plan = Arc::new(FaultPlan::none());
    let counted =
        baseline_storage.with_store(Arc::new(FaultyStore::new(baseline_storage.store().clone(), plan.clone())));
    let engine = Engine::builder(counted, AGENT, Arc::new(agent(MemorySetConfig::default(), None)))
        .settings(settings())
        .build()
        .unwrap();
    assert_eq!(engine.drain_partition(0).await.unwrap().events, 12);
    let baseline = memories(&baseline_storage).await;
    assert_eq!(baseline.values().map(Vec::len).sum::<usize>(), 12, "one memory per transaction");
    assert!(baseline["card-0"][0].1.starts_with("txn 0 at m-0: hold"));
    let requests = plan.requests();
    assert!(requests > 10, "several batches make many requests ({requests})");

    for n in 1..=requests {
        let storage = seeded_storage().await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Crash));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let crashing = async {
            let engine = Engine::builder(faulty, AGENT, Arc::new(agent(MemorySetConfig::default(), None)))
                .settings(settings())
                .build()?;
            engine.drain_partition(0).await
        };
        tokio::select! {
            result = crashing => { let _ = result; }
            () = plan.wait_crashed() => {}
        }
        let rerun = Engine::builder(storage.clone(), AGENT, Arc::new(agent(MemorySetConfig::default(), None)))
            .settings(settings())
            .build()
            .unwrap();
        rerun.drain_partition(0).await.unwrap();
        assert_eq!(memories(&storage).await, baseline, "crash at request {n}: memories differ from a run without one");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_capacity_a_set_is_summarised_by_a_journaled_model_call() {
    let model = Arc::new(FakeModel::answering("summarizer", |request| {
        let lines = request.messages.last().unwrap().content.lines().count();
        Ok(FakeModel::text(format!("summary of {lines} decisions")))
    }));
    let config = MemorySetConfig { capacity: Some(3), summarizer: Some("summarizer".into()), ..Default::default() };
    let test = AgentTest::new(Arc::new(agent(config, Some(model.clone())))).await;
    let events = (0..5).map(|i| ("card-9", json!({"txn": i, "merchant": "m-1", "decision": "allow"})));
    let run = test.run(events).await.unwrap();
    assert_eq!(run.outputs().iter().map(|o| o["recalled"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2, 3, 2]);
    let memory = test.long_term("card-9").await.unwrap();
    let texts: Vec<&str> = memory.items("decisions").map(|m| m.text.as_str()).collect();
    // The fourth memory made four, past three: the oldest two became one summary; the fifth
    // made four again: that summary and the next oldest became a new one.
    assert_eq!(texts, vec!["summary of 2 decisions", "txn 3 at m-1: allow", "txn 4 at m-1: allow"]);
    assert_eq!(memory.items("decisions").next().unwrap().metadata["summary_of"], "2");
    let requests = model.requests();
    assert_eq!(requests.len(), 2, "one summarising call per compaction");
    assert_eq!(requests[0].messages[1].content, "- txn 0 at m-1: allow\n- txn 1 at m-1: allow");
    assert_eq!(requests[1].messages[1].content, "- summary of 2 decisions\n- txn 2 at m-1: allow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memories_expire_after_the_sets_ttl() {
    let clock = ManualClock::new(1_000_000);
    let config = MemorySetConfig { ttl_ms: Some(60_000), ..Default::default() };
    let agent = WorkflowAgent::builder()
        .memory_set("decisions", config)
        .clock(clock.clone())
        .action(Action::new("decide", decide).on::<InputEvent>())
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let first = test.run([("card-1", json!({"txn": 1, "merchant": "m-1", "decision": "hold"}))]).await.unwrap();
    assert_eq!(first.outputs()[0]["recalled"], 0);
    clock.advance(Duration::from_secs(30));
    let soon = test.run([("card-1", json!({"txn": 2, "merchant": "m-1", "decision": "allow"}))]).await.unwrap();
    assert_eq!(soon.outputs()[0]["recalled"], 1, "30 s later the first is remembered");
    clock.advance(Duration::from_secs(45));
    let later = test.run([("card-1", json!({"txn": 3, "merchant": "m-1", "decision": "allow"}))]).await.unwrap();
    assert_eq!(later.outputs()[0]["recalled"], 1, "75 s after it, the first has expired; the second has not");
}
