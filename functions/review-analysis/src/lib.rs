//! The review-analysis agent of Flink Agents' product-review quickstart, on weir.
//!
//! For each review (`{"id": product, "review": text, "ts": seconds}`, keyed by product) a
//! model scores it from 1 to 5 with reasons; when the review complains about shipping, the
//! model calls `notify_shipping_manager` first. Outputs are
//! `{"id", "score", "reasons", "shipping_complaint"}`.
//!
//! The model is the first configured in the environment (see
//! [`weir_models::ModelConfig::from_environment`]), else a small built-in offline model; the
//! notify tool posts to `WEIR_NOTIFY_URL` with an `Idempotency-Key`, else logs.
//!
//! The second agent of the quickstart, [`suggestions_agent`] (binary `product-suggestions`),
//! reads these outputs keyed by product, keeps each product's rolling [`ProductSummary`] in
//! short-term memory, and every few analyses (or when the average score drops) outputs
//! `{"id", "summary", "suggestions": [..]}`.

mod analysis;
mod notify;
mod offline_model;
mod offline_suggestions_model;
mod product_summary;
mod suggestions;

pub use analysis::{ReviewAnalysis, agent, agent_from_env, agent_with_env};
pub use notify::{NOTIFY_TOOL, Notification, notify_tool_from_env};
pub use offline_model::{OFFLINE_MODEL_NAME, OfflineReviewModel};
pub use offline_suggestions_model::{OFFLINE_SUGGESTIONS_MODEL_NAME, OfflineSuggestionsModel};
pub use product_summary::{AVERAGE_DROP, AnalyzedReview, ProductSummary, RECENT_REASONS};
pub use suggestions::{
    DEFAULT_SUGGEST_EVERY, SUGGESTIONS_MODEL, SUMMARY, Suggestions, suggestions_agent, suggestions_agent_from_env,
    suggestions_agent_with_env,
};

/// The JSON pointer of a review's key (`WEIR_KEY_FIELD`): reviews are keyed by product.
pub const KEY_FIELD: &str = "/id";
