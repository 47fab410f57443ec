//! An SQS queue: `SendMessageBatch`, the delivery id in the message attribute
//! `weir-delivery-id` and, on FIFO queues, as `MessageDeduplicationId`.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{Delivery, fifo_group, invalid_request, refused};
use crate::aws::{AwsClients, failure};
use crate::error::Result;

/// Sends outputs to a queue, ten per request.
#[derive(Debug, Clone)]
pub struct SqsSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsSink {
    /// SQS takes at most ten messages per batch.
    pub const MAX_BATCH: usize = 10;

    /// The queue at `queue_url`, called through `aws`. A queue outside AWS (an emulator's)
    /// is called at its URL's origin; AWS queues at the configured SQS endpoint.
    pub fn new(queue_url: &str, aws: &AwsClients) -> Self {
        let origin = url::Url::parse(queue_url).ok().filter(|url| {
            url.host_str().is_some_and(|host| !(host == "amazonaws.com" || host.ends_with(".amazonaws.com")))
        });
        let client = aws.sqs(origin.map(|url| url.origin().ascii_serialization()).as_deref());
        SqsSink { client, queue_url: queue_url.to_string() }
    }

    /// Sends the batch; a message SQS refuses fails it.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        let fifo = self.queue_url.ends_with(".fifo");
        let mut request = self.client.send_message_batch().queue_url(&self.queue_url);
        for (i, delivery) in batch.iter().enumerate() {
            let id = MessageAttributeValue::builder().data_type("String").string_value(&delivery.id).build();
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(delivery.payload.to_string())
                .message_attributes(
                    "weir-delivery-id",
                    id.map_err(|e| invalid_request("sqs", "SendMessageBatch", &e))?,
                );
            if fifo {
                entry = entry.message_deduplication_id(&delivery.id).message_group_id(fifo_group(&delivery.key));
            }
            request = request.entries(entry.build().map_err(|e| invalid_request("sqs", "SendMessageBatch", &e))?);
        }
        let answer = request.send().await.map_err(|e| failure("sqs", "SendMessageBatch", e))?;
        let refusals = answer.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault()));
        refused("sqs", "SendMessageBatch", batch, refusals)
    }
}
