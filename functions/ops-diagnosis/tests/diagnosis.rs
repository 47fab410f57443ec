//! The ops-diagnosis agent end to end on a local directory over the sample failures: a fake
//! model that calls the three tools and answers from their results, the offline model, and
//! a reply that never matches the schema.

use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::testing::{AgentTest, FakeModel};
use weir_engine::EngineSettings;
use weir_models::{ChatRequest, ChatResponse, ModelError, Role, ToolCall};
use weir_ops_diagnosis::{
    Diagnosis, NODE_HEALTH, OfflineOpsModel, OpsData, RUNBOOK, SEARCH_LOGS, SEARCH_RUNBOOKS, agent,
};
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;

fn sample() -> Vec<(String, Value)> {
    include_str!("../data/failures.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|failure| (failure["job"].as_str().unwrap().to_string(), failure))
        .collect()
}

/// The user message's `Label: value` line.
fn field(request: &ChatRequest, label: &str) -> String {
    let user = request.messages.iter().find(|m| m.role == Role::User).unwrap();
    user.content.lines().find_map(|l| l.strip_prefix(label)).unwrap().trim().to_string()
}

/// Calls the three tools at once, then answers with what they said.
fn fake_diagnostician(request: &ChatRequest) -> Result<ChatResponse, ModelError> {
    let (job, node, failure) = (field(request, "Job:"), field(request, "Node:"), field(request, "Failure:"));
    let results: Vec<&str> =
        request.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect();
    if results.is_empty() {
        let call = |id: &str, name: &str, arguments| ToolCall { id: id.into(), name: name.into(), arguments };
        return Ok(FakeModel::tool_calls([
            call("logs", SEARCH_LOGS, json!({"job": job, "query": "error"})),
            call("health", NODE_HEALTH, json!({"node": node})),
            call("runbook", RUNBOOK, json!({"failure": failure})),
        ]));
    }
    let answer = json!({
        "job": job,
        "diagnosis": format!("{failure} on {node}"),
        "remediation": results[2],
        "evidence": [results[0], results[1]],
    });
    Ok(FakeModel::text(answer.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_failure_is_diagnosed_from_the_logs_the_node_and_the_runbook() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let model = Arc::new(FakeModel::answering("fake", fake_diagnostician));
    let agent = Arc::new(agent(model.clone(), OpsData::sample()).unwrap());
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, agent, settings).await.unwrap();
    let failures = sample();
    let run = test.run(failures.clone()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    let diagnoses: Vec<Diagnosis> = run.outputs().into_iter().map(|o| serde_json::from_value(o).unwrap()).collect();
    let jobs: Vec<&str> = diagnoses.iter().map(|d| d.job.as_str()).collect();
    let expected: Vec<&str> = failures.iter().map(|(job, _)| job.as_str()).collect();
    assert_eq!(jobs, expected);

    let etl = &diagnoses[0];
    assert!(etl.evidence[0].contains("missed 3 heartbeats") && !etl.evidence[0].contains("GC pause"), "{etl:?}");
    assert!(etl.evidence[1].contains("\"status\":\"degraded\""), "{etl:?}");
    assert!(etl.remediation.contains("cordon it"), "{etl:?}");
    let backfill = diagnoses.iter().find(|d| d.job == "backfill-2024").unwrap();
    assert!(
        backfill
            .remediation
            .contains("no runbook for failure `dependency_timeout` (runbooks: disk_full, heartbeat_timeout, oom)"),
        "{backfill:?}"
    );

    let first = &model.requests()[0];
    let offered: Vec<&str> = first.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, [SEARCH_LOGS, NODE_HEALTH, RUNBOOK, SEARCH_RUNBOOKS]);
    let schema = &first.output_schema.as_ref().unwrap().schema;
    assert_eq!(schema["required"], json!(["job", "diagnosis", "remediation", "evidence"]));
    assert_eq!(model.requests().len(), 2 * failures.len(), "one tool round and one answer each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_model_quotes_the_runbook_signals_and_the_node() {
    let test = AgentTest::new(Arc::new(agent(Arc::new(OfflineOpsModel), OpsData::sample()).unwrap())).await;
    let run = test.run(sample()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    let diagnoses: Vec<Diagnosis> = run.outputs().into_iter().map(|o| serde_json::from_value(o).unwrap()).collect();
    assert_eq!(diagnoses.len(), 6);
    let report = &diagnoses[1];
    assert_eq!(report.job, "report-daily");
    assert!(report.diagnosis.starts_with("oom on n-3 (node healthy): the job needed more memory"), "{report:?}");
    assert!(report.evidence.iter().any(|e| e.contains("OutOfMemoryError")), "{report:?}");
    assert!(report.remediation.starts_with("raise the job's memory limit"), "{report:?}");
    let backfill = &diagnoses[5];
    assert_eq!(backfill.remediation, "escalate to the on-call engineer with the evidence");

    // Each diagnosis cites the runbook of the knowledge base it followed; none where no
    // runbook applies.
    let cited: Vec<Option<&str>> = diagnoses.iter().map(|d| d.runbook.as_deref()).collect();
    let expected = [
        Some("runbooks/heartbeat-timeout.md"),
        Some("runbooks/oom.md"),
        Some("runbooks/disk-full.md"),
        Some("runbooks/oom.md"),
        Some("runbooks/heartbeat-timeout.md"),
        None,
    ];
    assert_eq!(cited, expected, "{diagnoses:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_evidence_is_sent_back_then_dead_lettered_with_the_raw_reply() {
    let reply = r#"{"job": "etl-42", "diagnosis": "bad luck", "remediation": "rerun", "evidence": []}"#;
    let model = Arc::new(FakeModel::answering("fake", move |_| Ok(FakeModel::text(reply))));
    let test = AgentTest::new(Arc::new(agent(model.clone(), OpsData::sample()).unwrap())).await;
    let run = test.run([("etl-42", json!({"job": "etl-42", "node": "n-7", "failure": "oom"}))]).await.unwrap();
    assert!(run.outputs.is_empty());
    assert_eq!(model.requests().len(), 3, "the first reply and two retries");
    let reason = &run.dead_letters[0].reason;
    assert!(reason.contains("/evidence") && reason.ends_with(&format!("raw reply: {reply}")), "{reason}");
}
