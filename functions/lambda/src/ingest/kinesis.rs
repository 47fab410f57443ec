//! Kinesis events: each record's data holds records and is appended under its stream,
//! shard and sequence number; failures go back as `batchItemFailures`, so Lambda retries
//! from the first one (the event source mapping needs `ReportBatchItemFailures`).

use aws_lambda_events::kinesis::KinesisEvent;
use aws_lambda_events::streams::KinesisEventResponse;
use serde_json::Value;

use super::{IngestFunction, SourceRecord, append_records};

/// Appends each record, those of one partition key in order.
pub(super) async fn ingest(function: &IngestFunction, event: KinesisEvent) -> Value {
    let records = event
        .records
        .into_iter()
        .map(|record| {
            let stream = record.event_source_arn.unwrap_or_default();
            let sequence = record.kinesis.sequence_number;
            // The event id is `shardId-…:sequence`: sequence numbers are unique per shard.
            let within_stream = record.event_id.unwrap_or_else(|| sequence.clone());
            SourceRecord {
                batch_id: format!("kinesis:{stream}/{within_stream}"),
                group: record.kinesis.partition_key,
                events: function.records.parse_body(&record.kinesis.data.0).map_err(|r| r.to_string()),
                id: sequence,
            }
        })
        .collect();
    let mut response = KinesisEventResponse::default();
    for (sequence, _) in append_records(function, records).await {
        response.add_failure(sequence);
    }
    serde_json::to_value(response).expect("a response serializes")
}
