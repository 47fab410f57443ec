//! Approval requests as dispatch delivers them (docs/waits.md, "Approvals"): each
//! `{"approval_request": ..}` output gets one-time signed approve and deny links to the HTTP
//! ingest, and a Slack-compatible body (`text` and `blocks` with two link buttons), so that the
//! same delivery suits a webhook receiver and a Slack incoming webhook.

use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::approval::{ApprovalRequest, ApprovalToken, Decision};
use weir_engine::NOTICE_FIELD;

use crate::error::{Error, Result};

/// Where approve and deny links point, and the secret they are signed with.
#[derive(Clone)]
pub struct ApprovalLinks {
    /// The HTTP ingest's URL (`WEIR_APPROVAL_URL`).
    base: url::Url,
    secret: Arc<[u8]>,
}

impl std::fmt::Debug for ApprovalLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalLinks").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl ApprovalLinks {
    /// Links to the ingest at `base`, signed with `secret` (the ingest's `WEIR_APPROVAL_SECRET`).
    pub fn new(base: &str, secret: Vec<u8>) -> Result<Self> {
        let base = url::Url::parse(base)
            .map_err(|e| Error::config(crate::config::APPROVAL_URL, format!("is not a URL: {e}")))?;
        // The signing checks the secret's length; a short one fails here rather than later.
        ApprovalToken::new("", "", "", Decision::Deny, 0)
            .sign(&secret)
            .map_err(|e| Error::config(crate::config::APPROVAL_SECRET, e))?;
        Ok(ApprovalLinks { base, secret: secret.into() })
    }

    /// The approve and deny links of request `id` of `key` in `agent`, expiring at
    /// `expires_at_ms`.
    pub fn links(&self, agent: &str, key: &str, id: &str, expires_at_ms: u64) -> (String, String) {
        let link = |decision| {
            let token = ApprovalToken::new(agent, key, id, decision, expires_at_ms);
            let mut url = self.base.clone();
            let signed = token.sign(&self.secret).expect("the secret was checked when the links were made");
            url.query_pairs_mut().append_pair("approval", &signed);
            url.to_string()
        };
        (link(Decision::Approve), link(Decision::Deny))
    }

    /// `payload` with links and a Slack-compatible body if it is an approval request of
    /// `agent`; any other output as it is.
    ///
    /// ```
    /// use serde_json::json;
    /// use weir_functions::dispatch::ApprovalLinks;
    ///
    /// let links = ApprovalLinks::new("https://ingest.example.com/", b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
    /// let request = json!({
    ///     "approval_request": {"id": "req-1", "key": "job-7", "tool": "restart", "arguments": {"node": "prod-3"}, "reason": "production"},
    ///     "weir.wait": {"type": "approval", "correlation_id": "req-1", "expires_at_ms": 1_800_000_000_000u64}
    /// });
    /// let dressed = links.dress("ops", request);
    /// assert!(dressed["approve_url"].as_str().unwrap().starts_with("https://ingest.example.com/?approval="));
    /// assert_eq!(dressed["blocks"][1]["elements"][1]["url"], dressed["deny_url"]);
    /// assert_eq!(links.dress("ops", json!({"score": 3})), json!({"score": 3}));
    /// ```
    pub fn dress(&self, agent: &str, mut payload: Value) -> Value {
        let Some(request) = ApprovalRequest::from_output(&payload) else { return payload };
        let expires_at_ms = payload[NOTICE_FIELD]["expires_at_ms"].as_u64().unwrap_or(u64::MAX);
        let (approve, deny) = self.links(agent, &request.key, &request.id, expires_at_ms);
        let text = format!(
            "*{agent}* asks to run `{}` for key `{}`: {}\narguments: `{}`",
            request.tool, request.key, request.reason, request.arguments
        );
        let button = |label: &str, style: &str, url: &str| json!({"type": "button", "text": {"type": "plain_text", "text": label}, "style": style, "url": url});
        let fields = payload.as_object_mut().expect("an approval request is an object");
        fields.insert("approve_url".into(), json!(approve));
        fields.insert("deny_url".into(), json!(deny));
        fields.insert("text".into(), json!(text));
        fields.insert(
            "blocks".into(),
            json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "elements": [button("Approve", "primary", &approve), button("Deny", "danger", &deny)]}
            ]),
        );
        payload
    }
}
