//! The Ollama client against a fake `/api/chat`.

use serde_json::{Value, json};
use weir_models::{ApiKey, ChatModel, ModelError, OllamaChat, OllamaConfig, StopReason, ToolCall, Usage};

use crate::fake::{FakeServer, KEY, Reply, test_http};
use crate::openai::full_request;
use crate::{assert_journals, assert_malformed, weather_tool};

fn client(server: &FakeServer, key: Option<ApiKey>, configure: impl FnOnce(&mut OllamaConfig)) -> OllamaChat {
    let mut config = OllamaConfig::chat("llama3.2");
    config.base_url = Some(server.url.clone());
    config.http = test_http();
    configure(&mut config);
    OllamaChat::new(&config, key).unwrap()
}

#[tokio::test]
async fn the_request_has_object_arguments_tool_names_a_schema_format_and_options() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/structured_reply.json")]).await;
    let model = client(&server, None, |config| {
        config.options.temperature = Some(0.0);
        config.options.top_p = Some(0.5);
        config.options.max_tokens = Some(128);
        config.options.stop = vec!["END".into()];
        config.options.extra = json!({"options": {"num_ctx": 8192}, "keep_alive": "5m"}).as_object().unwrap().clone();
    });

    let response = model.chat(&full_request()).await.unwrap();

    let sent = server.only_request();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/api/chat"));
    assert_eq!(sent.header("authorization"), None);
    let expected = json!({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"location": "Paris"}}},
                {"function": {"name": "get_weather", "arguments": {"location": "Oslo"}}},
            ]},
            {"role": "tool", "content": "18C", "tool_name": "get_weather"},
            {"role": "tool", "content": "Error: station offline", "tool_name": "get_weather"},
            {"role": "user", "content": "Summarise."},
        ],
        "stream": false,
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather in a city.", "parameters": weather_tool().parameters,
        }}],
        "format": full_request().output_schema.unwrap().schema,
        "options": {"temperature": 0.0, "top_p": 0.5, "num_predict": 128, "stop": ["END"], "num_ctx": 8192},
        "keep_alive": "5m",
    });
    assert_eq!(sent.body, expected);

    assert_eq!(response.message.content, r#"{"age": 22, "available": false}"#);
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(response.usage, Usage { input_tokens: 34, output_tokens: 12 });
    assert_eq!(response.model, "llama3.1");
    assert_journals(&response);
}

#[tokio::test]
async fn tool_calls_get_ids_in_reply_order() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/tool_calls_reply.json")]).await;
    let response = client(&server, None, |_| {}).chat(&full_request()).await.unwrap();

    let expected = ToolCall {
        id: "call_0".into(),
        name: "get_current_weather".into(),
        arguments: json!({"format": "celsius", "location": "Paris, FR"}),
    };
    assert_eq!(response.message.tool_calls, vec![expected]);
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.usage, Usage { input_tokens: 122, output_tokens: 33 });
    assert_journals(&response);
}

#[tokio::test]
async fn a_plain_reply_is_parsed() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/chat_reply.json")]).await;
    let response = client(&server, None, |_| {}).chat(&full_request()).await.unwrap();
    assert_eq!(response.message.content, "Hello! How are you today?");
    assert_eq!(response.usage, Usage { input_tokens: 26, output_tokens: 298 });
    assert_journals(&response);
}

#[tokio::test]
async fn a_missing_model_is_a_status_error_and_not_retried() {
    let server = FakeServer::start(vec![Reply::fixture(404, "ollama/error_404.json")]).await;
    let error = client(&server, None, |_| {}).chat(&full_request()).await.unwrap_err();
    let ModelError::Status { provider, status, message } = &error else { panic!("{error:?}") };
    assert_eq!((provider.as_str(), *status), ("ollama", 404));
    assert_eq!(message, "model 'llama3.2' not found, try pulling it first");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_key_when_given_is_a_bearer_token() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/chat_reply.json")]).await;
    client(&server, Some(ApiKey::new(KEY)), |_| {}).chat(&full_request()).await.unwrap();
    assert_eq!(server.only_request().header("authorization"), Some(format!("Bearer {KEY}").as_str()));
}

/// The published tool-call reply after `change`.
fn tool_calls_reply_with(change: impl FnOnce(&mut Value)) -> Reply {
    Reply::fixture_with(200, "ollama/tool_calls_reply.json", change)
}

fn arguments(reply: &mut Value) -> &mut Value {
    &mut reply["message"]["tool_calls"][0]["function"]["arguments"]
}

#[tokio::test]
async fn a_malformed_reply_is_an_error_that_says_what_is_wrong() {
    let without = |pointer: &'static str, field: &'static str| {
        tool_calls_reply_with(move |reply| {
            drop(reply.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(field))
        })
    };
    for (reply, problem) in [
        (without("", "message"), "missing field `message`"),
        (without("/message/tool_calls/0/function", "name"), "message.tool_calls[0].function: missing field `name`"),
        (
            tool_calls_reply_with(|reply| *arguments(reply) = json!("{\"location\": ")),
            "the arguments of tool call `get_current_weather` are not JSON",
        ),
        (
            tool_calls_reply_with(|reply| *arguments(reply) = json!(["Paris"])),
            "the arguments of tool call `get_current_weather` are an array, not a JSON object",
        ),
    ] {
        let server = FakeServer::start(vec![reply]).await;
        let error = client(&server, None, |_| {}).chat(&full_request()).await.unwrap_err();
        assert_malformed(&error, "ollama", problem);
    }
}

#[tokio::test]
async fn arguments_sent_as_a_string_of_json_are_parsed() {
    let reply = tool_calls_reply_with(|reply| *arguments(reply) = json!("{\"location\": \"Paris, FR\"}"));
    let server = FakeServer::start(vec![reply]).await;
    let response = client(&server, None, |_| {}).chat(&full_request()).await.unwrap();
    assert_eq!(response.message.tool_calls[0].arguments, json!({"location": "Paris, FR"}));
}
