//! A card transaction, the agent's input, and the decision it outputs.

use serde::{Deserialize, Serialize};

/// One card payment, as the producer sends it (keyed by `card`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The card paying.
    pub card: String,
    /// The payment's id.
    pub transaction_id: String,
    /// The amount, in the card's currency.
    pub amount: f64,
    /// The merchant's id.
    pub merchant: String,
    /// Where the payment was made.
    pub city: String,
    /// The country code of `city`.
    pub country: String,
    /// When, in seconds since the epoch.
    pub ts: u64,
}

/// What happens to a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let it through.
    Approve,
    /// Let it through, but ask an analyst to look.
    Review,
    /// The card is held: this and later payments wait for an analyst.
    Hold,
}

/// The model's answer for a suspicious transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    /// `hold` only after calling `hold_card`.
    pub decision: Decision,
    /// One or two sentences for the analyst, citing the evidence.
    pub reason: String,
}

/// The agent's output for every transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudDecision {
    pub card: String,
    /// The transaction.
    pub transaction_id: String,
    /// What happens to it.
    pub decision: Decision,
    /// Why: the screening rule that passed it, or the model's reason.
    pub reason: String,
}
