//! Durable calls through crashes, after Flink Agents' durable-execution scenarios: calls in an
//! action (basic, several, one that errors), and a crash in the middle of a tool call that
//! duplicates no side effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::Notify;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{
    Action, ActionError, ChatRequestEvent, ChatResponseEvent, Context, Durable, Event, InputEvent, WorkflowAgent,
};
use weir_engine::{EngineSettings, Storage};
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError};
use weir_tools::{Tool, ToolError, ToolSpec};

fn settings() -> EngineSettings {
    EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

/// Counts executions of named calls; `flaky` fails its first execution.
#[derive(Debug, Default)]
struct Calls {
    made: std::sync::Mutex<Vec<String>>,
    flaky_failed: AtomicBool,
}

async fn three_calls(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let _: InputEvent = event.decode()?;
    let calls = ctx.value::<Calls>("calls")?;
    let call = |name: &'static str| {
        let calls = calls.clone();
        async move {
            calls.made.lock().unwrap().push(name.to_string());
            if name == "flaky" && !calls.flaky_failed.swap(true, Ordering::SeqCst) {
                return Err(std::io::Error::other("flaky failed once"));
            }
            Ok(format!("{name}-done"))
        }
    };
    let (a, b) = futures::join!(ctx.durable("a", call("a")), ctx.durable("b", call("b")));
    let flaky = ctx.durable("flaky", call("flaky")).await?;
    ctx.output(&json!([a?, b?, flaky]))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_calls_in_an_action_run_once_and_a_failed_one_is_retried_alone() {
    let calls = Arc::new(Calls::default());
    let agent = WorkflowAgent::builder()
        .value("calls", calls.clone())
        .action(Action::new("three_calls", three_calls).on::<InputEvent>())
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let run = test.run([("k", json!({}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!(["a-done", "b-done", "flaky-done"])]);
    let mut made = calls.made.lock().unwrap().clone();
    made.sort();
    assert_eq!(made, vec!["a", "b", "flaky", "flaky"], "the retry replays a and b from the journal");
}

/// A tool whose first call blocks until the invocation is aborted; it records each call's
/// idempotency key, as a downstream service deduplicating on it would.
#[derive(Debug)]
struct Notifier {
    at_most_once: bool,
    keys: std::sync::Mutex<Vec<String>>,
    entered: Notify,
    block_first: AtomicBool,
}

impl Notifier {
    fn new(at_most_once: bool) -> Arc<Self> {
        Arc::new(Notifier {
            at_most_once,
            keys: Default::default(),
            entered: Notify::new(),
            block_first: AtomicBool::new(true),
        })
    }

    fn effects(&self) -> usize {
        let mut keys = self.keys.lock().unwrap().clone();
        keys.dedup();
        keys.len()
    }
}

#[async_trait]
impl Tool for Notifier {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "notify".into(),
            description: "Notifies a manager.".into(),
            parameters: json!({"type": "object"}).into(),
        }
    }

    fn at_most_once(&self) -> bool {
        self.at_most_once
    }

    async fn call(&self, _: serde_json::Value, idempotency_key: &str) -> Result<serde_json::Value, ToolError> {
        self.keys.lock().unwrap().push(idempotency_key.to_string());
        if self.block_first.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(json!("notified"))
    }
}

/// Calls `notify`, then answers; counts the calls it receives.
#[derive(Debug, Default)]
struct NotifyingModel {
    calls: AtomicUsize,
}

#[async_trait]
impl ChatModel for NotifyingModel {
    fn name(&self) -> &str {
        "model"
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(match request.messages.last().map(|m| m.tool_call_id.is_some()) {
            Some(true) => FakeModel::text(format!("done: {}", request.messages.last().unwrap().content)),
            _ => FakeModel::tool_call("c1", "notify", json!({})),
        })
    }
}

async fn ask(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let messages = vec![ChatMessage::user(input.input.to_string())];
    ctx.send(ChatRequestEvent { model: "model".into(), messages, tools: vec!["notify".into()], ..Default::default() })?;
    Ok(())
}

async fn answer(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    ctx.output(&response.message.content)?;
    Ok(())
}

fn notifying_agent(model: Arc<NotifyingModel>, notifier: Arc<Notifier>) -> Arc<WorkflowAgent> {
    let agent = WorkflowAgent::builder()
        .model("model", model)
        .tool(notifier)
        .action(Action::new("ask", ask).on::<InputEvent>())
        .action(Action::new("answer", answer).on::<ChatResponseEvent>())
        .build()
        .unwrap();
    Arc::new(agent)
}

/// Runs the agent until the tool is entered, kills the invocation there, and runs a fresh
/// invocation on the same store to the end.
async fn crash_in_the_tool_call(at_most_once: bool) -> (Vec<serde_json::Value>, Arc<Notifier>, Arc<NotifyingModel>) {
    let storage = Storage::from_url("memory://").unwrap();
    let (model, notifier) = (Arc::new(NotifyingModel::default()), Notifier::new(at_most_once));
    let first = Arc::new(
        AgentTest::on(storage.clone(), notifying_agent(model.clone(), notifier.clone()), settings()).await.unwrap(),
    );
    let running = tokio::spawn({
        let first = first.clone();
        async move { first.run([("order-1", json!({"complaint": "late"}))]).await.map(|r| r.outputs()) }
    });
    notifier.entered.notified().await;
    // Let the journal flush the model's first reply, so the crash comes after it is durable.
    let journal = storage.path("agents/agent-under-test/p00000/journal");
    while storage.list_after(&journal, None).await.unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled(), "the invocation died in the tool call");
    assert!(first.committed().await.unwrap().outputs.is_empty());

    let second = AgentTest::on(storage, notifying_agent(model.clone(), notifier.clone()), settings()).await.unwrap();
    second.drain().await.unwrap();
    (second.committed().await.unwrap().outputs(), notifier, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_an_at_least_once_tool_call_repeats_it_with_the_same_idempotency_key() {
    let (outputs, notifier, model) = crash_in_the_tool_call(false).await;
    assert_eq!(outputs, vec![json!("done: notified")]);
    let keys = notifier.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2, "called again after the crash");
    assert_eq!(notifier.effects(), 1, "with the same idempotency key: one effect downstream");
    assert_eq!(model.calls.load(Ordering::SeqCst), 2, "the journaled first reply was replayed, not asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_an_at_most_once_tool_call_never_repeats_it() {
    let (outputs, notifier, model) = crash_in_the_tool_call(true).await;
    assert_eq!(model.calls.load(Ordering::SeqCst), 2, "the journaled first reply was replayed, not asked again");
    assert_eq!(notifier.keys.lock().unwrap().len(), 1, "never called again");
    let answer = outputs[0].as_str().unwrap();
    assert!(answer.contains("interrupted") && answer.contains("not repeated"), "the model was told: {answer}");
}
