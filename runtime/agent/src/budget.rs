//! Budgets: how much one key may spend on model calls per period, enforced durably.
//!
//! What a key spent in its current period is kept in the key's state, so it commits with
//! the batch that spent it: a crash or a retry never counts a call twice nor forgets one
//! (`docs/observability.md`, "Budgets"). The check is made once per input event, before its
//! actions run, against what the key's earlier events spent: the same in every attempt, so
//! an event allowed once is allowed again when it is retried or replayed.

use serde::{Deserialize, Serialize};

/// A key's spending limit per period.
///
/// ```
/// use weir_agent::{Budget, OnExhausted};
///
/// let budget: Budget = serde_json::from_str(r#"{"tokens": 50000, "period_ms": 86400000}"#).unwrap();
/// assert_eq!(budget.on_exhausted, OnExhausted::DeadLetter);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Most tokens (prompt and reply) per period.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Most cost per period, in the price table's currency: calls of models with no price
    /// cost nothing here.
    #[serde(default)]
    pub cost: Option<f64>,
    /// The period, in milliseconds. Periods are aligned to the epoch: a day's starts at
    /// 00:00 UTC.
    pub period_ms: u64,
    /// What an event of a key whose budget is spent does.
    #[serde(default)]
    pub on_exhausted: OnExhausted,
}

/// What happens to an event whose key has spent its budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhausted {
    /// It is dead-lettered with the reason, to be requeued (`weir dead-letters --requeue`)
    /// once the budget allows.
    #[default]
    DeadLetter,
    /// Its model calls go to this model instead (a cheaper one), whatever the actions name.
    Model(String),
    /// The key waits until the period ends, its later events queued behind it, and the event
    /// then runs in the new period (a durable wait, `docs/waits.md`).
    Pause,
}

/// What a key spent in one period: part of its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spend {
    /// The period's number since the epoch.
    period: u64,
    tokens: u64,
    cost: f64,
}

impl Budget {
    /// The period `now_ms` falls in.
    fn period(&self, now_ms: u64) -> u64 {
        now_ms / self.period_ms.max(1)
    }

    /// What the key spent in the period of `now_ms`.
    pub(crate) fn spent(&self, spend: Option<Spend>, now_ms: u64) -> Spend {
        let period = self.period(now_ms);
        spend.filter(|s| s.period == period).unwrap_or(Spend { period, ..Default::default() })
    }

    /// When the period of `spent` ends, milliseconds since the epoch.
    pub(crate) fn period_end(&self, spent: Spend) -> u64 {
        (spent.period + 1).saturating_mul(self.period_ms.max(1))
    }

    /// Why an event may not spend more, if it may not.
    pub(crate) fn exhausted(&self, spent: Spend) -> Option<String> {
        let until = self.period_end(spent);
        let until = format!("until {} ms since the epoch", until);
        if let Some(limit) = self.tokens.filter(|&limit| spent.tokens >= limit) {
            return Some(format!("the key's budget of {limit} tokens is spent ({} used, {until})", spent.tokens));
        }
        if let Some(limit) = self.cost.filter(|&limit| spent.cost >= limit) {
            return Some(format!("the key's budget of {limit} is spent ({:.6} used, {until})", spent.cost));
        }
        None
    }
}

impl Spend {
    /// Adds what an event's model calls used.
    pub(crate) fn add(self, tokens: u64, cost: f64) -> Spend {
        Spend { tokens: self.tokens + tokens, cost: self.cost + cost, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_period_starts_from_nothing() {
        let budget = Budget { tokens: Some(100), cost: None, period_ms: 1000, on_exhausted: OnExhausted::DeadLetter };
        let spent = budget.spent(None, 2_500).add(100, 0.0);
        assert!(budget.exhausted(spent).unwrap().contains("100 tokens is spent (100 used, until 3000"));
        assert_eq!(budget.spent(Some(spent), 2_999), spent);
        assert_eq!(budget.spent(Some(spent), 3_000).tokens, 0);
        assert!(budget.exhausted(budget.spent(Some(spent), 3_000)).is_none());
    }
}
