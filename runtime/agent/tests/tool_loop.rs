//! The built-in chat action: a model-driven tool loop, hidden tool arguments, tool errors
//! fed back to the model, and chat requests that run concurrently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use weir_agent::testing::{AgentTest, FakeModel, FakeTool};
use weir_agent::{
    Action, ActionError, ArgumentSource, ChatRequestEvent, ChatResponseEvent, Context, Event, InputEvent, ToolBinding,
    WorkflowAgent,
};
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError, Role};
use weir_tools::ToolError;

async fn ask(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    ctx.send(ChatRequestEvent {
        model: "fake".into(),
        messages: vec![ChatMessage::user(input.input["question"].as_str().unwrap_or_default())],
        tools: vec!["lookup_order".into(), "hold_card".into()],
        ..Default::default()
    })?;
    Ok(())
}

async fn answer(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    let tool_messages: Vec<&ChatMessage> = response.messages.iter().filter(|m| m.role == Role::Tool).collect();
    ctx.output(&json!({
        "answer": response.message.content,
        "tool_results": tool_messages.iter().map(|m| json!({"content": m.content, "is_error": m.is_error})).collect::<Vec<_>>(),
    }))?;
    Ok(())
}

fn lookup_order() -> Arc<FakeTool> {
    let parameters = json!({
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "customer_id": {"type": "string"}},
        "required": ["order_id", "customer_id"],
    });
    Arc::new(FakeTool::new("lookup_order", parameters, |args| match args["order_id"].as_str() {
        Some("o-1") => Ok(json!({"status": "shipped", "customer": args["customer_id"]})),
        _ => Err(ToolError::new("no such order")),
    }))
}

fn agent(model: Arc<FakeModel>, lookup: Arc<FakeTool>) -> WorkflowAgent {
    let hold = Arc::new(FakeTool::new("hold_card", json!({"type": "object"}), |_| Ok(json!("held"))).at_most_once());
    WorkflowAgent::builder()
        .model("fake", model)
        .tool_binding(ToolBinding::new(lookup).hide("customer_id", ArgumentSource::Key))
        .tool(hold)
        .action(Action::new("ask", ask).on::<InputEvent>())
        .action(Action::new("answer", answer).on::<ChatResponseEvent>())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_calls_tools_until_it_answers_and_hidden_arguments_come_from_the_agent() {
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [
            FakeModel::tool_call("c1", "lookup_order", json!({"order_id": "o-1", "customer_id": "someone-else"})),
            FakeModel::text("Your order has shipped."),
        ],
    ));
    let lookup = lookup_order();
    let agent = Arc::new(agent(model.clone(), lookup.clone()));
    let test = AgentTest::new(agent.clone()).await;
    let run = test.run([("cust-7", json!({"question": "Where is o-1?"}))]).await.unwrap();
    assert_eq!(
        run.outputs(),
        vec![json!({
            "answer": "Your order has shipped.",
            "tool_results": [{"content": r#"{"customer":"cust-7","status":"shipped"}"#, "is_error": false}],
        })]
    );
    let requests = model.requests();
    let offered = &requests[0].tools.iter().find(|t| t.name == "lookup_order").unwrap().parameters;
    assert!(offered["properties"].get("customer_id").is_none(), "the model never sees the hidden argument");
    assert_eq!(lookup.calls()[0].arguments["customer_id"], "cust-7", "the key wins over the model's value");
    assert_eq!(requests[1].messages.last().unwrap().tool_call_id.as_deref(), Some("c1"), "the result went back");
    let metrics = agent.metrics();
    let chat = metrics.models["fake"]["weir.chat"];
    assert_eq!((chat.calls, chat.replayed, chat.input_tokens, chat.output_tokens), (2, 0, 20, 10));
    assert_eq!(metrics.tools["lookup_order"].calls, 1);
    assert_eq!(metrics.actions["answer"].calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_errors_and_unknown_tools_go_back_to_the_model_as_error_results() {
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [
            FakeModel::tool_calls([
                weir_models::ToolCall {
                    id: "c1".into(),
                    name: "lookup_order".into(),
                    arguments: json!({"order_id": "o-404"}),
                },
                weir_models::ToolCall { id: "c2".into(), name: "delete_everything".into(), arguments: json!({}) },
            ]),
            FakeModel::text("I could not find it."),
        ],
    ));
    let test = AgentTest::new(Arc::new(agent(model.clone(), lookup_order()))).await;
    let run = test.run([("cust-7", json!({"question": "Where is o-404?"}))]).await.unwrap();
    let results = &run.outputs()[0]["tool_results"];
    assert_eq!(results[0], json!({"content": "no such order", "is_error": true}));
    assert_eq!(results[1]["is_error"], true);
    assert!(results[1]["content"].as_str().unwrap().contains("no tool named `delete_everything`"));
    assert_eq!(run.outputs()[0]["answer"], "I could not find it.");
}

/// A tool that is down is not the input's fault: the event waits (the drain reports the
/// partition unavailable), nothing is committed or dead-lettered, and once the tool is back
/// the same event is answered; the model's reply asking for the tool was journaled and is
/// not asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_is_down_makes_the_event_wait_not_fail() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let is_down = down.clone();
    let parameters = json!({"type": "object", "properties": {"order_id": {"type": "string"}}});
    let lookup = Arc::new(FakeTool::new("lookup_order", parameters, move |_| {
        match is_down.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(ToolError::unavailable("`lookup_order` answered 503 after 2 retries")),
            false => Ok(json!({"status": "shipped"})),
        }
    }));
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [FakeModel::tool_call("c1", "lookup_order", json!({"order_id": "o-1"})), FakeModel::text("It has shipped.")],
    ));
    let test = AgentTest::new(Arc::new(agent(model.clone(), lookup))).await;
    let waiting = test.run([("cust-7", json!({"question": "Where is o-1?"}))]).await.unwrap_err();
    assert!(waiting.to_string().contains("503"), "{waiting}");
    let committed = test.committed().await.unwrap();
    assert!(committed.outputs.is_empty() && committed.dead_letters.is_empty(), "{committed:?}");

    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let run = test.drain().await.unwrap();
    assert_eq!(run.outputs()[0]["answer"], "It has shipped.");
    assert_eq!(model.requests().len(), 2, "the journaled first reply is not asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_stops_calling_tools_fails_at_the_step_limit_and_is_dead_lettered() {
    let model = Arc::new(FakeModel::answering("fake", |_| Ok(FakeModel::tool_call("c", "hold_card", json!({})))));
    let test = AgentTest::new(Arc::new(agent(model.clone(), lookup_order()))).await;
    let run = test.run([("k", json!({"question": "loop"}))]).await.unwrap();
    assert!(run.outputs.is_empty());
    assert!(run.dead_letters[0].reason.contains("still called tools after 10 steps"), "{}", run.dead_letters[0].reason);
}

/// A model that answers after a pause and counts the requests in flight.
#[derive(Debug, Default)]
struct SlowModel {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl ChatModel for SlowModel {
    fn name(&self) -> &str {
        "slow"
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(FakeModel::text(format!("answer to {}", request.messages[0].content)))
    }
}

async fn fan_out(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    for question in input.input["questions"].as_array().into_iter().flatten() {
        let messages = vec![ChatMessage::user(question.as_str().unwrap_or_default())];
        ctx.send(ChatRequestEvent { model: "slow".into(), messages, ..Default::default() })?;
    }
    Ok(())
}

async fn collect(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    ctx.output(&Value::String(response.message.content))?;
    Ok(())
}

async fn join_two(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let _: InputEvent = event.decode()?;
    let request =
        |q: &str| ChatRequestEvent { model: "slow".into(), messages: vec![ChatMessage::user(q)], ..Default::default() };
    let (a, b) = (request("x"), request("y"));
    let (a, b) = futures::join!(ctx.converse(&a), ctx.converse(&b));
    ctx.output(&json!([a?.message.content, b?.message.content]))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_requests_sent_together_run_concurrently_and_answer_in_request_order() {
    let model = Arc::new(SlowModel::default());
    let agent = WorkflowAgent::builder()
        .model("slow", model.clone())
        .action(Action::new("fan_out", fan_out).on::<InputEvent>())
        .action(Action::new("collect", collect).on::<ChatResponseEvent>())
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let run = test.run([("k", json!({"questions": ["a", "b", "c"]}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!("answer to a"), json!("answer to b"), json!("answer to c")]);
    assert_eq!(model.peak.load(Ordering::SeqCst), 3, "the three requests were in flight together");

    let model = Arc::new(SlowModel::default());
    let agent = WorkflowAgent::builder()
        .model("slow", model.clone())
        .action(Action::new("join_two", join_two).on::<InputEvent>())
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let run = test.run([("k", json!({}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!(["answer to x", "answer to y"])]);
    assert_eq!(model.peak.load(Ordering::SeqCst), 2);
}
