//! The committed trace of an agent's work: the tree of actions and calls per input event,
//! their usage and cost, content as the settings allow, and each call once across retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use weir_agent::testing::{AgentTest, FakeModel, FakeTool};
use weir_agent::{
    Action, ActionError, ArgumentSource, ChatRequestEvent, ChatResponseEvent, Context, Event, InputEvent, ToolBinding,
    TraceSettings, WorkflowAgent,
};
use weir_engine::{Span, SpanId, SpanKind};
use weir_models::{ChatMessage, Price};

async fn ask(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    ctx.send(ChatRequestEvent {
        model: "fake".into(),
        messages: vec![ChatMessage::user(input.input["question"].as_str().unwrap_or_default())],
        tools: vec!["lookup_order".into()],
        ..Default::default()
    })?;
    Ok(())
}

async fn ask_without_tools(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let question = ChatMessage::user(input.input["question"].as_str().unwrap_or_default());
    ctx.send(ChatRequestEvent { model: "fake".into(), messages: vec![question], ..Default::default() })?;
    Ok(())
}

/// Fails its first run, after the conversation's calls were journaled.
async fn answer(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    if !ctx.value::<AtomicBool>("failed-once")?.swap(true, Ordering::SeqCst) {
        return Err("the answer's store was busy".into());
    }
    ctx.output(&json!({"answer": response.message.content}))?;
    Ok(())
}

fn agent(model: Arc<FakeModel>) -> WorkflowAgent {
    let parameters = json!({
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "email": {"type": "string"}, "api_token": {"type": "string"}},
    });
    let lookup = Arc::new(FakeTool::new("lookup_order", parameters, |args| {
        Ok(json!({"status": "shipped", "email": args["email"]}))
    }));
    WorkflowAgent::builder()
        .model("fake", model)
        .tool_binding(ToolBinding::new(lookup).hide("api_token", ArgumentSource::Config("token".into())))
        .config("token", "sk-live-do-not-leak")
        .value("failed-once", Arc::new(AtomicBool::new(false)))
        .trace_settings(TraceSettings { content: true, redact: vec!["email".into()] })
        .price("fake", Price { input_per_million: 1.0, output_per_million: 2.0 })
        .action(Action::new("ask", ask).on::<InputEvent>())
        .action(Action::new("answer", answer).on::<ChatResponseEvent>())
        .build()
        .unwrap()
}

fn children(spans: &[Span], parent: SpanId) -> Vec<&Span> {
    spans.iter().filter(|s| s.parent == Some(parent)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_trace_is_the_tree_of_its_actions_and_calls_with_each_call_once() {
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [
            FakeModel::tool_call("c1", "lookup_order", json!({"order_id": "o-1", "email": "ann@example.com"})),
            FakeModel::text("Your order has shipped."),
        ],
    ));
    let test = AgentTest::new(Arc::new(agent(model.clone()))).await;
    let run = test.run([("cust-7", json!({"question": "Where is o-1?"}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!({"answer": "Your order has shipped."})]);
    assert_eq!(model.requests().len(), 2, "the retry asked the model nothing");

    let [trace] = run.traces.as_slice() else { panic!("one event, one trace: {:?}", run.traces) };
    assert_eq!(trace.key, "cust-7");
    let spans = &trace.spans;
    let root = &spans[0];
    assert_eq!((root.kind, root.parent, root.error.as_deref()), (SpanKind::Event, None, None));
    assert_eq!(root.attributes["weir.attempts"], 2, "the attempt that committed is the second");
    assert_eq!(root.attributes["weir.retries"][0], "the answer's store was busy");

    let actions: Vec<&str> = children(spans, SpanId::ROOT).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(actions, ["ask", "weir.chat", "answer"]);
    let chat = children(spans, SpanId::ROOT).into_iter().find(|s| s.name == "weir.chat").unwrap();
    let calls = children(spans, chat.id);
    let kinds: Vec<SpanKind> = calls.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SpanKind::Model, SpanKind::Tool, SpanKind::Model]);

    // Made in the first attempt, answered from the journal in the one that committed: once
    // each, with the usage the model reported, so sums of tokens and cost count it once.
    for model_call in [calls[0], calls[2]] {
        assert_eq!(model_call.attributes["weir.replayed"], true);
        let usage = model_call.usage.as_ref().unwrap();
        assert_eq!((usage.model.as_str(), usage.input_tokens, usage.output_tokens), ("fake", 10, 5));
        assert!((usage.cost.unwrap() - 20e-6).abs() < 1e-12, "{usage:?}");
        assert_eq!(model_call.attributes["gen_ai.operation.name"], "chat");
        assert_eq!(model_call.attributes["gen_ai.request.model"], "fake");
    }
    assert_eq!(calls[0].attributes["gen_ai.input.messages"][0]["content"], "Where is o-1?");
    let tool = calls[1];
    assert_eq!(tool.attributes["gen_ai.tool.name"], "lookup_order");
    assert_eq!(tool.attributes["gen_ai.tool.call.arguments"]["order_id"], "o-1");

    let everything = serde_json::to_string(&spans.iter().map(|s| &s.attributes).collect::<Vec<_>>()).unwrap();
    assert!(!everything.contains("sk-live-do-not-leak"), "a hidden argument is never recorded: {everything}");
    assert!(!everything.contains("ann@example.com"), "a redacted field is never recorded: {everything}");
    assert!(everything.contains("[redacted]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_content_the_trace_keeps_names_timings_and_usage() {
    let model = Arc::new(FakeModel::scripted("fake", [FakeModel::text("Shipped.")]));
    let agent = WorkflowAgent::builder()
        .model("fake", model)
        .trace_settings(TraceSettings { content: false, redact: Vec::new() })
        .action(Action::new("ask", ask_without_tools).on::<InputEvent>())
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let run = test.run([("k", json!({"question": "Where is my parcel?"}))]).await.unwrap();
    let model_call = run.traces[0].spans.iter().find(|s| s.kind == SpanKind::Model).unwrap();
    assert_eq!(model_call.usage.as_ref().unwrap().input_tokens, 10);
    assert!(model_call.usage.as_ref().unwrap().cost.is_none(), "no price, no cost");
    assert!(!model_call.attributes.contains_key("gen_ai.input.messages"));
    let attributes: Vec<_> = run.traces[0].spans.iter().map(|s| &s.attributes).collect();
    assert!(!serde_json::to_string(&attributes).unwrap().contains("parcel"));
}
