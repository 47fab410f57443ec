//! A fraud-detection agent on weir.
//!
//! For each card transaction (`{"card", "transaction_id", "amount", "merchant", "city",
//! "country", "ts"}`, keyed by card) the agent updates the card's profile in short-term memory
//! (velocity, recent places, average amount) and screens the transaction against it. Ordinary
//! transactions are approved without a model call; unusual ones go to an analyst model with
//! three tools: `check_blocklist`, `lookup_merchant` and `hold_card` (at-most-once; the card
//! is filled in from the key, never by the model). Once held, a card's later transactions
//! are held without a model call. Each decision on an unusual transaction is remembered in the
//! card's long-term memory (set `decisions`, committed with the batch, the 50 latest kept for
//! 90 days), and the analyst sees the past decisions most like the new case: a merchant the
//! card was already sent to review for counts against it. Outputs are `{"card", "transaction_id", "decision",
//! "reason"}` with `decision` one of `approve`, `review`, `hold`.
//!
//! The model is the first configured in the environment (see
//! [`weir_models::ModelConfig::from_environment`]), else a small built-in offline model.

mod agent;
mod offline_model;
mod profile;
mod tools;
mod transaction;

pub use agent::{DECISIONS, MODEL, PROFILE, PROFILE_TTL, agent, agent_from_env, agent_with_env};
pub use offline_model::{OFFLINE_MODEL_NAME, OfflineFraudModel};
pub use profile::{AMOUNT_FACTOR, CardProfile, LARGE_AMOUNT, Place, TRAVEL_SECS, VELOCITY_LIMIT, VELOCITY_WINDOW_SECS};
pub use tools::{
    BlockedMerchant, BlocklistCheck, CHECK_BLOCKLIST, FraudTools, HOLD_APPROVAL_ABOVE, HOLD_APPROVAL_TIMEOUT,
    HOLD_CARD, HoldCard, LOOKUP_MERCHANT, Merchant, MerchantLookup, ReferenceData,
};
pub use transaction::{Decision, FraudDecision, Transaction, Verdict};

/// The JSON pointer of a transaction's key (`WEIR_KEY_FIELD`): transactions are keyed by card.
pub const KEY_FIELD: &str = "/card";
