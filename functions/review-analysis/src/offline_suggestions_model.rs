//! A small built-in model that needs no key and no network: suggestions from the summary's
//! complaints.
//!
//! It is what the product-suggestions binary runs when no provider is configured; it answers
//! in the same JSON a real model must, so the agent runs unchanged on either.

use async_trait::async_trait;
use serde_json::json;
use weir_models::{ChatModel, ChatRequest, ChatResponse, ModelError, Role};

use crate::suggestions::parse_request;

/// The offline model's name, as metrics and logs show it.
pub const OFFLINE_SUGGESTIONS_MODEL_NAME: &str = "weir-offline-suggestions (built-in offline model)";

/// The built-in offline advisor: one suggestion per distinct complaint, one for shipping.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineSuggestionsModel;

#[async_trait]
impl ChatModel for OfflineSuggestionsModel {
    fn name(&self) -> &str {
        OFFLINE_SUGGESTIONS_MODEL_NAME
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let user = request.messages.iter().filter(|m| m.role == Role::User).find_map(|m| parse_request(&m.content));
        let (product, summary) = user.ok_or_else(|| ModelError::Malformed {
            provider: OFFLINE_SUGGESTIONS_MODEL_NAME.into(),
            message: "the offline model reads a user message with `Product:` and `Summary:` lines; there was none"
                .into(),
        })?;
        let mut suggestions = Vec::new();
        let reasons = summary["recent_reasons"].as_array().cloned().unwrap_or_default();
        for reason in reasons.iter().filter_map(|r| r.as_str()) {
            if let Some(complaint) = reason.strip_prefix("complains: ") {
                let suggestion = format!("Investigate why reviewers of {product} mention {complaint} and fix it.");
                if !suggestions.contains(&suggestion) {
                    suggestions.push(suggestion);
                }
            }
        }
        if summary["shipping_complaints"].as_u64().unwrap_or(0) > 0 {
            suggestions
                .push(format!("Review the packaging and courier of {product}: reviewers complain about shipping."));
        }
        if suggestions.is_empty() {
            suggestions.push(format!("Keep {product} as it is and quote its reviews' praise on the product page."));
        }
        let answer = json!({"suggestions": suggestions}).to_string();
        Ok(ChatResponse::answer(OFFLINE_SUGGESTIONS_MODEL_NAME, answer))
    }
}
