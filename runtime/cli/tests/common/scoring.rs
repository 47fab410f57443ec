//! An OpenAI-compatible model provider on 127.0.0.1 that scores reviews by a fixed rule and
//! counts its requests, and a webhook that counts its calls: what a replay must not call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

/// The prompt words that make the provider strict.
pub const STRICT: &str = "Be strict";

/// A running provider.
pub struct ScoringModel {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl ScoringModel {
    pub async fn start() -> ScoringModel {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(completion(&request)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ScoringModel { url, requests }
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
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

/// The score of a review: 1 to 5 by its length; one less, when the prompt is strict, for
/// the reviews that would score 4 or 5.
pub fn score(review: &str, strict: bool) -> u64 {
    let lenient = (review.len() % 5) as u64 + 1;
    if strict && lenient >= 4 { lenient - 1 } else { lenient }
}

fn completion(request: &Value) -> Value {
    let messages = request["messages"].as_array().unwrap();
    let text = |role: &str| {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let user = text("user");
    let answer = match text("system").contains(JUDGE) {
        true => judgement(&user),
        false => {
            json!({"score": score(user.split_once("Review: ").map_or("", |(_, r)| r), text("system").contains(STRICT))})
                .to_string()
        }
    };
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}
    })
}

/// What marks a judge's request: the instructions of `weir eval`'s judge.
const JUDGE: &str = "You grade the output";

/// The judge's grade of the output its request shows: 1 for a score of 3 or more, else 0.2.
fn judgement(user: &str) -> String {
    let output = user.split_once("Output: ").map_or("", |(_, o)| o).trim();
    let scored = serde_json::from_str::<Value>(output).ok().and_then(|o| o["score"].as_u64()).unwrap_or(0);
    match scored >= 3 {
        true => json!({"score": 1.0, "reason": "a fair score"}).to_string(),
        false => json!({"score": 0.2, "reason": "too harsh"}).to_string(),
    }
}

/// A webhook that answers 200 and counts the calls it receives.
pub struct Webhook {
    pub url: String,
    calls: Arc<AtomicUsize>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"ok": true})) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, calls }
    }

    /// Calls received.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
