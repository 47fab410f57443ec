//! The HTTP tool against an in-process endpoint on 127.0.0.1: the idempotency key and the
//! configured headers reach it, 5xx replies are retried with the same key, other failures
//! are tool errors naming the status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use weir_tools::{HttpTool, HttpToolConfig, Tool};

/// What the endpoint received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Default)]
struct Endpoint {
    received: Mutex<Vec<Received>>,
}

impl Endpoint {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn keys(&self) -> Vec<String> {
        self.received().iter().map(|request| header(&request.headers, "idempotency-key")).collect()
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Answers by path: `echo` returns the arguments, `flaky` fails its first request with a
/// 503, `throttled` with a 429 asking to retry at once, `refused` is a 429 that says not
/// to retry, `down` always does, `missing` is a 404, `text` answers plain text, `slow` never
/// answers in time.
async fn handle(
    State(endpoint): State<Arc<Endpoint>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    let earlier = {
        let mut received = endpoint.received.lock().unwrap();
        let earlier = received.iter().filter(|request| request.path == path).count();
        received.push(Received { path: path.clone(), headers, body: body.0.clone() });
        earlier
    };
    match path.as_str() {
        "echo" => axum::Json(json!({"received": body.0})).into_response(),
        "flaky" if earlier == 0 => (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response(),
        "flaky" => axum::Json(json!({"ok": true})).into_response(),
        "throttled" if earlier == 0 => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response()
        }
        "throttled" => axum::Json(json!({"ok": true})).into_response(),
        "refused" => (StatusCode::TOO_MANY_REQUESTS, [("x-should-retry", "false")], "quota exhausted").into_response(),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response(),
        "missing" => (StatusCode::NOT_FOUND, "no order 42").into_response(),
        "text" => "plain answer".into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "too late".into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The endpoint's base URL, served until the test's runtime ends.
async fn serve() -> (String, Arc<Endpoint>) {
    let endpoint = Arc::new(Endpoint::default());
    let app = Router::new().route("/{path}", post(handle)).with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, endpoint)
}

/// A tool for `path`, declared as an agent file would, with `extra` settings.
fn tool(base: &str, path: &str, extra: Value) -> HttpTool {
    let mut config = json!({
        "name": "orders",
        "description": "Finds orders.",
        "url": format!("{base}/{path}"),
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        "headers": {
            "X-Team": "support",
            "Authorization": {"env": "CARGO_PKG_NAME", "prefix": "Bearer "},
        },
    });
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    HttpTool::new(&serde_json::from_value::<HttpToolConfig>(config).unwrap()).unwrap()
}

#[tokio::test]
async fn the_key_and_the_configured_headers_reach_the_endpoint() {
    let (base, endpoint) = serve().await;
    let result = tool(&base, "echo", json!({})).call(json!({"order_id": "42"}), "call-1").await.unwrap();
    assert_eq!(result, json!({"received": {"order_id": "42"}}));

    let [request] = endpoint.received().try_into().unwrap();
    assert_eq!(request.body, json!({"order_id": "42"}));
    assert_eq!(header(&request.headers, "idempotency-key"), "call-1");
    assert_eq!(header(&request.headers, "x-team"), "support");
    assert_eq!(header(&request.headers, "authorization"), "Bearer weir-tools");
    assert_eq!(header(&request.headers, "content-type"), "application/json");
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_key() {
    let (base, endpoint) = serve().await;
    let result = tool(&base, "flaky", json!({})).call(json!({"order_id": "42"}), "call-2").await.unwrap();
    assert_eq!(result, json!({"ok": true}));
    assert_eq!(endpoint.keys(), ["call-2", "call-2"]);
}

/// Rate limits are retried as the model clients retry them: the same policy, which waits
/// what the server's `Retry-After` asks and heeds its `x-should-retry`.
#[tokio::test]
async fn a_429_is_retried_as_the_server_asks() {
    let (base, endpoint) = serve().await;
    let result = tool(&base, "throttled", json!({})).call(json!({}), "call-9").await.unwrap();
    assert_eq!(result, json!({"ok": true}));
    assert_eq!(endpoint.keys(), ["call-9", "call-9"]);

    let (base, endpoint) = serve().await;
    let error = tool(&base, "refused", json!({})).call(json!({}), "call-10").await.unwrap_err();
    assert!(error.message.contains("429") && error.message.contains("quota exhausted"), "{error}");
    assert_eq!(endpoint.keys(), ["call-10"], "x-should-retry: false is heeded");
}

#[tokio::test]
async fn a_server_error_that_lasts_is_a_tool_error_after_the_retries() {
    let (base, endpoint) = serve().await;
    let error = tool(&base, "down", json!({"retries": 1})).call(json!({}), "call-3").await.unwrap_err();
    assert_eq!(error.message, "`orders` answered 503 Service Unavailable: down for maintenance");
    assert!(error.is_unavailable(), "still failing after the retries: the tool is down");
    assert_eq!(endpoint.keys(), ["call-3", "call-3"]);
}

#[tokio::test]
async fn an_at_most_once_tool_is_not_retried() {
    let (base, endpoint) = serve().await;
    let tool = tool(&base, "down", json!({"at_most_once": true}));
    assert!(tool.at_most_once());
    let error = tool.call(json!({}), "call-4").await.unwrap_err();
    assert!(error.message.contains("503"), "{error}");
    assert_eq!(endpoint.keys(), ["call-4"]);
}

#[tokio::test]
async fn a_client_error_is_a_tool_error_with_status_and_body_at_once() {
    let (base, endpoint) = serve().await;
    let error = tool(&base, "missing", json!({})).call(json!({"order_id": "42"}), "call-5").await.unwrap_err();
    assert_eq!(error.message, "`orders` answered 404 Not Found: no order 42");
    assert_eq!(endpoint.keys(), ["call-5"]);
}

#[tokio::test]
async fn a_text_reply_is_a_string_result() {
    let (base, _endpoint) = serve().await;
    let result = tool(&base, "text", json!({})).call(json!({}), "call-6").await.unwrap();
    assert_eq!(result, "plain answer");
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_in_time_is_a_tool_error() {
    let (base, endpoint) = serve().await;
    let tool = tool(&base, "slow", json!({"timeout_ms": 300, "retries": 1}));
    let error = tool.call(json!({}), "call-7").await.unwrap_err();
    assert!(error.message.starts_with("`orders` could not be reached"), "{error}");
    assert!(!error.message.contains(&base), "the URL stays out of errors: {error}");
    assert_eq!(endpoint.keys(), ["call-7", "call-7"]);
}
