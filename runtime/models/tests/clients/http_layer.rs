//! Retries, timeouts, the concurrency limit and the counters, shared by every client; shown
//! through the OpenAI and Anthropic clients.

use std::sync::Arc;
use std::time::Duration;

use weir_models::{
    AnthropicChat, AnthropicConfig, ApiKey, ChatMessage, ChatModel, ChatRequest, HttpSettings, ModelError, ModelStats,
    OpenAiChat, OpenAiConfig,
};

use crate::fake::{FakeServer, KEY, Reply, test_http};

fn openai(server: &FakeServer, http: HttpSettings) -> OpenAiChat {
    let config = OpenAiConfig { base_url: Some(server.url.clone()), http, ..OpenAiConfig::chat("gpt-4o-mini") };
    OpenAiChat::new(&config, ApiKey::new(KEY)).unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::user("Hello")], ..ChatRequest::default() }
}

fn ok() -> Reply {
    Reply::fixture(200, "openai/chat_reply.json")
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_servers_retry_after() {
    let limited = Reply::fixture(429, "openai/error_429.json").header("retry-after", "1");
    let server = FakeServer::start(vec![limited, ok()]).await;
    let model = openai(&server, test_http());

    let response = model.chat(&hello()).await.unwrap();

    assert!(response.message.content.starts_with("The image shows"));
    assert_eq!(server.requests().len(), 2);
    let stats = model.stats();
    assert_eq!((stats.calls, stats.requests, stats.retries, stats.failures), (1, 2, 1, 0));
    assert!(stats.total_latency_us >= stats.max_latency_us && stats.max_latency_us > 0, "{stats:?}");
}

#[tokio::test]
async fn retry_after_ms_is_honoured_too() {
    let limited = Reply::fixture(429, "openai/error_429.json").header("retry-after-ms", "20");
    let server = FakeServer::start(vec![limited, ok()]).await;
    openai(&server, test_http()).chat(&hello()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let server = FakeServer::start(vec![Reply::raw(503, "upstream unavailable"), ok()]).await;
    let model = openai(&server, test_http());
    model.chat(&hello()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(model.stats().retries, 1);
}

#[tokio::test]
async fn anthropic_overloaded_529_is_retried() {
    let overloaded = Reply::fixture(529, "anthropic/error_529.json");
    let server = FakeServer::start(vec![overloaded, Reply::fixture(200, "anthropic/message_reply.json")]).await;
    let config =
        AnthropicConfig { base_url: Some(server.url.clone()), http: test_http(), ..AnthropicConfig::chat("claude") };
    let model = AnthropicChat::new(&config, ApiKey::new(KEY)).unwrap();

    let response = model.chat(&hello()).await.unwrap();

    assert_eq!(response.message.content, "Hi! My name is Claude.");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retries_end_with_the_last_status_once_spent() {
    let server = FakeServer::start(vec![Reply::fixture(529, "anthropic/error_529.json")]).await;
    let http = HttpSettings { max_retries: 2, ..test_http() };
    let config = AnthropicConfig { base_url: Some(server.url.clone()), http, ..AnthropicConfig::chat("claude") };
    let model = AnthropicChat::new(&config, ApiKey::new(KEY)).unwrap();

    let error = model.chat(&hello()).await.unwrap_err();

    assert!(
        matches!(&error, ModelError::Status { status: 529, message, .. } if message == "Overloaded (overloaded_error)"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 3, "the first attempt and two retries");
    let stats = model.stats();
    assert_eq!((stats.calls, stats.requests, stats.retries, stats.failures), (1, 3, 2, 1));
}

#[tokio::test]
async fn x_should_retry_false_stops_retries() {
    let server = FakeServer::start(vec![Reply::raw(503, "").header("x-should-retry", "false"), ok()]).await;
    let error = openai(&server, test_http()).chat(&hello()).await.unwrap_err();
    assert!(matches!(error, ModelError::Status { status: 503, .. }), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout_is_abandoned_and_retried() {
    let slow = ok().after(Duration::from_secs(120));
    let server = FakeServer::start(vec![slow, ok()]).await;
    let model = openai(&server, HttpSettings { request_timeout_ms: 3_000, ..test_http() });

    let response = model.chat(&hello()).await.unwrap();

    assert!(response.message.content.starts_with("The image shows"));
    assert_eq!(server.requests().len(), 2);
    assert_eq!(model.stats().retries, 1);
}

#[tokio::test]
async fn timeouts_once_retries_are_spent_are_transport_errors() {
    let server = FakeServer::start(vec![ok().after(Duration::from_secs(120))]).await;
    let model = openai(&server, HttpSettings { request_timeout_ms: 500, max_retries: 1, ..test_http() });
    let error = model.chat(&hello()).await.unwrap_err();
    assert!(matches!(&error, ModelError::Transport { message, .. } if message.contains("timed out")), "{error}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_after_retries() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = OpenAiConfig {
        base_url: Some(url),
        http: HttpSettings { max_retries: 2, ..test_http() },
        ..OpenAiConfig::chat("m")
    };
    let model = OpenAiChat::new(&config, ApiKey::new(KEY)).unwrap();

    let error = model.chat(&hello()).await.unwrap_err();

    assert!(matches!(error, ModelError::Transport { .. }), "{error}");
    let stats = model.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 1));
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_malformed_and_not_retried() {
    let server = FakeServer::start(vec![Reply::raw(200, r#"{"choices": [{"message": "#)]).await;
    let error = openai(&server, test_http()).chat(&hello()).await.unwrap_err();
    assert!(matches!(&error, ModelError::Malformed { provider, .. } if provider == "openai"), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_reply_without_choices_is_malformed() {
    let server = FakeServer::start(vec![Reply::raw(200, r#"{"choices": []}"#)]).await;
    let error = openai(&server, test_http()).chat(&hello()).await.unwrap_err();
    assert!(matches!(&error, ModelError::Malformed { message, .. } if message.contains("no choices")), "{error}");
}

#[tokio::test]
async fn an_error_body_echoing_the_key_is_scrubbed() {
    let echo = format!(r#"{{"error": {{"message": "key {KEY} is revoked", "type": "invalid_request_error"}}}}"#);
    let server = FakeServer::start(vec![Reply::raw(403, &echo)]).await;
    let error = openai(&server, test_http()).chat(&hello()).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(KEY) && shown.contains("key [redacted] is revoked"), "{shown}");
}

#[tokio::test]
async fn no_more_requests_are_in_flight_than_the_limit() {
    let server = FakeServer::start(vec![ok().after(Duration::from_millis(300))]).await;
    let model = Arc::new(openai(&server, HttpSettings { max_concurrency: 2, ..test_http() }));

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let model = model.clone();
        calls.spawn(async move { model.chat(&hello()).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }

    assert_eq!(server.requests().len(), 6);
    assert!(server.peak_in_flight() <= 2, "peak {}", server.peak_in_flight());
    assert_eq!(model.stats(), ModelStats { calls: 6, requests: 6, ..model.stats() });
}

#[tokio::test]
async fn the_stats_say_whether_the_breaker_is_open() {
    let server = FakeServer::start(vec![Reply::raw(503, "upstream unavailable")]).await;
    let http = HttpSettings { max_retries: 0, breaker_failures: 2, breaker_cooldown_ms: 60_000, ..test_http() };
    let model = openai(&server, http);
    assert!(model.chat(&hello()).await.is_err());
    assert!(!model.stats().breaker_open, "one failure does not open it");
    assert!(model.chat(&hello()).await.is_err());
    let stats = model.stats();
    assert!(stats.breaker_open, "the second does: {stats:?}");
    assert_eq!((stats.calls, stats.requests, stats.failures), (2, 2, 2));
}
