//! The testing kit: run an agent over events in-process, with fake models and tools, and
//! look at its outputs, dead letters, tool calls and memory.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use weir_agent::testing::{AgentTest, FakeModel};
//! use weir_agent::{Prompt, ReActAgent};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let model = Arc::new(FakeModel::scripted("fake", [FakeModel::text(r#"{"score": 5}"#)]));
//! let agent = ReActAgent::builder("fake", model.clone())
//!     .prompt(Prompt::text("Score: {review}"))
//!     .output_schema_json("score", json!({"type": "object", "required": ["score"]}))
//!     .build()?;
//! let test = AgentTest::new(Arc::new(agent)).await;
//! let run = test.run([("shoe", json!({"review": "Great grip"}))]).await?;
//! assert_eq!(run.outputs(), vec![json!({"score": 5})]);
//! assert_eq!(model.requests()[0].messages.last().unwrap().content, "Score: Great grip");
//! # Ok::<(), weir_agent::testing::TestError>(())
//! # }).unwrap();
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use weir_engine::{
    Agent, CommittedReader, DeadLetter, Engine, EngineSettings, EventLog, EventTrace, LogEvent, Output, Storage,
};
use weir_models::{ChatModel, ChatRequest, ChatResponse, ModelError, ToolCall, ToolSpec, Usage};
use weir_tools::{Tool, ToolError};

use crate::long_term::LongTermMemory;
use crate::memory::{Memory, StoredMemory};

type Answer = dyn Fn(&ChatRequest) -> Result<ChatResponse, ModelError> + Send + Sync;

/// A chat model that answers from a script or a function, and records every request.
pub struct FakeModel {
    name: String,
    script: Mutex<VecDeque<ChatResponse>>,
    answer: Option<Box<Answer>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeModel").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FakeModel {
    /// Answers with `replies` in order; a request past the end fails.
    pub fn scripted(name: impl Into<String>, replies: impl IntoIterator<Item = ChatResponse>) -> Self {
        FakeModel {
            name: name.into(),
            script: Mutex::new(replies.into_iter().collect()),
            answer: None,
            requests: Mutex::default(),
        }
    }

    /// Answers each request with `answer(request)`: for concurrent conversations, whose
    /// order a script cannot know.
    pub fn answering(
        name: impl Into<String>,
        answer: impl Fn(&ChatRequest) -> Result<ChatResponse, ModelError> + Send + Sync + 'static,
    ) -> Self {
        FakeModel {
            name: name.into(),
            script: Mutex::default(),
            answer: Some(Box::new(answer)),
            requests: Mutex::default(),
        }
    }

    /// A text reply.
    pub fn text(content: impl Into<String>) -> ChatResponse {
        ChatResponse { usage: Usage { input_tokens: 10, output_tokens: 5 }, ..ChatResponse::answer("fake", content) }
    }

    /// A reply that calls one tool.
    pub fn tool_call(id: impl Into<String>, tool: impl Into<String>, arguments: Value) -> ChatResponse {
        Self::tool_calls([ToolCall::new(id, tool, arguments)])
    }

    /// A reply that calls several tools at once.
    pub fn tool_calls(calls: impl IntoIterator<Item = ToolCall>) -> ChatResponse {
        ChatResponse { usage: Usage { input_tokens: 10, output_tokens: 5 }, ..ChatResponse::calling("fake", calls) }
    }

    /// The requests received, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("fake model").clone()
    }
}

#[async_trait]
impl ChatModel for FakeModel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.requests.lock().expect("fake model").push(request.clone());
        if let Some(answer) = &self.answer {
            return answer(request);
        }
        let next = self.script.lock().expect("fake model").pop_front();
        next.ok_or_else(|| ModelError::Config(format!("fake model `{}` has no scripted reply left", self.name)))
    }
}

type ToolAnswer = dyn Fn(&Value) -> Result<Value, ToolError> + Send + Sync;

/// A tool that answers with a function and records every call with its idempotency key.
pub struct FakeTool {
    spec: ToolSpec,
    at_most_once: bool,
    answer: Box<ToolAnswer>,
    calls: Mutex<Vec<FakeToolCall>>,
}

/// One call a [`FakeTool`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeToolCall {
    /// The arguments, hidden ones included.
    pub arguments: Value,
    /// The idempotency key the journal gave the call.
    pub idempotency_key: String,
}

impl fmt::Debug for FakeTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTool").field("spec", &self.spec).field("at_most_once", &self.at_most_once).finish()
    }
}

impl FakeTool {
    /// A tool `name` taking arguments described by the JSON Schema `parameters`, answering
    /// with `answer(arguments)`.
    pub fn new(
        name: impl Into<String>,
        parameters: Value,
        answer: impl Fn(&Value) -> Result<Value, ToolError> + Send + Sync + 'static,
    ) -> Self {
        let name = name.into();
        let spec = ToolSpec { description: format!("The fake tool `{name}`."), name, parameters: parameters.into() };
        FakeTool { spec, at_most_once: false, answer: Box::new(answer), calls: Mutex::default() }
    }

    /// Marks the tool at-most-once.
    pub fn at_most_once(mut self) -> Self {
        self.at_most_once = true;
        self
    }

    /// The calls received, in order.
    pub fn calls(&self) -> Vec<FakeToolCall> {
        self.calls.lock().expect("fake tool").clone()
    }
}

#[async_trait]
impl Tool for FakeTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn at_most_once(&self) -> bool {
        self.at_most_once
    }

    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError> {
        let call = FakeToolCall { arguments: arguments.clone(), idempotency_key: idempotency_key.to_string() };
        self.calls.lock().expect("fake tool").push(call);
        (self.answer)(&arguments)
    }
}

/// Runs an agent on the real engine over an in-memory store (or any store), event lists at
/// a time, as the deployed functions would.
#[derive(Debug)]
pub struct AgentTest {
    engine: Engine,
    storage: Storage,
    name: String,
    batches: AtomicU64,
}

/// What one [`AgentTest::run`] committed.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// The outputs, in log order.
    pub outputs: Vec<Output>,
    /// The dead letters, in log order.
    pub dead_letters: Vec<DeadLetter>,
    /// What each event's handling did, in log order (`docs/observability.md`).
    pub traces: Vec<EventTrace>,
}

impl TestRun {
    /// Just the outputs' payloads.
    pub fn outputs(&self) -> Vec<Value> {
        self.outputs.iter().map(|o| o.payload.clone()).collect()
    }
}

/// What an [`AgentTest`] can fail with.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;

impl AgentTest {
    /// The agent on a fresh in-memory store with one partition and fast settings.
    pub async fn new(agent: Arc<dyn Agent>) -> Self {
        let settings = EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() };
        Self::on(Storage::from_url("memory://").expect("memory store"), agent, settings).await.expect("test engine")
    }

    /// The agent on `storage` with `settings`.
    pub async fn on(storage: Storage, agent: Arc<dyn Agent>, settings: EngineSettings) -> Result<Self, TestError> {
        let log = match EventLog::open(storage.clone()).await {
            Ok(log) => log,
            Err(_) => EventLog::create(storage.clone(), 1).await?,
        };
        drop(log);
        let name = "agent-under-test".to_string();
        let engine = Engine::builder(storage.clone(), &name, agent).settings(settings).build()?;
        Ok(AgentTest { engine, storage, name, batches: AtomicU64::new(0) })
    }

    /// Appends `events` (key, payload) and processes everything; returns what this run
    /// committed.
    pub async fn run<K: Into<String>>(
        &self,
        events: impl IntoIterator<Item = (K, Value)>,
    ) -> Result<TestRun, TestError> {
        let events: Vec<LogEvent> =
            events.into_iter().map(|(key, payload)| LogEvent::json(key.into(), &payload)).collect();
        let batch = self.batches.fetch_add(1, Ordering::SeqCst);
        self.engine.log().await?.append(&format!("test-batch-{batch}"), &events).await?;
        self.drain().await
    }

    /// Processes what the log holds; returns what this drain committed. After an
    /// invocation was aborted (a crash), a new `AgentTest` on the same store carries on.
    pub async fn drain(&self) -> Result<TestRun, TestError> {
        let before = self.committed().await?;
        self.engine.drain().await?;
        let after = self.committed().await?;
        // By identity, not by count: an event that waited commits outputs among older ones.
        let outputs: HashSet<_> = before.outputs.iter().map(|o| (o.key.clone(), o.event, o.index)).collect();
        let dead: HashSet<_> = before.dead_letters.iter().map(|d| (d.key.clone(), d.event)).collect();
        let traces: HashSet<_> = before.traces.iter().map(|t| (t.key.clone(), t.event, t.commit_seq)).collect();
        Ok(TestRun {
            outputs: after
                .outputs
                .into_iter()
                .filter(|o| !outputs.contains(&(o.key.clone(), o.event, o.index)))
                .collect(),
            dead_letters: after
                .dead_letters
                .into_iter()
                .filter(|d| !dead.contains(&(d.key.clone(), d.event)))
                .collect(),
            traces: after
                .traces
                .into_iter()
                .filter(|t| !traces.contains(&(t.key.clone(), t.event, t.commit_seq)))
                .collect(),
        })
    }

    /// The agent's work for its waiting keys outside any batch, as the process function
    /// does it after its drains ([`Engine::tend`]): submits the model calls that wait on a
    /// provider's batch API and appends the results that came in (docs/batch-calls.md).
    /// Returns how many results it appended; a [`drain`](Self::drain) resumes their keys.
    pub async fn tend(&self) -> Result<u64, TestError> {
        self.engine.tend().await
    }

    /// Everything committed so far.
    pub async fn committed(&self) -> Result<TestRun, TestError> {
        let mut all = TestRun::default();
        for partition in 0..self.engine.log().await?.partitions() {
            let reader = CommittedReader::new(self.storage.clone(), &self.name, partition)?;
            all.outputs.extend(reader.outputs().await?);
            all.dead_letters.extend(reader.dead_letters().await?);
            all.traces.extend(reader.traces().await?);
        }
        all.traces.sort_by_key(|t| t.event);
        all.outputs.sort_by_key(|o| (o.event, o.index));
        all.dead_letters.sort_by_key(|d| d.event);
        Ok(all)
    }

    /// The short-term memory of `key`, as committed.
    pub async fn memory(&self, key: &str) -> Result<Memory, TestError> {
        Ok(Memory::restore(self.stored(key).await?, None, None))
    }

    /// The long-term memory of `key`, as committed.
    pub async fn long_term(&self, key: &str) -> Result<LongTermMemory, TestError> {
        let sets = self.stored(key).await?.map(|stored| stored.long_term).unwrap_or_default();
        Ok(LongTermMemory::restore(sets, None, String::new()))
    }

    async fn stored(&self, key: &str) -> Result<Option<StoredMemory>, TestError> {
        let partition = self.engine.log().await?.partition_of(key);
        let state = CommittedReader::new(self.storage.clone(), &self.name, partition)?.state(key).await?;
        Ok(state.map(|bytes| serde_json::from_slice(&bytes)).transpose()?)
    }

    /// The engine, for what the kit does not cover.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
