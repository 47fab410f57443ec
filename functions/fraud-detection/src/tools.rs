//! The analyst's tools: `check_blocklist` and `lookup_merchant` over reference data, and
//! `hold_card`, which must never run twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_agent::AgentError;
use weir_agent::approval::{Approval, Decision};
use weir_tools::{FunctionTool, HttpTool, HttpToolConfig, Tool, parameters_schema};

/// The blocklist tool's name.
pub const CHECK_BLOCKLIST: &str = "check_blocklist";
/// The merchant lookup tool's name.
pub const LOOKUP_MERCHANT: &str = "lookup_merchant";
/// The card hold tool's name.
pub const HOLD_CARD: &str = "hold_card";
/// Holds after transactions above this amount wait for an analyst's approval.
pub const HOLD_APPROVAL_ABOVE: &str = "WEIR_HOLD_APPROVAL_ABOVE";
/// How long a hold waits for an analyst's answer before it is dropped.
pub const HOLD_APPROVAL_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// Checks whether a merchant is on the fraud team's blocklist.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct BlocklistCheck {
    /// The merchant's id, as in the transaction.
    pub merchant: String,
}

/// Looks up a merchant: name, category, country and risk rating.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MerchantLookup {
    /// The merchant's id, as in the transaction.
    pub merchant: String,
}

/// Holds the card: its payments are declined until an analyst releases it. Call it at most
/// once, and only when the evidence shows fraud.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct HoldCard {
    /// The card to hold (filled in by the agent: the transaction's card).
    pub card_id: String,
    /// The amount of the transaction that led to the hold (filled in by the agent).
    pub amount: f64,
    /// Why, for the analyst.
    pub reason: String,
}

/// A merchant as the reference data describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merchant {
    /// Its trading name.
    pub name: String,
    /// What it sells.
    pub category: String,
    /// Its country code.
    pub country: String,
    /// `low`, `medium` or `high`.
    pub risk: String,
}

/// A blocklisted merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedMerchant {
    /// The merchant's id.
    pub merchant: String,
    /// Why it is blocked.
    pub reason: String,
}

/// The reference data the lookup tools read.
#[derive(Debug, Clone, Default)]
pub struct ReferenceData {
    /// Merchants by id.
    pub merchants: BTreeMap<String, Merchant>,
    pub blocklist: Vec<BlockedMerchant>,
}

impl ReferenceData {
    /// The sample data of `data/merchants.json` and `data/blocklist.json`, built in.
    pub fn sample() -> Self {
        let merchants = serde_json::from_str(include_str!("../data/merchants.json")).expect("sample merchants");
        let blocklist = serde_json::from_str(include_str!("../data/blocklist.json")).expect("sample blocklist");
        ReferenceData { merchants, blocklist }
    }
}

/// The three tools the analyst model may call.
#[derive(Debug, Clone)]
pub struct FraudTools {
    /// Whether a merchant is on the blocklist; read-only.
    pub check_blocklist: Arc<dyn Tool>,
    /// A merchant's category and risk; read-only.
    pub lookup_merchant: Arc<dyn Tool>,
    /// `hold_card`; it must be at-most-once. The agent hides its `card_id` and `amount` from
    /// the model.
    pub hold_card: Arc<dyn Tool>,
    /// Which holds wait for an analyst's approval (docs/waits.md, "Approvals"); `None`: every
    /// hold is placed at once.
    pub hold_approval: Option<Approval>,
}

impl FraudTools {
    /// Lookups over `data`, and `hold_card` posting to `WEIR_HOLD_CARD_URL` if it is set,
    /// else only logging the hold; holds of transactions above `WEIR_HOLD_APPROVAL_ABOVE`, if
    /// it is set, wait for an analyst's approval.
    pub fn from_env(data: ReferenceData) -> Result<Self, AgentError> {
        let hold_card = match std::env::var("WEIR_HOLD_CARD_URL") {
            Ok(url) if !url.trim().is_empty() => hold_card_webhook(&url)?,
            _ => hold_card_logged(),
        };
        let tools = Self::with_hold_card(data, hold_card);
        match std::env::var(HOLD_APPROVAL_ABOVE) {
            Ok(amount) if !amount.trim().is_empty() => {
                let amount =
                    amount.trim().parse::<f64>().ok().filter(|amount| amount.is_finite()).ok_or_else(|| {
                        AgentError::Other(format!("{HOLD_APPROVAL_ABOVE} is `{amount}`, not an amount"))
                    })?;
                Ok(tools.hold_approval_above(amount))
            }
            _ => Ok(tools),
        }
    }

    /// Holds of transactions above `amount` wait for an analyst's approval (up to
    /// [`HOLD_APPROVAL_TIMEOUT`]; no answer means no hold, and the transaction goes to
    /// review); smaller ones are placed at once.
    ///
    /// ```
    /// use serde_json::json;
    /// use weir_fraud_detection::{FraudTools, ReferenceData};
    ///
    /// let tools = FraudTools::from_env(ReferenceData::sample())?.hold_approval_above(1000.0);
    /// let approval = tools.hold_approval.unwrap();
    /// assert!(approval.reason(&json!({"amount": 150.0, "reason": "gift cards"})).is_none());
    /// assert!(approval.reason(&json!({"amount": 1890.0, "reason": "watches"})).is_some());
    /// # Ok::<(), weir_agent::AgentError>(())
    /// ```
    pub fn hold_approval_above(mut self, amount: f64) -> Self {
        let approval = Approval::when(move |arguments| {
            let held = arguments["amount"].as_f64().unwrap_or(f64::INFINITY);
            (held > amount).then(|| format!("a hold after a transaction of {held}, above {amount}"))
        });
        self.hold_approval = Some(approval.timeout(HOLD_APPROVAL_TIMEOUT).on_timeout(Decision::Deny));
        self
    }

    /// Lookups over `data`, and the given `hold_card`.
    pub fn with_hold_card(data: ReferenceData, hold_card: Arc<dyn Tool>) -> Self {
        let data = Arc::new(data);
        let blocklist = data.clone();
        let check_blocklist = FunctionTool::new(CHECK_BLOCKLIST, move |check: BlocklistCheck| {
            let entry = blocklist.blocklist.iter().find(|b| b.merchant == check.merchant).cloned();
            async move {
                Ok::<_, String>(match entry {
                    Some(entry) => json!({"merchant": check.merchant, "blocked": true, "reason": entry.reason}),
                    None => json!({"merchant": check.merchant, "blocked": false}),
                })
            }
        });
        let lookup_merchant = FunctionTool::new(LOOKUP_MERCHANT, move |lookup: MerchantLookup| {
            let merchant = data.merchants.get(&lookup.merchant).cloned();
            async move { merchant.ok_or_else(|| format!("no merchant `{}` in the reference data", lookup.merchant)) }
        });
        FraudTools {
            check_blocklist: Arc::new(check_blocklist.with_read_only()),
            lookup_merchant: Arc::new(lookup_merchant.with_read_only()),
            hold_card,
            hold_approval: None,
        }
    }
}

fn hold_card_logged() -> Arc<dyn Tool> {
    let tool = FunctionTool::new(HOLD_CARD, |hold: HoldCard| async move {
        tracing::warn!(card = %hold.card_id, amount = hold.amount, reason = %hold.reason, "card held (no WEIR_HOLD_CARD_URL: log only)");
        Ok::<_, String>(json!({"card_id": hold.card_id, "held": true, "via": "log"}))
    });
    Arc::new(tool.with_at_most_once())
}

fn hold_card_webhook(url: &str) -> Result<Arc<dyn Tool>, AgentError> {
    let config = HttpToolConfig {
        name: HOLD_CARD.into(),
        description: "Holds the card: its payments are declined until an analyst releases it.".into(),
        url: url.to_string(),
        parameters: parameters_schema::<HoldCard>(),
        headers: Default::default(),
        timeout_ms: 10_000,
        retries: 0,
        at_most_once: true,
        read_only: false,
    };
    let tool = HttpTool::new(&config).map_err(|e| AgentError::Other(format!("WEIR_HOLD_CARD_URL: {e}")))?;
    Ok(Arc::new(tool))
}
