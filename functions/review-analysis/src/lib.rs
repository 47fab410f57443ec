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

mod analysis;
mod notify;
mod offline_model;

pub use analysis::{ReviewAnalysis, agent, agent_from_env, agent_with_env};
pub use notify::{NOTIFY_TOOL, Notification, notify_tool_from_env};
pub use offline_model::{OFFLINE_MODEL_NAME, OfflineReviewModel};

/// The JSON pointer of a review's key (`WEIR_KEY_FIELD`): reviews are keyed by product.
pub const KEY_FIELD: &str = "/id";
