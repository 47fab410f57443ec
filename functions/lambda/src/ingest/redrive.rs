//! A direct invocation that requeues an agent's dead letters into the log, each exactly once
//! (`weir dead-letters --requeue` on AWS):
//!
//! ```json
//! {"requeue_dead_letters": {"agent": "review-analysis", "reason": "rejected"}}
//! ```
//!
//! Choices as the command's: `partition`, `key`, `reason` (text the reason contains),
//! `from` and `to` (`SEGMENT:INDEX`), or `"all": true` for every dead letter.

use serde::Deserialize;
use serde_json::{Value, json};
use weir_engine::{DeadLetterFilter, Position};

use super::IngestFunction;
use crate::error::{Error, Result};

/// The request's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequeueRequest {
    agent: String,
    #[serde(default)]
    all: bool,
    partition: Option<u32>,
    key: Option<String>,
    reason: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Requeues what `request` chooses; answers `{"requeued": n, "dead_letters": [...]}`.
pub(super) async fn requeue(function: &IngestFunction, request: RequeueRequest) -> Result<Value> {
    let position = |text: Option<String>| text.map(|t| t.parse::<Position>()).transpose();
    let filter = DeadLetterFilter {
        partition: request.partition,
        key: request.key,
        reason: request.reason,
        from: position(request.from)?,
        to: position(request.to)?,
    };
    if !request.all && filter == DeadLetterFilter::default() {
        return Err(Error::Event(
            "requeue_dead_letters needs a choice: \"all\": true, or partition, key, reason, from or to".into(),
        ));
    }
    let requeued = weir_engine::requeue_dead_letters(function.log(), &request.agent, &filter).await?;
    let letters: Vec<Value> = requeued
        .iter()
        .map(|d| json!({"partition": d.partition, "event": d.letter.event.to_string(), "key": d.letter.key}))
        .collect();
    Ok(json!({"requeued": letters.len(), "dead_letters": letters}))
}
