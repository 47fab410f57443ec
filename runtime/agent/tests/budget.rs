//! Budgets per key: a key whose budget is spent stops exactly where a run without crashes
//! stops it, whatever request the invocation died at; its other keys go on; a cheaper
//! model can take over instead; or the key pauses until the period ends, its later events
//! queued behind it, and goes on in the new period. Budgets per agent: see `per_agent`.

use std::sync::Arc;

use object_store::memory::InMemory;
use serde_json::json;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{
    Action, ActionError, Budget, ChatRequestEvent, ChatResponseEvent, Context, Event, InputEvent, OnExhausted,
    WorkflowAgent,
};
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{EngineSettings, EventLog, LogEvent, ManualClock, Storage};
use weir_models::ChatMessage;

/// Tokens of each fake model call: 10 in, 5 out.
const CALL_TOKENS: u64 = 15;
/// A key's budget: seven calls fit under it (the eighth event finds 105 spent).
const BUDGET_TOKENS: u64 = 100;

async fn ask(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let question = ChatMessage::user(input.input["review"].as_str().unwrap_or_default());
    ctx.send(ChatRequestEvent { model: "smart".into(), messages: vec![question], ..Default::default() })?;
    Ok(())
}

async fn answer(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    ctx.output(&json!({"model": response.model, "answer": response.message.content}))?;
    Ok(())
}

fn agent(on_exhausted: OnExhausted) -> WorkflowAgent {
    agent_with_clock(on_exhausted, ManualClock::new(1_000))
}

fn agent_with_clock(on_exhausted: OnExhausted, clock: Arc<ManualClock>) -> WorkflowAgent {
    let budget = Budget { tokens: Some(BUDGET_TOKENS), cost: None, period_ms: 86_400_000, on_exhausted };
    WorkflowAgent::builder()
        .model("smart", Arc::new(FakeModel::answering("smart", |_| Ok(FakeModel::text("smart answer")))))
        .model("cheap", Arc::new(FakeModel::answering("cheap", |_| Ok(FakeModel::text("cheap answer")))))
        .key_budget(budget)
        .clock(clock)
        .action(Action::new("ask", ask).on::<InputEvent>())
        .action(Action::new("answer", answer).on::<ChatResponseEvent>())
        .build()
        .unwrap()
}

fn settings() -> EngineSettings {
    EngineSettings { max_batch_events: 4, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

/// A store holding ten reviews of one card and three of another, interleaved.
async fn seeded() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let events: Vec<LogEvent> = (0..13)
        .map(|i| {
            let key = if i % 4 == 3 { "card-2" } else { "card-1" };
            LogEvent::json(key.to_string(), &json!({"review": format!("review {i}")}))
        })
        .collect();
    log.append("reviews", &events).await.unwrap();
    storage
}

/// (key, outcome) per event in log order: `ok` or the dead letter's reason.
async fn outcomes(test: &AgentTest) -> Vec<(String, String)> {
    let committed = test.committed().await.unwrap();
    let mut all: Vec<_> = committed.outputs.iter().map(|o| (o.event, o.key.clone(), "ok".to_string())).collect();
    all.extend(committed.dead_letters.iter().map(|d| (d.event, d.key.clone(), d.reason.clone())));
    all.sort();
    all.into_iter().map(|(_, key, outcome)| (key, outcome)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_a_key_exactly_where_it_would_without_a_crash() {
    let storage = seeded().await;
    let plan = Arc::new(FaultPlan::none());
    let counted = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
    let test = AgentTest::on(counted, Arc::new(agent(OnExhausted::DeadLetter)), settings()).await.unwrap();
    test.drain().await.unwrap();
    let baseline = outcomes(&test).await;
    let card_1: Vec<&str> = baseline.iter().filter(|(k, _)| k == "card-1").map(|(_, o)| o.as_str()).collect();
    let allowed = BUDGET_TOKENS.div_ceil(CALL_TOKENS) as usize;
    assert_eq!(card_1.iter().filter(|o| **o == "ok").count(), allowed, "{card_1:?}");
    assert!(card_1[allowed].contains("the key's budget of 100 tokens is spent (105 used"), "{}", card_1[allowed]);
    assert!(baseline.iter().filter(|(k, _)| k == "card-2").all(|(_, o)| o == "ok"), "the other key goes on");

    for n in 1..=plan.requests() {
        let storage = seeded().await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Crash));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let crashing = async {
            let test = AgentTest::on(faulty, Arc::new(agent(OnExhausted::DeadLetter)), settings()).await?;
            test.drain().await
        };
        tokio::select! {
            _ = crashing => {}
            () = plan.wait_crashed() => {}
        }
        let rerun = AgentTest::on(storage, Arc::new(agent(OnExhausted::DeadLetter)), settings()).await.unwrap();
        rerun.drain().await.unwrap();
        assert_eq!(outcomes(&rerun).await, baseline, "crash at request {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_can_send_the_keys_calls_to_a_cheaper_model() {
    let test =
        AgentTest::on(seeded().await, Arc::new(agent(OnExhausted::Model("cheap".into()))), settings()).await.unwrap();
    let run = test.drain().await.unwrap();
    assert!(run.dead_letters.is_empty());
    let models: Vec<(String, String)> =
        run.outputs.iter().map(|o| (o.key.clone(), o.payload["answer"].as_str().unwrap().to_string())).collect();
    let card_1: Vec<&str> = models.iter().filter(|(k, _)| k == "card-1").map(|(_, a)| a.as_str()).collect();
    let allowed = BUDGET_TOKENS.div_ceil(CALL_TOKENS) as usize;
    assert!(card_1[..allowed].iter().all(|a| *a == "smart answer"), "{card_1:?}");
    assert!(card_1[allowed..].iter().all(|a| *a == "cheap answer"), "{card_1:?}");
}

/// Drains the seeded log with the pausing agent, its engine and agent on `clock`.
async fn paused_run(storage: Storage, clock: Arc<ManualClock>) -> Result<(), weir_engine::Error> {
    let agent = Arc::new(agent_with_clock(OnExhausted::Pause, clock.clone()));
    let engine = weir_engine::Engine::builder(storage, "paused", agent).settings(settings()).clock(clock).build()?;
    engine.drain_partition(0).await.map(drop)
}

/// (key, answer) per output, in log order.
async fn paused_outcomes(storage: &Storage) -> Vec<(String, String)> {
    let reader = weir_engine::CommittedReader::new(storage.clone(), "paused", 0).unwrap();
    let (outputs, dead) = (reader.outputs().await.unwrap(), reader.dead_letters().await.unwrap());
    assert!(dead.is_empty(), "a paused key dead-letters nothing: {dead:?}");
    outputs.into_iter().map(|o| (o.key, o.payload["answer"].as_str().unwrap().to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_pauses_the_key_until_its_period_ends_across_a_crash() {
    let allowed = BUDGET_TOKENS.div_ceil(CALL_TOKENS) as usize;
    let storage = seeded().await;
    let plan = Arc::new(FaultPlan::none());
    let counted = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
    let clock = ManualClock::new(1_000);
    paused_run(counted, clock.clone()).await.unwrap();
    let baseline = paused_outcomes(&storage).await;
    let card = |outcomes: &[(String, String)], key: &str| outcomes.iter().filter(|(k, _)| k == key).count();
    assert_eq!(card(&baseline, "card-1"), allowed, "card-1 pauses exactly at its limit: {baseline:?}");
    assert_eq!(card(&baseline, "card-2"), 3, "the other key goes on");

    for n in 1..=plan.requests() {
        let storage = seeded().await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Crash));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let clock = ManualClock::new(1_000);
        tokio::select! {
            _ = paused_run(faulty, clock.clone()) => {}
            () = plan.wait_crashed() => {}
        }
        paused_run(storage.clone(), clock).await.unwrap();
        assert_eq!(paused_outcomes(&storage).await, baseline, "crash at request {n}");
    }

    // The period ends: the paused event and the two queued behind it run, in order.
    clock.advance(std::time::Duration::from_millis(86_400_000));
    paused_run(storage.clone(), clock).await.unwrap();
    let resumed = paused_outcomes(&storage).await;
    assert_eq!(card(&resumed, "card-1"), 10, "{resumed:?}");
    assert!(resumed.iter().all(|(_, answer)| answer == "smart answer"));
}

/// Budgets per agent: the partitions, run by overlapping invocations that crash at any
/// store request, together never spend past the agent's limit by more than the rules allow
/// (one event per partition, with one event in flight); each partition stops for good once
/// the ledger is spent; every call is counted once in the partitions' committed spend; and
/// one partition stops at exactly the event a run without crashes stops at.
mod per_agent {
    use std::collections::BTreeMap;

    use weir_engine::format::PartitionDir;
    use weir_engine::partition_of;

    use super::*;

    /// The name `AgentTest` runs its agent under.
    const AGENT: &str = "agent-under-test";

    fn agent(tokens: u64) -> Arc<WorkflowAgent> {
        let budget =
            Budget { tokens: Some(tokens), cost: None, period_ms: 86_400_000, on_exhausted: OnExhausted::DeadLetter };
        let agent = WorkflowAgent::builder()
            .model("smart", Arc::new(FakeModel::answering("smart", |_| Ok(FakeModel::text("smart answer")))))
            .agent_budget(budget)
            .clock(ManualClock::new(1_000))
            .action(Action::new("ask", ask).on::<InputEvent>())
            .action(Action::new("answer", answer).on::<ChatResponseEvent>())
            .build()
            .unwrap();
        Arc::new(agent)
    }

    /// One event in flight per partition: the overrun the rules allow is then one event each.
    fn settings() -> EngineSettings {
        EngineSettings {
            max_batch_events: 1,
            first_batch_events: 1,
            max_batches_in_flight: 1,
            journal_flush_window_ms: 1,
            retry_backoff_ms: 1,
            ..Default::default()
        }
    }

    /// A store whose log has `partitions` partitions and `events` reviews over twelve keys.
    async fn seeded(partitions: u32, events: usize) -> Storage {
        let storage = Storage::from_url("memory://").unwrap();
        let log = EventLog::create(storage.clone(), partitions).await.unwrap();
        let events: Vec<LogEvent> = (0..events)
            .map(|i| LogEvent::json(format!("card-{}", i % 12), &json!({"review": format!("review {i}")})))
            .collect();
        log.append("reviews", &events).await.unwrap();
        storage
    }

    /// Per partition, each event's outcome in log order: `ok` or the dead letter's reason.
    async fn outcomes(test: &AgentTest, partitions: u32) -> BTreeMap<u32, Vec<String>> {
        let committed = test.committed().await.unwrap();
        let mut all: Vec<_> = committed.outputs.iter().map(|o| (o.event, o.key.clone(), "ok".to_string())).collect();
        all.extend(committed.dead_letters.iter().map(|d| (d.event, d.key.clone(), d.reason.clone())));
        all.sort();
        let mut by_partition: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (_, key, outcome) in all {
            by_partition.entry(partition_of(&key, partitions)).or_default().push(outcome);
        }
        by_partition
    }

    /// The tokens each partition's head says it spent.
    async fn committed_spend(storage: &Storage, partitions: u32) -> Vec<u64> {
        let mut spent = Vec::new();
        for partition in 0..partitions {
            let head = PartitionDir::new(storage.clone(), AGENT, partition).unwrap().latest().await.unwrap();
            spent.push(head.and_then(|m| m.spend).map_or(0, |s| s.spent.tokens));
        }
        spent
    }

    /// Drains with a crash at store request `n` (none if `None`); returns how many requests
    /// the drain made.
    async fn crashing_drain(storage: &Storage, limit: u64, n: Option<u64>) -> u64 {
        let plan = Arc::new(n.map_or_else(FaultPlan::none, |n| FaultPlan::at(n, Fault::Crash)));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let crashing = async {
            let test = AgentTest::on(faulty, agent(limit), settings()).await?;
            test.drain().await
        };
        tokio::select! {
            _ = crashing => {}
            () = plan.wait_crashed() => {}
        }
        plan.requests()
    }

    /// Two invocations drain the same partitions at once, then one more finishes what they left.
    async fn overlapping_drains(storage: &Storage, limit: u64) -> AgentTest {
        let (a, b) = (
            AgentTest::on(storage.clone(), agent(limit), settings()).await.unwrap(),
            AgentTest::on(storage.clone(), agent(limit), settings()).await.unwrap(),
        );
        let (ra, rb) = tokio::join!(a.drain(), b.drain());
        ra.unwrap();
        rb.unwrap();
        let last = AgentTest::on(storage.clone(), agent(limit), settings()).await.unwrap();
        last.drain().await.unwrap();
        last
    }

    /// What the rules say of any run: each event decided once; each partition allowed, then
    /// stopped for good; the spend committed counts each call once; the total passes the limit
    /// by at most one event per partition, and stops only when the ledger leaves nothing.
    fn check_rules(outcomes: &BTreeMap<u32, Vec<String>>, spend: &[u64], limit: u64, events: usize, what: &str) {
        let partitions = spend.len() as u64;
        assert_eq!(outcomes.values().map(Vec::len).sum::<usize>(), events, "{what}: each event once: {outcomes:?}");
        let mut ok = 0;
        for (partition, outcomes) in outcomes {
            let allowed = outcomes.iter().take_while(|o| *o == "ok").count();
            for refused in &outcomes[allowed..] {
                assert!(
                    refused.contains(&format!("the agent's budget of {limit} tokens is spent")),
                    "{what}: {refused}"
                );
            }
            assert_eq!(spend[*partition as usize], allowed as u64 * CALL_TOKENS, "{what}: partition {partition}");
            ok += allowed as u64;
        }
        let spent = ok * CALL_TOKENS;
        assert!(spent <= limit + partitions * CALL_TOKENS, "{what}: {spent} spent of {limit}: {outcomes:?}");
        // A partition that stopped found the ledger spent: only the slices the others never
        // used (under a sixteenth of the limit each) are missing from the total.
        if ok < events as u64 {
            assert!(spent + (partitions - 1) * (limit / 16) >= limit, "{what}: stopped early at {spent}: {outcomes:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlapping_invocations_of_several_partitions_never_spend_past_the_agents_limit() {
        let (partitions, events, limit) = (3, 24, 150);
        let storage = seeded(partitions, events).await;
        let requests = crashing_drain(&storage, limit, None).await;
        let baseline = overlapping_drains(&storage, limit).await;
        let baseline = outcomes(&baseline, partitions).await;
        check_rules(&baseline, &committed_spend(&storage, partitions).await, limit, events, "without a crash");
        assert!(baseline.values().flatten().any(|o| o != "ok"), "the budget runs out: {baseline:?}");

        for n in 1..=requests {
            let storage = seeded(partitions, events).await;
            crashing_drain(&storage, limit, Some(n)).await;
            let rerun = overlapping_drains(&storage, limit).await;
            let spend = committed_spend(&storage, partitions).await;
            check_rules(&outcomes(&rerun, partitions).await, &spend, limit, events, &format!("crash at request {n}"));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_partition_stops_at_the_same_event_whatever_request_crashed() {
        let (events, limit) = (13, 100);
        let storage = seeded(1, events).await;
        let requests = crashing_drain(&storage, limit, None).await;
        let test = overlapping_drains(&storage, limit).await;
        let baseline = outcomes(&test, 1).await;
        // Seven calls fit (the eighth event finds 105 spent), as for a key's budget.
        let allowed = limit.div_ceil(CALL_TOKENS) as usize;
        assert_eq!(baseline[&0].iter().filter(|o| *o == "ok").count(), allowed, "{baseline:?}");
        check_rules(&baseline, &committed_spend(&storage, 1).await, limit, events, "without a crash");

        for n in 1..=requests {
            let storage = seeded(1, events).await;
            crashing_drain(&storage, limit, Some(n)).await;
            let rerun = overlapping_drains(&storage, limit).await;
            assert_eq!(outcomes(&rerun, 1).await, baseline, "crash at request {n}");
            assert_eq!(committed_spend(&storage, 1).await, vec![allowed as u64 * CALL_TOKENS], "crash at request {n}");
        }
    }
}
