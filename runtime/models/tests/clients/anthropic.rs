//! The Anthropic client against a fake Messages API.

use serde_json::{Value, json};
use weir_models::{
    ANTHROPIC_DEFAULT_MAX_TOKENS, AnthropicChat, AnthropicConfig, ApiKey, ChatModel, ModelError, StopReason, ToolCall,
    Usage,
};

use crate::fake::{FakeServer, KEY, Reply, test_http};
use crate::openai::full_request;
use crate::{assert_journals, assert_malformed, weather_tool};

fn client(server: &FakeServer, configure: impl FnOnce(&mut AnthropicConfig)) -> AnthropicChat {
    let mut config = AnthropicConfig::chat("claude-sonnet-4-5");
    config.base_url = Some(server.url.clone());
    config.http = test_http();
    configure(&mut config);
    AnthropicChat::new(&config, ApiKey::new(KEY)).unwrap()
}

#[tokio::test]
async fn the_request_has_top_level_system_content_blocks_and_merged_tool_results() {
    let server = FakeServer::start(vec![Reply::fixture(200, "anthropic/message_reply.json")]).await;
    let model = client(&server, |config| {
        config.options.temperature = Some(0.5);
        config.options.top_p = Some(0.75);
        config.options.stop = vec!["END".into()];
        config.options.extra = json!({"metadata": {"user_id": "u-1"}}).as_object().unwrap().clone();
    });
    let mut request = full_request();
    request.output_schema = None;
    request.messages.insert(1, weir_models::ChatMessage::system("Answer in English."));
    request.messages[3].content = "Checking.".into();

    let response = model.chat(&request).await.unwrap();

    let sent = server.only_request();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    let expected = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": ANTHROPIC_DEFAULT_MAX_TOKENS,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "station offline", "is_error": true},
            ]},
            {"role": "user", "content": "Summarise."},
        ],
        "tools": [{"name": "get_weather", "description": "The weather in a city.", "input_schema": weather_tool().parameters}],
        "temperature": 0.5,
        "top_p": 0.75,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    });
    assert_eq!(sent.body, expected);

    assert_eq!(response.message.content, "Hi! My name is Claude.");
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(response.usage, Usage { input_tokens: 2095, output_tokens: 503 });
    assert_eq!(response.model, "claude-3-7-sonnet-20250219");
    assert_journals(&response);
}

#[tokio::test]
async fn tool_use_blocks_become_tool_calls() {
    let server = FakeServer::start(vec![Reply::fixture(200, "anthropic/tool_use_reply.json")]).await;
    let response = client(&server, |_| {}).chat(&full_request()).await.unwrap();

    assert!(response.message.content.starts_with("<thinking>I need to use the get_weather"));
    let expected = ToolCall {
        id: "toolu_01A09q90qw90lq917835lq9".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "San Francisco, CA", "unit": "celsius"}),
    };
    assert_eq!(response.message.tool_calls, vec![expected]);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.usage, Usage::default(), "the published example has no usage");
    assert_journals(&response);
}

#[tokio::test]
async fn structured_output_is_a_forced_tool_whose_input_is_the_answer() {
    let reply = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "summary", "input": {"text": "Mild in Paris."}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 12},
    });
    let server = FakeServer::start(vec![Reply::json(200, &reply)]).await;
    let model = client(&server, |config| config.options.max_tokens = Some(256));

    let response = model.chat(&full_request()).await.unwrap();

    let sent = server.only_request().body;
    assert_eq!(sent["max_tokens"], json!(256));
    assert_eq!(sent["tool_choice"], json!({"type": "tool", "name": "summary"}));
    let tools = sent["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[1]["name"], "summary");
    assert_eq!(tools[1]["input_schema"], *full_request().output_schema.unwrap().schema);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&response.message.content).unwrap(),
        json!({"text": "Mild in Paris."})
    );
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.stop_reason, StopReason::EndTurn);
}

#[tokio::test]
async fn an_authentication_error_is_reported_with_its_type() {
    let server = FakeServer::start(vec![Reply::fixture(401, "anthropic/error_401.json")]).await;
    let error = client(&server, |_| {}).chat(&full_request()).await.unwrap_err();
    let ModelError::Status { provider, status, message } = &error else { panic!("{error:?}") };
    assert_eq!(
        (provider.as_str(), *status, message.as_str()),
        ("anthropic", 401, "invalid x-api-key (authentication_error)")
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_with_retry_after_is_retried() {
    let limited = Reply::fixture(429, "anthropic/error_429.json").header("retry-after", "1");
    let server = FakeServer::start(vec![limited, Reply::fixture(200, "anthropic/message_reply.json")]).await;
    client(&server, |_| {}).chat(&full_request()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
}

/// The published tool-use reply after `change`.
fn tool_use_reply_with(change: impl FnOnce(&mut Value)) -> Reply {
    Reply::fixture_with(200, "anthropic/tool_use_reply.json", change)
}

#[tokio::test]
async fn a_malformed_reply_is_an_error_that_says_what_is_wrong() {
    let without = |pointer: &'static str, field: &'static str| {
        tool_use_reply_with(move |reply| {
            drop(reply.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(field))
        })
    };
    let server_tool_only = json!([{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]);
    for (reply, problem) in [
        (without("", "content"), "missing field `content`"),
        (without("/content/1", "input"), "content[1]: missing field `input`"),
        (
            tool_use_reply_with(|reply| reply["content"][1]["input"] = json!(["San Francisco"])),
            "the arguments of tool call `get_weather` are an array, not a JSON object",
        ),
        (
            tool_use_reply_with(|reply| reply["content"] = server_tool_only),
            "the reply's only content is 1 block(s) of types this client does not read",
        ),
    ] {
        let server = FakeServer::start(vec![reply]).await;
        let error = client(&server, |_| {}).chat(&full_request()).await.unwrap_err();
        assert_malformed(&error, "anthropic", problem);
        assert_eq!(server.requests().len(), 1, "a malformed reply is not retried");
    }
}

#[tokio::test]
async fn thinking_and_blocks_of_unrequested_features_beside_the_answer_are_skipped() {
    let reply = Reply::fixture_with(200, "anthropic/message_reply.json", |reply| {
        let answer = reply["content"][0].take();
        reply["content"] = json!([
            {"type": "thinking", "thinking": "A greeting.", "signature": "sig"},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            answer,
        ]);
    });
    let server = FakeServer::start(vec![reply]).await;
    let response = client(&server, |_| {}).chat(&full_request()).await.unwrap();
    assert_eq!(response.message.content, "Hi! My name is Claude.");
    assert!(response.message.tool_calls.is_empty());
}

/// Message Batches, from its published wire format: the requests go up in one body with
/// the ordinary Messages body as each `params`; a batch `in_progress` is still running; once
/// `ended`, its `results_url` is read (with the key and version headers) and each line
/// matched by `custom_id`: a succeeded message read as a direct reply would be (a structured
/// answer is the call of the output schema's tool), an errored, a canceled and an expired
/// request each an error naming why.
#[tokio::test]
async fn message_batches_submit_poll_and_read_each_result_by_custom_id() {
    use std::collections::BTreeMap;
    use weir_models::{BatchRequest, BatchStatus};

    let created = json!({"id": "msgbatch_01", "type": "message_batch", "processing_status": "in_progress",
        "request_counts": {"processing": 4, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "ended_at": null, "created_at": "2026-12-06T18:00:00Z", "expires_at": "2026-12-07T18:00:00Z",
        "cancel_initiated_at": null, "results_url": null});
    let server = FakeServer::start(vec![Reply::json(200, &created), Reply::json(200, &created)]).await;
    let model = client(&server, |config| config.batch = true);
    let batch = model.batch().expect("batch: true gives the model a batch API");
    let structured = full_request();
    let mut plain = full_request();
    plain.output_schema = None;
    let requests = vec![
        BatchRequest { custom_id: "a".repeat(32), request: structured.clone() },
        BatchRequest { custom_id: "b".repeat(32), request: plain.clone() },
    ];
    assert_eq!(batch.submit(&requests).await.unwrap(), "msgbatch_01");
    let waiting: BTreeMap<String, weir_models::ChatRequest> =
        requests.iter().map(|r| (r.custom_id.clone(), r.request.clone())).collect();
    assert_eq!(batch.poll("msgbatch_01", &waiting).await.unwrap(), BatchStatus::Running("in_progress".into()));

    let sent = server.requests();
    assert_eq!((sent[0].method.as_str(), sent[0].path.as_str()), ("POST", "/v1/messages/batches"));
    assert_eq!(sent[0].header("x-api-key"), Some(KEY));
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    let items = sent[0].body["requests"].as_array().unwrap();
    assert_eq!(items[0]["custom_id"], "a".repeat(32));
    assert_eq!(items[0]["params"]["tool_choice"], json!({"type": "tool", "name": "summary"}), "the ordinary body");
    assert_eq!(items[1]["params"]["messages"].as_array().unwrap().len(), 4);
    assert_eq!((sent[1].method.as_str(), sent[1].path.as_str()), ("GET", "/v1/messages/batches/msgbatch_01"));

    // Ended: the results, one line per request, in no particular order, at an absolute URL.
    let message = |content: Value| {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 9}})
    };
    let lines = [
        json!({"custom_id": "b".repeat(32), "result": {"type": "succeeded", "message": message(json!([
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Oslo"}}]))}}),
        json!({"custom_id": "a".repeat(32), "result": {"type": "succeeded", "message": message(json!([
            {"type": "tool_use", "id": "toolu_2", "name": "summary", "input": {"text": "Mild."}}]))}}),
        json!({"custom_id": "c".repeat(32), "result": {"type": "errored", "error": {"type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: too large"}}}}),
        json!({"custom_id": "d".repeat(32), "result": {"type": "canceled"}}),
        json!({"custom_id": "e".repeat(32), "result": {"type": "expired"}}),
    ];
    let jsonl: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let results_server = FakeServer::start(vec![Reply::raw(200, &jsonl)]).await;
    let mut ended = created.clone();
    ended["processing_status"] = json!("ended");
    ended["results_url"] = json!(format!("{}/v1/messages/batches/msgbatch_01/results", results_server.url));
    let batch_server = FakeServer::start(vec![Reply::json(200, &ended)]).await;
    let model = client(&batch_server, |config| config.batch = true);
    let polled = model.batch().unwrap().poll("msgbatch_01", &waiting).await.unwrap();
    let BatchStatus::Ended { status, results } = polled else { panic!("ended: {polled:?}") };
    assert_eq!(status, "ended");
    let read = results_server.only_request();
    assert_eq!((read.path.as_str(), read.header("x-api-key")), ("/v1/messages/batches/msgbatch_01/results", Some(KEY)));

    let plain_reply = results[&"b".repeat(32)].as_ref().unwrap();
    assert_eq!(plain_reply.message.tool_calls[0].name, "get_weather", "a tool call, as a direct reply has it");
    assert_eq!(plain_reply.stop_reason, StopReason::ToolUse);
    let structured_reply = results[&"a".repeat(32)].as_ref().unwrap();
    assert!(structured_reply.message.tool_calls.is_empty(), "the schema's call is the answer");
    assert_eq!(serde_json::from_str::<Value>(&structured_reply.message.content).unwrap(), json!({"text": "Mild."}));
    assert_eq!(structured_reply.usage, Usage { input_tokens: 30, output_tokens: 9 });
    assert_journals(structured_reply);
    let error = |id: char| results[&id.to_string().repeat(32)].clone().unwrap_err();
    assert_eq!(error('c'), "invalid_request_error: max_tokens: too large");
    assert!(error('d').contains("canceled") && error('e').contains("expired"), "{} / {}", error('d'), error('e'));
}
