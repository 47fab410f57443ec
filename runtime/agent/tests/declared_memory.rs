//! Long-term memory sets declared in an agent file, used as context: recalled into the
//! prompt, the answer remembered, summarised past the capacity by a journaled call; a crash
//! at every request of the batches leaves each memory once, as `Context::remember` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::memory::InMemory;
use serde_json::json;
use weir_agent::WorkflowAgent;
use weir_agent::declarative::Loader;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{Engine, EngineSettings, EventLog, LogEvent, Storage};

/// The agent name `AgentTest` reads state under.
const AGENT: &str = "agent-under-test";

const YAML: &str = r#"
name: card-watcher
kind: react
models:
  default: environment
memory_sets:
  decisions:
    capacity: 3
    summarizer: default
    recall: 10
    remember: "txn {txn} at {merchant}: {answer}"
prompt: "Transaction {txn} at {merchant}. Earlier decisions on this card:\n{memories.decisions}\nAllow or hold?"
"#;

/// Summarises when asked to (the compaction prompt is the system message), holds payments
/// at merchant m-0 and allows the others.
fn model() -> Arc<FakeModel> {
    Arc::new(FakeModel::answering("fake", |request| {
        let first = &request.messages[0].content;
        if first.starts_with("These are memories") {
            let lines = request.messages.last().unwrap().content.lines().count();
            return Ok(FakeModel::text(format!("summary of {lines} decisions")));
        }
        let prompt = &request.messages.last().unwrap().content;
        Ok(FakeModel::text(if prompt.contains(" at m-0.") { "hold" } else { "allow" }))
    }))
}

fn agent_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-declared-memory-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card-watcher.yaml");
    std::fs::write(&path, YAML).unwrap();
    path
}

async fn agent(path: &Path, model: Arc<FakeModel>) -> Arc<WorkflowAgent> {
    Arc::new(Loader::new().model("default", model).load(path).await.unwrap().agent)
}

fn settings() -> EngineSettings {
    EngineSettings { max_batch_events: 4, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_set_is_recalled_into_the_prompt_remembers_answers_and_is_summarised() {
    let (path, model) = (agent_file(), model());
    let test = AgentTest::new(agent(&path, model.clone()).await).await;
    let events = (0..5).map(|i| ("card-9", json!({"txn": i, "merchant": "m-1"})));
    let run = test.run(events).await.unwrap();
    assert_eq!(run.outputs(), vec![json!("allow"); 5]);

    let memory = test.long_term("card-9").await.unwrap();
    let texts: Vec<&str> = memory.items("decisions").map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["summary of 2 decisions", "txn 3 at m-1: allow", "txn 4 at m-1: allow"]);

    let requests = model.requests();
    let prompts: Vec<&str> = requests
        .iter()
        .filter(|r| !r.messages[0].content.starts_with("These are memories"))
        .map(|r| r.messages.last().unwrap().content.as_str())
        .collect();
    assert!(prompts[0].contains("Earlier decisions on this card:\n\nAllow"), "nothing to recall yet: {}", prompts[0]);
    assert!(
        prompts[2].contains("- txn 0 at m-1: allow") && prompts[2].contains("- txn 1 at m-1: allow"),
        "the third sees the first two: {}",
        prompts[2]
    );
    // Recalled by words (no embedding declared): the summary shares none with the input.
    assert!(prompts[4].contains("- txn 3 at m-1: allow") && !prompts[4].contains("txn 0"), "{}", prompts[4]);
    let summaries = requests.iter().filter(|r| r.messages[0].content.starts_with("These are memories")).count();
    assert_eq!(summaries, 2, "one summarising call per compaction");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_summarizer_not_among_the_models_is_named() {
    let path = agent_file();
    std::fs::write(&path, YAML.replace("summarizer: default", "summarizer: cheap")).unwrap();
    let error = Loader::new().model("default", model()).load(&path).await.unwrap_err().to_string();
    assert!(error.contains("memory_sets.decisions.summarizer") && error.contains("no model named `cheap`"), "{error}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

async fn seeded_storage() -> Storage {
    let storage = Storage::new(Arc::new(InMemory::new()), "");
    let log = EventLog::create(storage.clone(), 1).await.unwrap();
    let events: Vec<LogEvent> = (0..12)
        .map(|i| LogEvent::json(format!("card-{}", i % 2), &json!({"txn": i, "merchant": format!("m-{}", i % 3)})))
        .collect();
    log.append("transactions", &events).await.unwrap();
    storage
}

/// Each card's memories as committed: (id, text), oldest first.
async fn memories(storage: &Storage, agent: Arc<WorkflowAgent>) -> BTreeMap<String, Vec<(String, String)>> {
    let test = AgentTest::on(storage.clone(), agent, settings()).await.unwrap();
    let mut all = BTreeMap::new();
    for card in ["card-0", "card-1"] {
        let memory = test.long_term(card).await.unwrap();
        all.insert(card.to_string(), memory.items("decisions").map(|m| (m.id.clone(), m.text.clone())).collect());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_request_leaves_each_declared_memory_once() {
    let path = agent_file();
    let baseline_storage = seeded_storage().await;
    let plan = Arc::new(FaultPlan::none());
    let counted =
        baseline_storage.with_store(Arc::new(FaultyStore::new(baseline_storage.store().clone(), plan.clone())));
    let engine = Engine::builder(counted, AGENT, agent(&path, model()).await).settings(settings()).build().unwrap();
    assert_eq!(engine.drain_partition(0).await.unwrap().events, 12);
    let baseline = memories(&baseline_storage, agent(&path, model()).await).await;
    assert_eq!(baseline["card-0"].len(), 3, "six decisions kept in three, summaries among them: {baseline:?}");
    assert!(baseline["card-0"][0].1.starts_with("summary of"), "{baseline:?}");
    let requests = plan.requests();
    assert!(requests > 10, "several batches make many requests ({requests})");

    for n in 1..=requests {
        let storage = seeded_storage().await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Crash));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let crashing_agent = agent(&path, model()).await;
        let crashing = async {
            Engine::builder(faulty, AGENT, crashing_agent).settings(settings()).build()?.drain_partition(0).await
        };
        tokio::select! {
            result = crashing => { let _ = result; }
            () = plan.wait_crashed() => {}
        }
        let rerun =
            Engine::builder(storage.clone(), AGENT, agent(&path, model()).await).settings(settings()).build().unwrap();
        rerun.drain_partition(0).await.unwrap();
        let after = memories(&storage, agent(&path, model()).await).await;
        assert_eq!(after, baseline, "crash at request {n}: memories differ from a run without one");
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
