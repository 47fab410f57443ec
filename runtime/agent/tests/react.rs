//! A ReAct agent end to end through the engine on a local directory, with a fake model and a
//! Rust function tool: typed output schema, tool loop, a dead letter that keeps the raw reply.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{Prompt, ReActAgent};
use weir_engine::EngineSettings;
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;
use weir_tools::FunctionTool;

/// The verdict on a card transaction.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Verdict {
    /// Whether to hold the card.
    hold: bool,
    /// Why.
    reason: String,
}

/// Looks a merchant up.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct Merchant {
    /// The merchant's id.
    merchant: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_agent_calls_a_tool_answers_in_schema_and_dead_letters_what_never_fits() {
    let lookup = FunctionTool::new("lookup_merchant", |m: Merchant| async move {
        Ok::<_, String>(json!({"merchant": m.merchant, "risk": if m.merchant == "m-evil" { "high" } else { "low" }}))
    });
    let replies = std::sync::Mutex::new(vec![
        FakeModel::tool_call("c1", "lookup_merchant", json!({"merchant": "m-evil"})),
        FakeModel::text("```json\n{\"hold\": true, \"reason\": \"high-risk merchant\"}\n```"),
        FakeModel::text("Looks fine to me."),
        FakeModel::text("{\"hold\": \"maybe\"}"),
    ]);
    let model = Arc::new(FakeModel::answering("fake", move |_| Ok(replies.lock().unwrap().remove(0))));
    let agent = ReActAgent::builder("fake", model.clone())
        .prompt(Prompt::text("Card {key} paid {amount} at {merchant}. Hold it?"))
        .tool(Arc::new(lookup))
        .output_schema::<Verdict>()
        .max_output_retries(1)
        .build()
        .unwrap();
    let (storage, _dir) = fresh_storage(Backend::File);
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, Arc::new(agent), settings).await.unwrap();
    let run = test
        .run([
            ("card-1", json!({"amount": 900, "merchant": "m-evil"})),
            ("card-1", json!({"amount": 5, "merchant": "m-shop"})),
        ])
        .await
        .unwrap();
    assert_eq!(run.outputs(), vec![json!({"hold": true, "reason": "high-risk merchant"})]);
    let requests = model.requests();
    assert_eq!(requests[0].messages.last().unwrap().content, "Card card-1 paid 900 at m-evil. Hold it?");
    assert_eq!(requests[0].output_schema.as_ref().unwrap().name, "Verdict");
    assert!(requests[1].messages.last().unwrap().content.contains("\"risk\":\"high\""), "the tool's result went back");
    assert_eq!(run.dead_letters.len(), 1);
    let reason = &run.dead_letters[0].reason;
    assert!(
        reason.contains("invalid after 2 attempts") && reason.contains("raw reply: {\"hold\": \"maybe\"}"),
        "{reason}"
    );
}
