//! An OpenAI-compatible model provider on 127.0.0.1 for the review-analysis agent, whose
//! behaviour a test switches: down (503), answering nonsense, or scoring the review.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use serde_json::{Value, json};

/// What the provider does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 503 to every request.
    Down,
    /// A reply that never meets the agent's output schema.
    Nonsense,
    /// A score for the review the prompt names.
    Scoring,
}

/// A running provider; the environment `weir` needs to use it comes from [`Provider::env`].
pub struct Provider {
    url: String,
    mode: Arc<AtomicU8>,
    refused: Arc<AtomicUsize>,
}

impl Provider {
    /// Starts one in `mode`.
    pub async fn start(mode: Mode) -> Provider {
        let (state, refused) = (Arc::new(AtomicU8::new(mode as u8)), Arc::new(AtomicUsize::new(0)));
        let (current, count) = (state.clone(), refused.clone());
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
                let (current, count) = (current.clone(), count.clone());
                async move {
                    let mode = current.load(Ordering::SeqCst);
                    if mode == Mode::Down as u8 {
                        count.fetch_add(1, Ordering::SeqCst);
                        let body = json!({"error": {"message": "overloaded", "type": "server_error"}});
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body));
                    }
                    (axum::http::StatusCode::OK, axum::Json(completion(&request, mode == Mode::Scoring as u8)))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { url, mode: state, refused }
    }

    /// Switches what it does.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Requests it refused while down.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// The variables that make `weir` use it.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("WEIR_MODEL_PROVIDER", "openai".into()),
            ("OPENAI_API_KEY", "test-key".into()),
            ("WEIR_MODEL_BASE_URL", self.url.clone()),
        ]
    }
}

/// A chat completion: a score for the product the prompt names (`Product: <id>`), or text
/// that is no answer at all.
fn completion(request: &Value, scoring: bool) -> Value {
    let prompt = request["messages"].as_array().unwrap().iter().filter_map(|m| m["content"].as_str()).next_back();
    let id = prompt.and_then(|p| p.lines().find_map(|l| l.strip_prefix("Product: "))).unwrap_or("unknown");
    let answer = match scoring {
        true => json!({"id": id, "score": 3, "reasons": ["fine"]}).to_string(),
        false => "I would rather not say.".to_string(),
    };
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}
