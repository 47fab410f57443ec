//! Budgets per key: a key whose budget is spent stops exactly where a run without crashes
//! stops it, whatever request the invocation died at; its other keys go on; a cheaper
//! model can take over instead.

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
    let budget = Budget { tokens: Some(BUDGET_TOKENS), cost: None, period_ms: 86_400_000, on_exhausted };
    WorkflowAgent::builder()
        .model("smart", Arc::new(FakeModel::answering("smart", |_| Ok(FakeModel::text("smart answer")))))
        .model("cheap", Arc::new(FakeModel::answering("cheap", |_| Ok(FakeModel::text("cheap answer")))))
        .key_budget(budget)
        .clock(ManualClock::new(1_000))
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
