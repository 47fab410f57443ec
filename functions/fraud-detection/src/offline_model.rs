//! A small built-in model that needs no key and no network: a fixed rule over the case and
//! the tools' answers.
//!
//! It is what the binary runs when no provider is configured. It speaks the same protocol as
//! a real model — it calls `check_blocklist` and `lookup_merchant`, calls `hold_card` when
//! the rule says fraud, then answers with the verdict as JSON — so the agent runs unchanged
//! on either.

use async_trait::async_trait;
use serde_json::{Value, json};
use weir_models::{ChatMessage, ChatModel, ChatRequest, ChatResponse, ModelError, Role, ToolCall};

use crate::tools::{CHECK_BLOCKLIST, HOLD_CARD, LOOKUP_MERCHANT};

/// The offline model's name, as metrics and logs show it.
pub const OFFLINE_MODEL_NAME: &str = "weir-offline-fraud (built-in offline model)";

/// The built-in offline fraud analyst: it holds the card when the merchant is blocklisted or
/// high-risk, or when two anomalies coincide; otherwise it asks for a review.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineFraudModel;

#[async_trait]
impl ChatModel for OfflineFraudModel {
    fn name(&self) -> &str {
        OFFLINE_MODEL_NAME
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let case = find_case(&request.messages).ok_or_else(|| ModelError::Malformed {
            provider: OFFLINE_MODEL_NAME.into(),
            message: "the offline model reads a user message starting `Case: ` with the case as JSON; there was none"
                .into(),
        })?;
        let merchant = case["transaction"]["merchant"].as_str().unwrap_or_default();
        // A tool's result as JSON (an error reads as `null`), if it was answered.
        let answered =
            |tool: &str| request.tool_result(tool).map(|m| serde_json::from_str(&m.content).unwrap_or(Value::Null));
        let (Some(blocklist), Some(lookup)) = (answered(CHECK_BLOCKLIST), answered(LOOKUP_MERCHANT)) else {
            return Ok(ChatResponse::calling(
                OFFLINE_MODEL_NAME,
                [
                    call(CHECK_BLOCKLIST, json!({"merchant": merchant})),
                    call(LOOKUP_MERCHANT, json!({"merchant": merchant})),
                ],
            ));
        };
        let anomalies = case["anomalies"].as_array().map_or(0, Vec::len);
        let blocked = blocklist["blocked"] == true;
        let risk = lookup["risk"].as_str().unwrap_or("unknown");
        let plural = if anomalies == 1 { "anomaly" } else { "anomalies" };
        let mut evidence = vec![format!("{anomalies} {plural}"), format!("merchant risk {risk}")];
        if blocked {
            evidence.push(format!("merchant blocklisted: {}", blocklist["reason"].as_str().unwrap_or("listed")));
        }
        // A merchant this card was already sent to review for: the pattern repeats.
        let merchant_lower = merchant.to_lowercase();
        let reviewed_before = case["card_history"]["past_decisions"].as_array().is_some_and(|past| {
            past.iter().filter_map(Value::as_str).any(|d| d.contains(" review at ") && d.contains(&merchant_lower))
        });
        if reviewed_before {
            evidence.push("reviewed before at this merchant".to_string());
        }
        let reason = evidence.join("; ");
        let fraud = blocked || risk == "high" || anomalies >= 2 || (reviewed_before && anomalies >= 1);
        let may_hold = request.tools.iter().any(|t| t.name == HOLD_CARD);
        if fraud && may_hold && answered(HOLD_CARD).is_none() {
            return Ok(ChatResponse::calling(OFFLINE_MODEL_NAME, [call(HOLD_CARD, json!({"reason": reason}))]));
        }
        let decision = if fraud && may_hold { "hold" } else { "review" };
        let answer = json!({"decision": decision, "reason": reason});
        Ok(ChatResponse::answer(OFFLINE_MODEL_NAME, answer.to_string()))
    }
}

fn find_case(messages: &[ChatMessage]) -> Option<Value> {
    let message = messages.iter().find(|m| m.role == Role::User && m.content.starts_with("Case: "))?;
    serde_json::from_str(&message.content["Case: ".len()..]).ok()
}

/// A call of `tool`, whose id is the tool's name: an offline model calls each tool once.
fn call(tool: &str, arguments: Value) -> ToolCall {
    ToolCall::new(tool, tool, arguments)
}
