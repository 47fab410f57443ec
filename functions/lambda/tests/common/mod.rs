//! What the functions' tests share: a counting agent, a seeded log, and a recording HTTP
//! server standing in for webhooks and the Lambda Invoke API.

#![allow(dead_code)] // each test binary uses a part

pub mod emf;
pub mod time;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use weir_engine::{ActionError, Agent, EventContext, EventLog, LogEvent, LogInput, Storage};

/// Counts events per key and emits `{"key", "count"}`.
pub struct Counter;

#[async_trait::async_trait]
impl Agent for Counter {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let count = ctx.state::<u64>()?.unwrap_or(0) + 1;
        ctx.set_state(&count)?;
        ctx.emit(&serde_json::json!({"key": event.key, "count": count}))?;
        Ok(())
    }
}

/// Creates a log of `partitions` and appends `events` events over eight keys.
pub async fn seeded_log(storage: &Storage, partitions: u32, events: usize) -> EventLog {
    let log = EventLog::create(storage.clone(), partitions).await.unwrap();
    let batch: Vec<LogEvent> =
        (0..events).map(|i| LogEvent::json(format!("key-{}", i % 8), &serde_json::json!({"n": i}))).collect();
    log.append("seed", &batch).await.unwrap();
    log
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

/// An HTTP server on 127.0.0.1 that records every request and answers with a fixed status.
pub struct Recorder {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start(status: StatusCode) -> Recorder {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                log.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body });
                status
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Recorder { url, received, server }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A declarative agent scoring reviews (`{review}`) with an OpenAI-compatible model at
/// `base_url` whose key is in `FAKE_OPENAI_KEY`: written as `scorer.yaml` in `dir`.
pub fn scorer_agent_file(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let path = dir.join("scorer.yaml");
    std::fs::write(&path, SCORER_AGENT.replace("BASE_URL", base_url)).unwrap();
    path
}

const SCORER_AGENT: &str = r#"
name: scorer
kind: react
models:
  default: {provider: openai, options: {model: fake}, base_url: "BASE_URL", api_key_env: FAKE_OPENAI_KEY}
prices:
  fake: {input_per_million: 2.0, output_per_million: 8.0}
prompt:
  - {role: user, content: "Score this review from 1 to 5: {review}"}
output_schema:
  type: object
  required: [score]
  properties: {score: {type: integer}}
"#;

/// Invokes `function` under the emulator and answers its JSON; panics on a function error
/// or after a minute without an answer.
pub async fn invoke(
    emulator: &weir_emulator::Emulator,
    function: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    let output =
        tokio::time::timeout(std::time::Duration::from_secs(60), emulator.invoke(function, payload.to_string()))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(output.function_error, None, "{function}: {}", String::from_utf8_lossy(&output.payload));
    serde_json::from_slice(&output.payload).unwrap()
}

/// Ingest, process (the declarative agent of `agent_file`) and dispatch (to `sink`) as their
/// binaries under the emulator, on `store_url`, for the agent `scorer` over `partitions`,
/// each function with `env`, process also with `process_env`. Event-driven: ingest invokes
/// process for the partitions it appended to, process invokes dispatch. No schedule runs.
pub async fn scorer_functions(
    store_url: &str,
    partitions: u32,
    agent_file: &std::path::Path,
    sink: &str,
    env: &[(String, String)],
    process_env: &[(&str, &str)],
) -> weir_emulator::Emulator {
    use weir_emulator::FunctionSpec;
    let function = |name: &str, binary: &str| {
        let spec = FunctionSpec::new(name, binary).with_env("WEIR_STORE", store_url).with_env("WEIR_AGENT", "scorer");
        env.iter().fold(spec.with_timeout(std::time::Duration::from_secs(60)), |spec, (k, v)| spec.with_env(k, v))
    };
    let process = function("process", env!("CARGO_BIN_EXE_weir-process"))
        .with_env("WEIR_AGENT_FILE", agent_file.display().to_string())
        .with_env("FAKE_OPENAI_KEY", "fake-key")
        .with_env("WEIR_DISPATCH_FUNCTION", "dispatch");
    weir_emulator::Emulator::builder()
        .function(
            function("ingest", env!("CARGO_BIN_EXE_weir-ingest"))
                .with_env("WEIR_PARTITIONS", partitions.to_string())
                .with_env("WEIR_PROCESS_FUNCTION", "process"),
        )
        .function(process_env.iter().fold(process, |spec, (k, v)| spec.with_env(*k, *v)))
        .function(function("dispatch", env!("CARGO_BIN_EXE_weir-dispatch")).with_env("WEIR_SINK", sink))
        .start()
        .await
        .unwrap()
}
