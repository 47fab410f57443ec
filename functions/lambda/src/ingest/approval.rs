//! Approve and deny links (docs/waits.md, "Approvals"): `GET <ingest URL>?approval=<token>`.
//!
//! The token is checked (signed with `WEIR_APPROVAL_SECRET`, not expired, for this agent),
//! then its answer is recorded as a signal event of the waiting key, once per request
//! (`weir_agent::approval::record_answer`): a link followed again records nothing new, and
//! the other link of the pair is refused as answered already.

use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::approval::{ApprovalToken, Recorded, TokenError, record_answer};
use weir_engine::{Clock, ErrorKind, SystemClock};

use super::IngestFunction;
use super::http::answer as respond;

/// What approval links are checked with.
#[derive(Clone)]
pub(super) struct Approvals {
    secret: Option<Arc<[u8]>>,
    /// The agent the log feeds (`WEIR_AGENT`): a token for another is refused.
    agent: Option<String>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Approvals {
    pub(super) fn new(secret: Option<Vec<u8>>, agent: Option<String>) -> Self {
        Approvals { secret: secret.map(Into::into), agent, clock: Arc::new(SystemClock) }
    }
}

/// Follows an approval link: records its answer once, or says why not.
pub(super) async fn answer(function: &IngestFunction, method: &str, token: &str) -> Value {
    let approvals = &function.approvals;
    if !(method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("POST")) {
        return respond(405, json!({"error": format!("method {method} not allowed; follow the link (GET)")}));
    }
    let Some(secret) = &approvals.secret else {
        return respond(404, json!({"error": "approval links are not enabled here: WEIR_APPROVAL_SECRET is not set"}));
    };
    let token = match ApprovalToken::verify(token, secret, approvals.clock.now_ms()) {
        Ok(token) => token,
        Err(refused) => {
            let status = match refused {
                TokenError::Expired { .. } => 410,
                TokenError::Forged => 403,
                TokenError::Malformed(_) | TokenError::WeakSecret(_) => 400,
            };
            tracing::warn!(%refused, "approval link refused");
            return respond(status, json!({"error": refused.to_string()}));
        }
    };
    if let Some(agent) = approvals.agent.as_deref().filter(|agent| *agent != token.agent) {
        let error = format!("the link answers agent `{}`; this ingest feeds `{agent}`", token.agent);
        return respond(403, json!({"error": error}));
    }
    let answer = token.answer("approval link");
    match record_answer(function.log(), &token.agent, &token.key, &token.id, &answer).await {
        Ok(Recorded::Answer(decision)) => {
            function.note_appended(function.log().partition_of(&token.key), 1);
            respond(200, json!({"request": token.id, "key": token.key, "decision": decision}))
        }
        Ok(Recorded::AnsweredAlready(earlier)) => {
            let error = format!("request {} was answered already: {}", token.id, json!(earlier));
            respond(409, json!({"error": error}))
        }
        Err(e) => {
            tracing::error!(request = token.id, error = %e, "could not record an approval");
            let status = if e.kind() == ErrorKind::Retryable { 503 } else { 500 };
            respond(status, json!({"error": format!("could not store the answer: {e}")}))
        }
    }
}
