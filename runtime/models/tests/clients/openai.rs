//! The OpenAI-compatible chat client against a fake Chat Completions server.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weir_models::{
    ApiKey, ChatMessage, ChatModel, ChatRequest, ModelError, OpenAiAuth, OpenAiChat, OpenAiConfig, OutputSchema,
    StopReason, ToolCall, Usage,
};

use crate::fake::{FakeServer, KEY, Reply, test_http};
use crate::{assert_journals, assert_malformed, weather_tool};

fn client(server: &FakeServer, configure: impl FnOnce(&mut OpenAiConfig)) -> OpenAiChat {
    let mut config = OpenAiConfig::chat("gpt-4o-mini");
    config.base_url = Some(format!("{}/v1", server.url));
    config.http = test_http();
    configure(&mut config);
    OpenAiChat::new(&config, ApiKey::new(KEY)).unwrap()
}

/// A conversation with every kind of message: instructions, a question, a tool call with its
/// two results (one failed), then the tools and a schema.
pub fn full_request() -> ChatRequest {
    let call = |id: &str, city: &str| ToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: json!({"location": city}),
    };
    ChatRequest {
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Weather in Paris and Oslo?"),
            ChatMessage {
                tool_calls: vec![call("call_1", "Paris"), call("call_2", "Oslo")],
                ..ChatMessage::assistant("")
            },
            ChatMessage::tool_result("call_1", "18C", false),
            ChatMessage::tool_result("call_2", "station offline", true),
            ChatMessage::user("Summarise."),
        ],
        tools: vec![weather_tool()],
        output_schema: Some(OutputSchema::new(
            "summary",
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        )),
    }
}

#[tokio::test]
async fn the_request_carries_messages_tools_schema_and_options_as_openai_expects() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/chat_reply.json")]).await;
    let model = client(&server, |config| {
        config.options.temperature = Some(0.25);
        config.options.top_p = Some(0.5);
        config.options.max_tokens = Some(300);
        config.options.stop = vec!["END".into()];
        config.options.extra = json!({"seed": 7, "temperature": 0.0}).as_object().unwrap().clone();
        config.query = BTreeMap::from([("api-version".into(), "2024-10-21".into())]);
    });

    let response = model.chat(&full_request()).await.unwrap();

    let request = server.only_request();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(request.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let expected = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "Error: station offline"},
            {"role": "user", "content": "Summarise."},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "The weather in a city.", "parameters": weather_tool().parameters,
        }}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "summary",
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
            "strict": true,
        }},
        "temperature": 0.0,
        "top_p": 0.5,
        "max_completion_tokens": 300,
        "stop": ["END"],
        "seed": 7,
    });
    assert_eq!(request.body, expected);

    assert!(response.message.content.starts_with("The image shows a wooden boardwalk"));
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(response.usage, Usage { input_tokens: 1117, output_tokens: 46 });
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    assert_journals(&response);
}

#[tokio::test]
async fn tool_calls_come_back_with_their_string_arguments_parsed() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/tool_calls_reply.json")]).await;
    let response = client(&server, |_| {}).chat(&full_request()).await.unwrap();

    let expected = ToolCall {
        id: "call_abc123".into(),
        name: "get_current_weather".into(),
        arguments: json!({"location": "Boston, MA"}),
    };
    assert_eq!(response.message.tool_calls, vec![expected]);
    assert_eq!(response.message.content, "");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.usage, Usage { input_tokens: 82, output_tokens: 17 });
    assert_journals(&response);
}

#[tokio::test]
async fn azure_style_servers_get_the_key_in_api_key_and_extra_adjusts_nested_fields() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/chat_reply.json")]).await;
    let model = client(&server, |config| {
        config.auth = OpenAiAuth::ApiKey;
        let extra = json!({"max_tokens": 50, "response_format": {"json_schema": {"strict": false}}});
        config.options.extra = extra.as_object().unwrap().clone();
    });
    model.chat(&full_request()).await.unwrap();

    let request = server.only_request();
    assert_eq!(request.header("api-key"), Some(KEY));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body["max_tokens"], json!(50));
    assert_eq!(request.body["response_format"]["json_schema"]["strict"], json!(false));
    assert_eq!(request.body["response_format"]["json_schema"]["name"], json!("summary"));
}

#[tokio::test]
async fn an_error_status_gives_the_providers_message_without_the_key() {
    let server = FakeServer::start(vec![Reply::fixture(401, "openai/error_401.json")]).await;
    let model = client(&server, |_| {});
    let error = model.chat(&full_request()).await.unwrap_err();

    let ModelError::Status { provider, status, message } = &error else { panic!("{error:?}") };
    assert_eq!((provider.as_str(), *status), ("openai", 401));
    assert!(message.starts_with("Incorrect API key provided: [redacted]."), "{message}");
    assert!(message.ends_with("(invalid_request_error)"), "{message}");
    assert!(!format!("{error} {error:?}").contains(KEY));
    assert!(!format!("{model:?}").contains(KEY), "the client's Debug shows the key");
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
    assert_eq!(model.stats().failures, 1);
}

#[tokio::test]
async fn arguments_that_are_not_json_make_the_reply_malformed() {
    let mut reply: Value = serde_json::from_str(include_str!("../fixtures/openai/tool_calls_reply.json")).unwrap();
    reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json!("{\"location\": ");
    let server = FakeServer::start(vec![Reply::json(200, &reply)]).await;
    let error = client(&server, |_| {}).chat(&full_request()).await.unwrap_err();
    assert!(
        matches!(&error, ModelError::Malformed { message, .. } if message.contains("get_current_weather")),
        "{error}"
    );
}

#[tokio::test]
async fn a_reply_without_choices_or_a_message_is_malformed() {
    let chat_reply_with = |change: fn(&mut Value)| Reply::fixture_with(200, "openai/chat_reply.json", change);
    for (reply, problem) in [
        (chat_reply_with(|reply| reply["choices"] = json!([])), "the reply has no choices"),
        (
            chat_reply_with(|reply| drop(reply["choices"][0].as_object_mut().unwrap().remove("message"))),
            "choices[0]: missing field `message`",
        ),
        (
            chat_reply_with(|reply| {
                let call = json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "\"Paris\""}});
                reply["choices"][0]["message"]["tool_calls"] = json!([call]);
            }),
            "the arguments of tool call `get_weather` are a string, not a JSON object",
        ),
    ] {
        let server = FakeServer::start(vec![reply]).await;
        let error = client(&server, |_| {}).chat(&full_request()).await.unwrap_err();
        assert_malformed(&error, "openai", problem);
    }
}
