//! An approval from end to end through the functions' handlers: process commits a held tool
//! call, dispatch delivers the request to a webhook with signed links, the approve link is
//! followed through the HTTP ingest, process resumes the call, which runs once, and its
//! answer is committed and delivered.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::Recorder;
use serde_json::{Value, json};
use weir_agent::approval::Approval;
use weir_agent::testing::{FakeModel, FakeTool};
use weir_agent::{Prompt, ReActAgent, ToolBinding};
use weir_engine::{CommittedReader, Engine, EngineSettings, EventLog, LogEvent, Storage};
use weir_functions::config::{DispatchConfig, IngestConfig};
use weir_functions::dispatch::{ApprovalLinks, DispatchFunction};
use weir_functions::ingest::IngestFunction;
use weir_functions::sink::{Sink, SinkTarget, WebhookSink};
use weir_functions::work::{Deadline, PartitionRequest};

const AGENT: &str = "ops";
const SECRET: &[u8] = b"an approval secret of more than 32 bytes";
const INGEST_URL: &str = "https://ingest.example.com/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_call_runs_once_and_its_answer_is_delivered() {
    let storage = Storage::from_url("memory://").unwrap();
    let log = EventLog::create(storage.clone(), 2).await.unwrap();
    log.append("alert-1", &[LogEvent::json("job-7", &json!({"job": "nightly-etl"}))]).await.unwrap();
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [FakeModel::tool_call("c1", "restart", json!({"node": "prod-3"})), FakeModel::text("Restarted prod-3.")],
    ));
    let restart = Arc::new(FakeTool::new("restart", json!({"type": "object"}), |_| Ok(json!("ok"))));
    let agent = ReActAgent::builder("fake", model)
        .prompt(Prompt::text("Job {job} failed."))
        .tool_binding(ToolBinding::new(restart.clone()).require_approval(Approval::always()))
        .build()
        .unwrap();
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let process = Engine::builder(storage.clone(), AGENT, Arc::new(agent)).settings(settings).build().unwrap();
    process.drain().await.unwrap();
    assert!(restart.calls().is_empty(), "held until approved");

    let webhook = Recorder::start(StatusCode::OK).await;
    let config = DispatchConfig {
        storage: storage.clone(),
        agent: AGENT.into(),
        sink: SinkTarget::Webhook { url: webhook.url.clone() },
        partitions: 2,
        deadline_margin: Duration::from_secs(10),
        metrics: Default::default(),
        approval_links: Some(ApprovalLinks::new(INGEST_URL, SECRET.to_vec()).unwrap()),
    };
    let dispatch = DispatchFunction::new(config, Sink::Webhook(WebhookSink::new(&webhook.url)));
    let deadline = || Deadline::new(SystemTime::now() + Duration::from_secs(3600), Duration::from_secs(10));
    dispatch.handle(PartitionRequest::default(), deadline()).await.unwrap();
    let received = webhook.received();
    assert_eq!(received.len(), 1);
    let request = &received[0].body;
    assert_eq!(request["approval_request"]["tool"], "restart");
    assert_eq!(request["blocks"][1]["elements"][0]["url"], request["approve_url"], "a Slack button");

    let approve = url::Url::parse(request["approve_url"].as_str().unwrap()).unwrap();
    let token = approve.query_pairs().find(|(name, _)| name == "approval").unwrap().1.to_string();
    let ingest = IngestFunction::new(IngestConfig {
        storage: storage.clone(),
        partitions: 2,
        key_field: "/key".into(),
        process_function: None,
        agent: Some(AGENT.into()),
        metrics: Default::default(),
        approval_secret: Some(SECRET.to_vec()),
        approvals_only: false,
    })
    .await
    .unwrap();
    let follow = json!({
        "requestContext": {"requestId": "click-1", "timeEpoch": 0, "http": {"method": "GET"}},
        "queryStringParameters": {"approval": token},
        "isBase64Encoded": false
    });
    for _ in 0..2 {
        let answered = ingest.handle(follow.clone()).await.unwrap();
        assert_eq!(answered["statusCode"], 200, "{answered}");
    }

    process.drain().await.unwrap();
    process.drain().await.unwrap();
    assert_eq!(restart.calls().len(), 1, "the held call ran once");
    let partition = log.partition_of("job-7");
    let outputs = CommittedReader::new(storage.clone(), AGENT, partition).unwrap().outputs().await.unwrap();
    let payloads: Vec<&Value> = outputs.iter().map(|o| &o.payload).collect();
    assert_eq!(payloads.len(), 2, "the request and the answer: {payloads:?}");
    assert_eq!(payloads[1], &json!("Restarted prod-3."));

    dispatch.handle(PartitionRequest::default(), deadline()).await.unwrap();
    let received = webhook.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].body, json!("Restarted prod-3."));
}
