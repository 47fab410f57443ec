//! One-time signed answers to approval requests: the tokens of approve and deny links.
//!
//! A token names the agent, the key, the request and the decision, and when it expires; it is
//! signed with HMAC-SHA-256 under a secret that only the signer (dispatch, making the links)
//! and the checker (the HTTP ingest, following them) share. One-time: the answer it makes is
//! appended under a batch id of the request, so the log stores one answer per request,
//! and the engine refuses any answer to a request that no longer waits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{ApprovalAnswer, Decision};

/// What an approve or deny link carries, signed.
///
/// ```
/// use weir_agent::approval::{ApprovalToken, Decision, TokenError};
///
/// let secret = b"a secret of at least 32 bytes, from config";
/// let token = ApprovalToken::new("ops", "job-7", "req-1", Decision::Approve, 2_000);
/// let link = token.sign(secret).unwrap();
/// assert_eq!(ApprovalToken::verify(&link, secret, 1_000).unwrap(), token);
/// assert!(matches!(ApprovalToken::verify(&link, secret, 2_001), Err(TokenError::Expired { .. })));
/// assert!(matches!(ApprovalToken::verify(&link, b"another secret of at least 32 bytes!", 1_000), Err(TokenError::Forged)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalToken {
    /// The agent whose call waits.
    pub agent: String,
    /// The key whose event made the call: where the answer goes in the log.
    pub key: String,
    /// The request's id: the answer's correlation id.
    pub id: String,
    /// What following the link decides.
    pub decision: Decision,
    /// Until when the link may be followed, milliseconds since the epoch: the wait's expiry.
    pub expires_at_ms: u64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token: not two base64 parts, or its claims do not parse.
    #[error("not an approval token: {0}")]
    Malformed(String),
    /// Its signature is not the secret's: altered, or made with another secret.
    #[error("the approval token's signature does not match: it was altered or not made here")]
    Forged,
    /// Its time has passed: the request timed out and its default decision applies.
    #[error("the approval token expired at {expires_at_ms} ms (now {now_ms} ms)")]
    Expired {
        /// When it expired.
        expires_at_ms: u64,
        /// When it was followed.
        now_ms: u64,
    },
    /// The secret is too short to sign with.
    #[error("the approval secret has {0} bytes; use at least 32")]
    WeakSecret(usize),
}

/// The fewest bytes a signing secret may have: HMAC-SHA-256's output size.
const MIN_SECRET_BYTES: usize = 32;

impl ApprovalToken {
    /// A token that answers request `id` of `key` in `agent` with `decision`.
    pub fn new(agent: &str, key: &str, id: &str, decision: Decision, expires_at_ms: u64) -> Self {
        ApprovalToken { agent: agent.into(), key: key.into(), id: id.into(), decision, expires_at_ms }
    }

    /// The token as a link's value: `<claims>.<signature>`, both base64url.
    pub fn sign(&self, secret: &[u8]) -> Result<String, TokenError> {
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a token serializes"));
        let signature = URL_SAFE_NO_PAD.encode(mac(secret, &claims)?.finalize().into_bytes());
        Ok(format!("{claims}.{signature}"))
    }

    /// The token a link carries, if `secret` signed it and it has not expired at `now_ms`.
    pub fn verify(token: &str, secret: &[u8], now_ms: u64) -> Result<ApprovalToken, TokenError> {
        let (claims, signature) =
            token.split_once('.').ok_or_else(|| TokenError::Malformed("no `.` between claims and signature".into()))?;
        let signature =
            URL_SAFE_NO_PAD.decode(signature).map_err(|e| TokenError::Malformed(format!("signature: {e}")))?;
        mac(secret, claims)?.verify_slice(&signature).map_err(|_| TokenError::Forged)?;
        let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        let token: ApprovalToken =
            serde_json::from_slice(&claims).map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        if now_ms > token.expires_at_ms {
            return Err(TokenError::Expired { expires_at_ms: token.expires_at_ms, now_ms });
        }
        Ok(token)
    }

    /// The answer following the link gives, by whom.
    pub fn answer(&self, by: &str) -> ApprovalAnswer {
        ApprovalAnswer { decision: self.decision, by: Some(by.to_string()), reason: None }
    }
}

fn mac(secret: &[u8], claims: &str) -> Result<Hmac<Sha256>, TokenError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(TokenError::WeakSecret(secret.len()));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(claims.as_bytes());
    Ok(mac)
}
