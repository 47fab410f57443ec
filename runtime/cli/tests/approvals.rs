//! `weir approvals`: a tool call of an agent waits for approval; `list` shows it, `approve`
//! records the answer once and refuses the other one, and after the run nothing waits and an
//! answer is refused with the reason.

mod common;

use std::sync::Arc;

use common::{TempDir, fails, ok, weir};
use serde_json::json;
use weir_agent::approval::Approval;
use weir_agent::testing::{FakeModel, FakeTool};
use weir_agent::{Prompt, ReActAgent, ToolBinding};
use weir_engine::{Engine, EngineSettings, EventLog, LogEvent, Storage};

/// The name of a built-in agent, so that `--agent` takes it.
const AGENT: &str = "ops-diagnosis";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_call_is_listed_approved_once_and_then_gone() {
    let dir = TempDir::new("approvals");
    let store = dir.store("store");
    let storage = Storage::from_url(&store).unwrap();
    let log = EventLog::create(storage.clone(), 2).await.unwrap();
    log.append("b0", &[LogEvent::json("job-7", &json!({"job": "etl"}))]).await.unwrap();
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [FakeModel::tool_call("c1", "restart", json!({"node": "prod-3"})), FakeModel::text("Restarted.")],
    ));
    let restart = Arc::new(FakeTool::new("restart", json!({"type": "object"}), |_| Ok(json!("ok"))));
    let agent = ReActAgent::builder("fake", model)
        .prompt(Prompt::text("Job {job} failed."))
        .tool_binding(ToolBinding::new(restart.clone()).require_approval(Approval::always()))
        .build()
        .unwrap();
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let engine = Engine::builder(storage, AGENT, Arc::new(agent)).settings(settings).build().unwrap();
    engine.drain().await.unwrap();

    let args = |more: &[&str]| -> Vec<String> {
        let first = ["--agent", AGENT, "--store", store.as_str(), "approvals"];
        first.iter().chain(more).map(|arg| arg.to_string()).collect()
    };
    let weir = |args: Vec<String>| weir(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let listed = ok(weir(args(&["list", "--json"])));
    let request: serde_json::Value = serde_json::from_str(listed.lines().next().expect("one request")).unwrap();
    assert_eq!((request["key"].as_str(), request["tool"].as_str()), (Some("job-7"), Some("restart")));
    assert_eq!(request["arguments"], json!({"node": "prod-3"}));
    let id = request["id"].as_str().unwrap().to_string();
    assert!(ok(weir(args(&["list"]))).contains(&id));

    assert!(ok(weir(args(&["approve", &id, "--by", "ana"]))).contains("\"approve\" recorded for key job-7"));
    let refused = fails(weir(args(&["deny", &id, "--reason", "too late", "--by", "bo"])));
    assert!(refused.contains("was answered already (\"approve\")"), "{refused}");

    engine.drain().await.unwrap();
    assert_eq!(restart.calls().len(), 1);
    assert_eq!(ok(weir(args(&["list", "--json"]))), "");
    let gone = fails(weir(args(&["approve", &id])));
    assert!(gone.contains("answered, timed out or never asked"), "{gone}");
}
