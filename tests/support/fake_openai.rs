//! An OpenAI-compatible Chat Completions server on 127.0.0.1 that answers every request with
//! the same assistant message, in OpenAI's wire format, and records the API key each request
//! came with: the model of declarative agents started as Lambda functions in tests.

use std::sync::{Arc, Mutex};

use serde_json::json;

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeOpenAi {
    url: String,
    /// The `Authorization` header of each request, in order.
    authorizations: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    /// Starts a server whose every chat completion's content is `content` (for an agent with
    /// an output schema, the JSON text that meets it).
    pub async fn start(content: impl Into<String>) -> FakeOpenAi {
        let (content, authorizations) = (content.into(), Arc::new(Mutex::new(Vec::new())));
        let record = authorizations.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
            record.lock().expect("not poisoned").push(authorization.to_string());
            let reply = json!({
                "id": "chatcmpl-weir-test",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content.clone()},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            });
            async move { axum::Json(reply) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/v1", listener.local_addr().expect("bound"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake model serves");
        });
        FakeOpenAi { url, authorizations, server }
    }

    /// The base URL, `http://127.0.0.1:PORT/v1` (`WEIR_MODEL_BASE_URL`).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Chat completions answered so far.
    pub fn requests(&self) -> usize {
        self.authorizations.lock().expect("not poisoned").len()
    }

    /// The `Authorization` header of each request so far (empty when there was none).
    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().expect("not poisoned").clone()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
