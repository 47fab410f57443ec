//! Short-term memory, after Flink Agents' per-key visit counter: each key counts its own
//! events, in log order, across batches; entries expire after the agent's TTL.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weir_agent::testing::AgentTest;
use weir_agent::{Action, ActionError, Context, Event, InputEvent, WorkflowAgent};
use weir_engine::{EngineSettings, ManualClock, Storage};

async fn count_visits(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let visits = ctx.memory().get::<u64>("visits")?.unwrap_or(0) + 1;
    ctx.memory().set("visits", &visits)?;
    ctx.sensory().set("seen", &true)?;
    ctx.output(&json!({"user": input.key, "visits": visits, "page": input.input["page"]}))?;
    Ok(())
}

fn counter() -> WorkflowAgent {
    WorkflowAgent::builder().action(Action::new("count_visits", count_visits).on::<InputEvent>()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_counts_its_visits_in_order_across_batches() {
    let test = AgentTest::new(Arc::new(counter())).await;
    let first = test
        .run([("alice", json!({"page": 1})), ("bob", json!({"page": 2})), ("alice", json!({"page": 3}))])
        .await
        .unwrap();
    assert_eq!(
        first.outputs(),
        vec![
            json!({"user": "alice", "visits": 1, "page": 1}),
            json!({"user": "bob", "visits": 1, "page": 2}),
            json!({"user": "alice", "visits": 2, "page": 3}),
        ]
    );
    let second = test.run([("alice", json!({"page": 4})), ("bob", json!({"page": 5}))]).await.unwrap();
    assert_eq!(
        second.outputs(),
        vec![json!({"user": "alice", "visits": 3, "page": 4}), json!({"user": "bob", "visits": 2, "page": 5})]
    );
    let memory = test.memory("alice").await.unwrap();
    assert_eq!(memory.get::<u64>("visits").unwrap(), Some(3));
    assert_eq!(memory.get::<bool>("seen").unwrap(), None, "sensory memory lasts one run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_expires_after_the_ttl_of_the_clock_the_run_journaled() {
    let clock = ManualClock::new(1_000_000);
    let agent = WorkflowAgent::builder()
        .action(Action::new("count_visits", count_visits).on::<InputEvent>())
        .memory_ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(Storage::from_url("memory://").unwrap(), Arc::new(agent), settings).await.unwrap();
    let visits = |run: weir_agent::testing::TestRun| {
        run.outputs().iter().map(|o| o["visits"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(visits(test.run([("alice", json!({})), ("alice", json!({}))]).await.unwrap()), vec![1, 2]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(visits(test.run([("alice", json!({}))]).await.unwrap()), vec![3], "written 30 s ago: alive");
    clock.advance(Duration::from_secs(61));
    assert_eq!(visits(test.run([("alice", json!({}))]).await.unwrap()), vec![1], "61 s after the last write: expired");
}
