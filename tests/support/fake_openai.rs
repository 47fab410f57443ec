//! An OpenAI-compatible Chat Completions server on 127.0.0.1 that answers every request with
//! the same assistant message, in OpenAI's wire format, and records the API key each request
//! came with: the model of declarative agents started as Lambda functions in tests. Its
//! embeddings endpoint answers in OpenAI's format with vectors of [`LETTERS`] dimensions that
//! count each text's letters: enough to search by.

use std::sync::{Arc, Mutex};

use serde_json::json;

/// The dimensions of the fake's embeddings: one per letter a to z.
pub const LETTERS: usize = 26;

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
        let app = axum::Router::new().route("/v1/embeddings", axum::routing::post(embeddings)).fallback(
            move |headers: axum::http::HeaderMap| {
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
            },
        );
        let (origin, server) = crate::serve_loopback(app).await;
        FakeOpenAi { url: format!("{origin}/v1"), authorizations, server }
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

/// `POST /v1/embeddings`: one vector per input, counting its letters.
async fn embeddings(axum::Json(request): axum::Json<serde_json::Value>) -> axum::Json<serde_json::Value> {
    let inputs: Vec<String> = match &request["input"] {
        serde_json::Value::String(text) => vec![text.clone()],
        inputs => inputs.as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect(),
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut vector = vec![0.0f32; LETTERS];
            text.to_lowercase().bytes().filter(u8::is_ascii_lowercase).for_each(|b| vector[(b - b'a') as usize] += 1.0);
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    axum::Json(
        json!({"object": "list", "model": request["model"], "data": data, "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
    )
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}
