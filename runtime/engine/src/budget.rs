//! The agent's budget: what all its keys and partitions together may spend on model calls
//! per period, though its partitions run in parallel invocations (docs/observability.md,
//! "Budgets per agent").
//!
//! What a partition spent in the period commits with its batches (the manifest's `spend`);
//! what it may spend is its grant in the period's ledger, a chain of links created with
//! create-if-absent, each holding every partition's grant so far. A partition whose spend
//! reached its grant creates the next link with a slice more, if the limit leaves one: so
//! grants never pass the limit, and a grant, being the partition's, survives the
//! invocation that took it.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout;
use crate::storage::Storage;
use crate::trace::EventTrace;

/// What an agent may spend on model calls per period, over all its keys and partitions.
///
/// ```
/// let limit = weir_engine::SpendLimit { tokens: Some(1_000_000), cost: None, period_ms: 86_400_000 };
/// assert_eq!(limit.period(86_400_001), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SpendLimit {
    /// Most tokens (prompt and reply) per period.
    pub tokens: Option<u64>,
    /// Most cost per period, in the price table's currency.
    pub cost: Option<f64>,
    /// The period, in milliseconds, aligned to the epoch.
    pub period_ms: u64,
}

impl SpendLimit {
    /// The number of the period `now_ms` falls in.
    pub fn period(&self, now_ms: u64) -> u64 {
        now_ms / self.period_ms.max(1)
    }

    /// When period `period` ends, milliseconds since the epoch.
    pub fn period_end(&self, period: u64) -> u64 {
        (period + 1).saturating_mul(self.period_ms.max(1))
    }

    /// Whether `spent` is under `granted` in every dimension the limit caps.
    fn within(&self, spent: Amount, granted: Amount) -> bool {
        self.tokens.is_none_or(|_| spent.tokens < granted.tokens) && self.cost.is_none_or(|_| spent.cost < granted.cost)
    }

    /// The next slice to grant when the partitions together hold `used`: a sixteenth of the
    /// limit or what is left of it; `None` when nothing is left in a capped dimension.
    fn slice(&self, used: Amount) -> Option<Amount> {
        let tokens = match self.tokens {
            Some(limit) if used.tokens >= limit => return None,
            Some(limit) => (limit / SLICES).max(1).min(limit - used.tokens),
            None => 0,
        };
        let cost = match self.cost {
            Some(limit) if used.cost >= limit => return None,
            Some(limit) => (limit / SLICES as f64).min(limit - used.cost),
            None => 0.0,
        };
        Some(Amount { tokens, cost })
    }

    /// Why nothing more may be spent, when the partitions together hold `used`.
    fn exhausted(&self, used: Amount, period: u64) -> String {
        let until = self.period_end(period);
        match self.tokens.filter(|&limit| used.tokens >= limit) {
            Some(limit) => format!(
                "the agent's budget of {limit} tokens is spent ({} granted to its partitions, until {until} ms since the epoch)",
                used.tokens
            ),
            None => format!(
                "the agent's budget of {} is spent ({:.6} granted to its partitions, until {until} ms since the epoch)",
                self.cost.unwrap_or_default(),
                used.cost
            ),
        }
    }
}

/// How many slices a limit is granted in, at most (plus the overruns recorded).
const SLICES: u64 = 16;

/// Tokens and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    pub tokens: u64,
    pub cost: f64,
}

impl Amount {
    fn plus(self, other: Amount) -> Amount {
        Amount { tokens: self.tokens + other.tokens, cost: self.cost + other.cost }
    }

    fn max(self, other: Amount) -> Amount {
        Amount { tokens: self.tokens.max(other.tokens), cost: self.cost.max(other.cost) }
    }

    /// What the model calls of `traces` spent, made or replayed: each journaled call once.
    pub(crate) fn of_traces(traces: &[EventTrace]) -> Amount {
        let usages = traces.iter().flat_map(|t| &t.spans).filter_map(|span| span.usage.as_ref());
        usages.fold(Amount::default(), |sum, usage| {
            sum.plus(Amount { tokens: usage.input_tokens + usage.output_tokens, cost: usage.cost.unwrap_or(0.0) })
        })
    }
}

/// What a partition's model calls spent in one period of the agent's budget: the
/// manifest's `spend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionSpend {
    /// The period's number since the epoch.
    pub period: u64,
    #[serde(flatten)]
    pub spent: Amount,
}

// Costs are sums of prices, never NaN: equality is total.
impl Eq for PartitionSpend {}

impl PartitionSpend {
    /// What the partition spent in `period`, given the spend its head holds.
    pub(crate) fn in_period(spend: Option<PartitionSpend>, period: u64) -> Amount {
        spend.filter(|s| s.period == period).map(|s| s.spent).unwrap_or_default()
    }

    /// The head's spend after a commit in `period` whose traces spent `batch`.
    pub(crate) fn after(spend: Option<PartitionSpend>, period: u64, batch: Amount) -> PartitionSpend {
        PartitionSpend { period, spent: Self::in_period(spend, period).plus(batch) }
    }
}

/// One link of a period's ledger: every partition's grant so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    period: u64,
    granted: BTreeMap<u32, Amount>,
}

impl Ledger {
    fn total(&self) -> Amount {
        self.granted.values().fold(Amount::default(), |sum, grant| sum.plus(*grant))
    }
}

/// One partition's side of the agent's budget, for one invocation's claim.
#[derive(Debug)]
pub(crate) struct BudgetAccount {
    limit: SpendLimit,
    storage: Storage,
    agent: String,
    partition: u32,
    /// The head's spend.
    committed: std::sync::Mutex<Option<PartitionSpend>>,
    /// The latest period an event was checked in.
    checked: std::sync::Mutex<Option<u64>>,
    /// The partition's grant in a period, as last read or written; one request at a time.
    granted: tokio::sync::Mutex<Option<(u64, Amount)>>,
}

impl BudgetAccount {
    pub(crate) fn new(
        limit: SpendLimit,
        storage: Storage,
        agent: &str,
        partition: u32,
        head: Option<PartitionSpend>,
    ) -> Self {
        BudgetAccount {
            limit,
            storage,
            agent: agent.to_string(),
            partition,
            committed: std::sync::Mutex::new(head),
            checked: Default::default(),
            granted: Default::default(),
        }
    }

    pub(crate) fn limit(&self) -> &SpendLimit {
        &self.limit
    }

    /// The period a commit at `now_ms` adds its spend to: the latest of the head's and of the
    /// events' checks, made or replayed (their clock is the agent's, journaled); `now_ms`'s
    /// only if there is neither.
    pub(crate) fn commit_period(&self, now_ms: u64) -> u64 {
        let checked = *self.checked.lock().expect("budget");
        let head = self.committed.lock().expect("budget").map(|spend| spend.period);
        checked.max(head).unwrap_or_else(|| self.limit.period(now_ms))
    }

    /// Notes that an event was checked in `period`, by this attempt or an earlier one.
    pub(crate) fn checked(&self, period: u64) {
        let mut checked = self.checked.lock().expect("budget");
        *checked = Some(checked.map_or(period, |latest| latest.max(period)));
    }

    /// Records the spend of a new head.
    pub(crate) fn committed(&self, spend: Option<PartitionSpend>) {
        *self.committed.lock().expect("budget") = spend;
    }

    /// Whether an event starting at `now_ms` may spend: `None`, or why not.
    pub(crate) async fn admit(&self, now_ms: u64) -> Result<Option<String>> {
        let period = self.limit.period(now_ms);
        let mut granted = self.granted.lock().await;
        let spent = PartitionSpend::in_period(*self.committed.lock().expect("budget"), period);
        if let Some((p, grant)) = *granted
            && p == period
            && self.limit.within(spent, grant)
        {
            return Ok(None);
        }
        loop {
            let (seq, mut ledger) = self.read(period).await?;
            let mine = ledger.granted.get(&self.partition).copied().unwrap_or_default();
            // A grant an earlier invocation (or a retried request of ours) took.
            if self.limit.within(spent, mine) {
                *granted = Some((period, mine));
                return Ok(None);
            }
            // An overrun is recorded with the next grant, so that the others get that less.
            let settled = mine.max(spent);
            let used = Amount {
                tokens: ledger.total().tokens - mine.tokens + settled.tokens,
                cost: ledger.total().cost - mine.cost + settled.cost,
            };
            let Some(slice) = self.limit.slice(used) else {
                *granted = Some((period, mine));
                return Ok(Some(self.limit.exhausted(used, period)));
            };
            let grant = settled.plus(slice);
            ledger.period = period;
            ledger.granted.insert(self.partition, grant);
            let next = seq.map_or(0, |s| s + 1);
            let path = self.storage.path(&layout::budget_grant(&self.agent, period, next));
            let body = Bytes::from(serde_json::to_vec(&ledger).expect("ledger serializes"));
            if self.storage.create(&path, body).await? {
                tracing::debug!(partition = self.partition, period, ?grant, "agent budget: slice granted");
                *granted = Some((period, grant));
                return Ok(None);
            }
        }
    }

    /// The newest link of `period`'s ledger, and its number (`None`: no link yet).
    async fn read(&self, period: u64) -> Result<(Option<u64>, Ledger)> {
        let folder = self.storage.path(&layout::budget_ledger(&self.agent, period));
        let listed = self.storage.list_after(&folder, None).await?;
        let newest = listed.iter().filter_map(|o| layout::budget_grant_seq(o.location.filename()?)).max();
        let Some(seq) = newest else { return Ok((None, Ledger { period, ..Default::default() })) };
        let path = self.storage.path(&layout::budget_grant(&self.agent, period, seq));
        let bytes = self.storage.get(&path).await?.ok_or_else(|| Error::corrupt(&path, "listed, then absent"))?;
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
        Ok((Some(seq), ledger))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_stop_at_the_limit() {
        let limit = SpendLimit { tokens: Some(100), cost: None, period_ms: 1000 };
        assert_eq!(limit.slice(Amount::default()).unwrap().tokens, 6);
        assert_eq!(limit.slice(Amount { tokens: 97, cost: 0.0 }).unwrap().tokens, 3);
        assert!(limit.slice(Amount { tokens: 100, cost: 0.0 }).is_none());
        assert!(limit.within(Amount { tokens: 5, cost: 9.0 }, Amount { tokens: 6, cost: 0.0 }));
        assert!(limit.exhausted(Amount { tokens: 115, cost: 0.0 }, 2).contains("100 tokens is spent (115 granted"));
    }
}
