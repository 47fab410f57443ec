//! Tools that need a person's approval before they run: when, for how long, and what the
//! answer looks like (docs/waits.md, "Approvals").
//!
//! A call that needs approval waits durably: its arguments and the request are committed
//! with the batch, the request goes out as an output (`{"approval_request": ..}`, which
//! dispatch delivers), and the answer comes back as a signal of type [`APPROVAL_SIGNAL`]
//! whose correlation id is the request's id.

mod record;
mod token;

pub use record::{Recorded, record_answer};
pub use token::{ApprovalToken, TokenError};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_engine::Signal;

/// The signal type of approval answers.
pub const APPROVAL_SIGNAL: &str = "approval";

/// What a person decided, or what a timeout decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call runs.
    Approve,
    /// The call does not run; the model is told why.
    Deny,
}

/// Which calls of a tool need approval.
type Policy = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// When a tool's calls need approval, how long a request waits for an answer, and what a
/// timeout decides (deny, unless told otherwise).
///
/// ```
/// use std::time::Duration;
/// use weir_agent::approval::{Approval, Decision};
///
/// // A card hold above 1,000 needs a person; smaller ones go through at once.
/// let holds = Approval::when(|arguments| {
///     let amount = arguments["amount"].as_f64().unwrap_or(0.0);
///     (amount > 1_000.0).then(|| format!("hold of {amount} is above 1000"))
/// })
/// .timeout(Duration::from_secs(4 * 3600))
/// .on_timeout(Decision::Deny);
/// assert!(holds.reason(&serde_json::json!({"amount": 250})).is_none());
/// assert_eq!(holds.reason(&serde_json::json!({"amount": 5000})).unwrap(), "hold of 5000 is above 1000");
/// ```
#[derive(Clone)]
pub struct Approval {
    policy: Policy,
    timeout: Duration,
    on_timeout: Decision,
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval").field("timeout", &self.timeout).field("on_timeout", &self.on_timeout).finish()
    }
}

impl Approval {
    /// Every call needs approval.
    pub fn always() -> Self {
        Approval::when(|_| Some("the tool always needs approval".to_string()))
    }

    /// A call needs approval when `policy` gives a reason for it (shown to the approver).
    pub fn when(policy: impl Fn(&Value) -> Option<String> + Send + Sync + 'static) -> Self {
        Approval { policy: Arc::new(policy), timeout: Duration::from_secs(24 * 3600), on_timeout: Decision::Deny }
    }

    /// How long a request waits for an answer (a day unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What a request that got no answer in time decides (deny unless set).
    pub fn on_timeout(mut self, decision: Decision) -> Self {
        self.on_timeout = decision;
        self
    }

    /// Why a call with `arguments` needs approval; `None` if it does not.
    pub fn reason(&self, arguments: &Value) -> Option<String> {
        (self.policy)(arguments)
    }

    pub(crate) fn wait(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn default_decision(&self) -> Decision {
        self.on_timeout
    }
}

/// A call waiting for approval, as the agent commits it (under `approval_request`) for
/// dispatch to deliver. The engine adds `weir.wait`: the wait's type, correlation id and
/// expiry, from which a sink makes links that expire with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The request's id: the correlation id its answer must carry.
    pub id: String,
    /// The key whose event made the call.
    pub key: String,
    /// The tool.
    pub tool: String,
    /// The call's arguments, as the tool would receive them.
    pub arguments: Value,
    /// Why it needs approval.
    pub reason: String,
}

impl ApprovalRequest {
    /// The output that carries this request.
    pub fn to_output(&self) -> Value {
        serde_json::json!({ "approval_request": self })
    }

    /// The request an output carries, if it carries one.
    pub fn from_output(output: &Value) -> Option<ApprovalRequest> {
        serde_json::from_value(output.get("approval_request")?.clone()).ok()
    }
}

/// An answer to an approval request: what the approval signal carries.
///
/// ```
/// use weir_agent::approval::{ApprovalAnswer, Decision};
///
/// let answer = ApprovalAnswer::deny("oncall@example.com", "the node is draining already");
/// let signal = answer.signal("req-1");
/// assert_eq!((signal.kind.as_str(), signal.correlation_id.as_str()), ("approval", "req-1"));
/// assert_eq!(ApprovalAnswer::from_signal(&signal.payload).unwrap().decision, Decision::Deny);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    /// Approve or deny.
    pub decision: Decision,
    /// Who answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, in the approver's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApprovalAnswer {
    /// An approval by `by`.
    pub fn approve(by: impl Into<String>) -> Self {
        ApprovalAnswer { decision: Decision::Approve, by: Some(by.into()), reason: None }
    }

    /// A denial by `by`, for `reason`.
    pub fn deny(by: impl Into<String>, reason: impl Into<String>) -> Self {
        ApprovalAnswer { decision: Decision::Deny, by: Some(by.into()), reason: Some(reason.into()) }
    }

    /// The signal that answers request `id` with this answer.
    pub fn signal(&self, id: &str) -> Signal {
        Signal::new(APPROVAL_SIGNAL, id, serde_json::to_value(self).expect("an answer serializes"))
    }

    /// The answer a signal's payload carries, or what is wrong with it.
    pub fn from_signal(payload: &Value) -> Result<ApprovalAnswer, String> {
        serde_json::from_value(payload.clone()).map_err(|e| format!("the approval answer cannot be read: {e}"))
    }
}
