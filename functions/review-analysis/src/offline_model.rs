//! A small built-in model that needs no key and no network: it scores reviews by their words.
//!
//! It is what the demo and the tests run when no provider is configured. It speaks the same
//! protocol as a real model — it calls `notify_shipping_manager` for shipping complaints and
//! then answers with the analysis as JSON — so the agent runs unchanged on either.

use async_trait::async_trait;
use serde_json::json;
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError, Role, ToolCall, Usage};

use crate::notify::NOTIFY_TOOL;

/// The offline model's name, as metrics and logs show it.
pub const OFFLINE_MODEL_NAME: &str = "weir-offline-reviews (built-in offline model)";

/// The built-in offline review model.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineReviewModel;

const POSITIVE: &[&str] = &[
    "love",
    "great",
    "excellent",
    "perfect",
    "comfortable",
    "comfy",
    "bright",
    "reliably",
    "sturdy",
    "waterproof",
    "breathable",
    "would buy again",
    "nice",
    "good",
    "fast",
    "value",
    "fit perfectly",
    "no blisters",
];
const NEGATIVE: &[&str] = &[
    "broke",
    "broken",
    "poor",
    "peeling",
    "leaks",
    "returned",
    "terrible",
    "too hot",
    "damaged",
    "crushed",
    "late",
    "wet",
    "short",
    "small",
    "disappointed",
    "cheap",
    "worst",
    "refund",
];
const SHIPPING: &[&str] = &[
    "shipping",
    "delivery",
    "delivered",
    "arrived",
    "package",
    "parcel",
    "box was",
    "courier",
    "shipped",
    "when i received",
];

#[async_trait]
impl ChatModel for OfflineReviewModel {
    fn name(&self) -> &str {
        OFFLINE_MODEL_NAME
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let (id, review) = find_review(&request.messages).ok_or_else(|| ModelError::Malformed {
            provider: OFFLINE_MODEL_NAME.into(),
            message: "the offline model reads a user message with `Product:` and `Review:` lines; there was none"
                .into(),
        })?;
        let text = review.to_lowercase();
        let notified = request.messages.iter().any(|m| m.role == Role::Tool);
        let complaint = SHIPPING.iter().any(|w| text.contains(w)) && NEGATIVE.iter().any(|w| text.contains(w));
        let may_notify = request.tools.iter().any(|t| t.name == NOTIFY_TOOL);
        let usage = Usage { input_tokens: words(request), output_tokens: 20 };
        if complaint && may_notify && !notified {
            let summary: String = review.chars().take(120).collect();
            let call = ToolCall::new("call_notify_0", NOTIFY_TOOL, json!({"id": id, "summary": summary}));
            return Ok(ChatResponse { usage, ..ChatResponse::calling(OFFLINE_MODEL_NAME, [call]) });
        }
        let found =
            |lexicon: &[&'static str]| lexicon.iter().filter(|w| text.contains(**w)).copied().collect::<Vec<_>>();
        let (good, bad) = (found(POSITIVE), found(NEGATIVE));
        let score = (3 + good.len() as i64 - 2 * bad.len() as i64).clamp(1, 5);
        let mut reasons: Vec<String> = good.iter().map(|w| format!("mentions \"{w}\"")).collect();
        reasons.extend(bad.iter().map(|w| format!("complains: \"{w}\"")));
        if complaint {
            reasons.push("shipping complaint".into());
        }
        if reasons.is_empty() {
            reasons.push("neutral wording".into());
        }
        let answer = json!({"id": id, "score": score, "reasons": reasons});
        Ok(ChatResponse { usage, ..ChatResponse::answer(OFFLINE_MODEL_NAME, answer.to_string()) })
    }
}

fn find_review(messages: &[ChatMessage]) -> Option<(String, String)> {
    let message = messages.iter().find(|m| m.role == Role::User && m.content.contains("Review:"))?;
    let field = |label: &str| {
        let start = message.content.find(label)? + label.len();
        let rest = &message.content[start..];
        let end = if label == "Review:" { rest.len() } else { rest.find('\n').unwrap_or(rest.len()) };
        Some(rest[..end].trim().to_string())
    };
    Some((field("Product:").unwrap_or_default(), field("Review:")?))
}

fn words(request: &ChatRequest) -> u64 {
    request.messages.iter().map(|m| m.content.split_whitespace().count() as u64).sum()
}
