//! The model clients against fake providers on 127.0.0.1: the exact requests they send, the
//! replies they understand (the providers' published examples, under `tests/fixtures/`), and
//! the HTTP layer's retries, timeouts and concurrency limit.

mod anthropic;
mod config;
mod embeddings;
mod fake;
mod http_layer;
mod ollama;
mod openai;

use serde_json::json;
use weir_models::{ChatResponse, ModelError, ToolSpec};

/// The tool every conversation offers.
fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "The weather in a city.".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})
            .into(),
    }
}

/// Replies are journaled: each must come back from JSON as it was.
fn assert_journals(response: &ChatResponse) {
    let journaled = serde_json::to_string(response).unwrap();
    assert_eq!(&serde_json::from_str::<ChatResponse>(&journaled).unwrap(), response);
}

/// `error` says that `provider`'s reply was malformed, in words that contain `problem`.
fn assert_malformed(error: &ModelError, provider: &str, problem: &str) {
    let ModelError::Malformed { provider: from, message } = error else { panic!("not a malformed reply: {error:?}") };
    assert_eq!(from, provider, "{error}");
    assert!(message.contains(problem), "`{message}` does not say `{problem}`");
}
