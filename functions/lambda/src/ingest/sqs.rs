//! SQS events: each message body holds records (one object, an array or JSON lines) and
//! is appended under its message id; failures go back as `batchItemFailures`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use weir_engine::TraceParent;

use super::{IngestFunction, SourceRecord, append_records, with_trace_parent};

/// Appends each message; those not stored are reported for redelivery (and, after
/// `maxReceiveCount`, the queue's dead-letter queue). Messages of a FIFO group keep their
/// order; those of a standard queue are appended concurrently.
pub(super) async fn ingest(function: &IngestFunction, event: SqsEvent) -> Value {
    let records = event
        .records
        .into_iter()
        .filter_map(|message| {
            let Some(id) = message.message_id else {
                tracing::warn!("an SQS message without a message id: cannot be stored idempotently");
                return None;
            };
            let group = message.attributes.get("MessageGroupId").cloned().unwrap_or_else(|| id.clone());
            // The sender's X-Ray context, which SQS keeps with the message.
            let parent = message.attributes.get("AWSTraceHeader").and_then(|h| TraceParent::from_xray(h));
            let body = message.body.unwrap_or_default();
            let events = function.records.parse_body(body.as_bytes()).map_err(|r| r.to_string());
            let events = events.map(|events| with_trace_parent(events, parent));
            Some(SourceRecord { batch_id: format!("sqs:{id}"), group, events, id })
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    for (id, _) in append_records(function, records).await {
        response.add_failure(id);
    }
    serde_json::to_value(response).expect("a response serializes")
}
