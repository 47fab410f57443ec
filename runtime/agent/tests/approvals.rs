//! Tools that need approval, through the engine: the request is committed once and nothing
//! runs before the answer; approved, the tool runs once; denied or timed out, the model hears
//! why and the tool never runs; a second answer is refused. Time is a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir_agent::approval::{Approval, ApprovalAnswer, ApprovalRequest, Decision};
use weir_agent::testing::{FakeModel, FakeTool};
use weir_agent::{Prompt, ReActAgent, ToolBinding};
use weir_engine::{CommittedReader, Engine, EngineSettings, EventLog, LogEvent, ManualClock, Output, Storage};

const AGENT: &str = "ops";

struct Ops {
    storage: Storage,
    log: EventLog,
    clock: Arc<ManualClock>,
    engine: Engine,
    model: Arc<FakeModel>,
    restart: Arc<FakeTool>,
}

impl Ops {
    /// An agent whose model restarts `node`, then answers with what the tool result said.
    async fn new(node: &str, approval: Approval) -> Ops {
        let storage = Storage::from_url("memory://").unwrap();
        let clock = ManualClock::new(1_700_000_000_000);
        let log = EventLog::create(storage.clone(), 1).await.unwrap().with_clock(clock.clone());
        let model = Arc::new(FakeModel::answering("fake", {
            let node = node.to_string();
            move |request| {
                let last = request.messages.last().map(|m| m.content.clone()).unwrap_or_default();
                if last.starts_with("Job") {
                    return Ok(FakeModel::tool_call("c1", "restart", json!({"node": node})));
                }
                Ok(FakeModel::text(format!("tool said: {last}")))
            }
        }));
        let restart = Arc::new(FakeTool::new("restart", json!({"type": "object"}), |_| Ok(json!("restarted"))));
        let agent = ReActAgent::builder("fake", model.clone())
            .prompt(Prompt::text("Job {job} failed."))
            .tool_binding(ToolBinding::new(restart.clone()).require_approval(approval))
            .build()
            .unwrap();
        let settings = EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() };
        let engine = Engine::builder(storage.clone(), AGENT, Arc::new(agent))
            .settings(settings)
            .clock(clock.clone())
            .build()
            .unwrap();
        Ops { storage, log, clock, engine, model, restart }
    }

    async fn send(&self, batch: &str, payload: Value) {
        self.log.append(batch, &[LogEvent::json("job-7", &payload)]).await.unwrap();
        self.engine.drain().await.unwrap();
    }

    async fn outputs(&self) -> Vec<Output> {
        CommittedReader::new(self.storage.clone(), AGENT, 0).unwrap().outputs().await.unwrap()
    }

    async fn request(&self) -> ApprovalRequest {
        let outputs = self.outputs().await;
        outputs.iter().find_map(|o| ApprovalRequest::from_output(&o.payload)).expect("an approval request")
    }

    async fn answers(&self) -> Vec<Value> {
        self.outputs().await.into_iter().map(|o| o.payload).filter(|p| p.is_string()).collect()
    }
}

fn production_only() -> Approval {
    Approval::when(|arguments| {
        let node = arguments["node"].as_str().unwrap_or_default();
        node.starts_with("prod-").then(|| format!("restart of production node {node}"))
    })
}

#[tokio::test]
async fn an_approved_call_runs_once_and_a_second_answer_is_refused() {
    let ops = Ops::new("prod-3", production_only()).await;
    ops.send("b0", json!({"job": "etl"})).await;
    let request = ops.request().await;
    assert_eq!((request.tool.as_str(), request.key.as_str()), ("restart", "job-7"));
    assert_eq!(request.arguments, json!({"node": "prod-3"}));
    let notice = &ops.outputs().await[0].payload["weir.wait"];
    assert_eq!(notice["correlation_id"], request.id.as_str());
    assert_eq!(notice["expires_at_ms"], 1_700_000_000_000u64 + 24 * 3600 * 1000);
    assert!(ops.restart.calls().is_empty());

    let approve = ApprovalAnswer::approve("oncall").signal(&request.id);
    ops.send("b1", approve.to_payload()).await;
    assert_eq!(ops.restart.calls().len(), 1);
    assert_eq!(ops.answers().await, vec![json!("tool said: restarted")]);
    assert_eq!(ops.model.requests().len(), 2, "the model call before the wait was replayed");

    ops.send("b2", approve.to_payload()).await;
    assert_eq!(ops.restart.calls().len(), 1, "a second answer runs nothing");
    let dead = CommittedReader::new(ops.storage.clone(), AGENT, 0).unwrap().dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("is not waiting"), "{}", dead[0].reason);
    assert_eq!(ops.outputs().await.len(), 2, "the request and the answer, once each");
}

#[tokio::test]
async fn a_denied_call_never_runs_and_the_model_hears_why() {
    let ops = Ops::new("prod-3", production_only()).await;
    ops.send("b0", json!({"job": "etl"})).await;
    let request = ops.request().await;
    let deny = ApprovalAnswer::deny("oncall", "the node is draining");
    ops.send("b1", deny.signal(&request.id).to_payload()).await;
    assert!(ops.restart.calls().is_empty());
    assert_eq!(
        ops.answers().await,
        vec![json!("tool said: the call to `restart` was denied by oncall (the node is draining): it did not run")]
    );
}

#[tokio::test]
async fn a_timeout_applies_the_default_decision() {
    let ops = Ops::new("prod-3", production_only().timeout(Duration::from_secs(600))).await;
    ops.send("b0", json!({"job": "etl"})).await;
    ops.clock.advance(Duration::from_secs(600));
    ops.engine.drain().await.unwrap();
    assert!(ops.restart.calls().is_empty());
    assert_eq!(
        ops.answers().await,
        vec![json!("tool said: the call to `restart` was denied (no answer within 600 s): it did not run")]
    );

    let approving =
        Ops::new("prod-3", production_only().timeout(Duration::from_secs(600)).on_timeout(Decision::Approve)).await;
    approving.send("b0", json!({"job": "etl"})).await;
    approving.clock.advance(Duration::from_secs(600));
    approving.engine.drain().await.unwrap();
    assert_eq!(approving.restart.calls().len(), 1);
}

#[tokio::test]
async fn a_call_the_policy_does_not_pick_runs_at_once() {
    let ops = Ops::new("staging-1", production_only()).await;
    ops.send("b0", json!({"job": "etl"})).await;
    assert_eq!(ops.restart.calls().len(), 1);
    assert_eq!(ops.answers().await, vec![json!("tool said: restarted")]);
}
