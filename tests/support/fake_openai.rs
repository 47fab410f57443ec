//! An OpenAI-compatible Chat Completions server on 127.0.0.1 that answers every request with
//! the same assistant message, in OpenAI's wire format, and counts the requests: the model of
//! declarative agents started as Lambda functions in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeOpenAi {
    url: String,
    requests: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    /// Starts a server whose every chat completion's content is `content` (for an agent with
    /// an output schema, the JSON text that meets it).
    pub async fn start(content: impl Into<String>) -> FakeOpenAi {
        let (content, requests) = (content.into(), Arc::new(AtomicUsize::new(0)));
        let counter = requests.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
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
        FakeOpenAi { url, requests, server }
    }

    /// The base URL, `http://127.0.0.1:PORT/v1` (`WEIR_MODEL_BASE_URL`).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Chat completions answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
