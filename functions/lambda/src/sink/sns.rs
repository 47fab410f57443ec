//! An SNS topic: `PublishBatch`, the delivery id in the message attribute `weir-delivery-id`
//! and, on FIFO topics, as `MessageDeduplicationId`.

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::{Delivery, fifo_group, invalid_request, refused};
use crate::aws::{AwsClients, failure};
use crate::error::Result;

/// Publishes outputs to a topic, ten per request.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsSink {
    /// SNS takes at most ten messages per batch.
    pub const MAX_BATCH: usize = 10;

    /// The topic `topic_arn`, called through `aws`.
    pub fn new(topic_arn: &str, aws: &AwsClients) -> Self {
        SnsSink { client: aws.sns(), topic_arn: topic_arn.to_string() }
    }

    /// Publishes the batch; a message SNS refuses fails it.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        let fifo = self.topic_arn.ends_with(".fifo");
        let mut request = self.client.publish_batch().topic_arn(&self.topic_arn);
        for (i, delivery) in batch.iter().enumerate() {
            let id = MessageAttributeValue::builder().data_type("String").string_value(&delivery.id).build();
            let mut entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(delivery.payload.to_string())
                .message_attributes("weir-delivery-id", id.map_err(|e| invalid_request("sns", "PublishBatch", &e))?);
            if fifo {
                entry = entry.message_deduplication_id(&delivery.id).message_group_id(fifo_group(&delivery.key));
            }
            request = request
                .publish_batch_request_entries(entry.build().map_err(|e| invalid_request("sns", "PublishBatch", &e))?);
        }
        let answer = request.send().await.map_err(|e| failure("sns", "PublishBatch", e))?;
        let refusals = answer.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault()));
        refused("sns", "PublishBatch", batch, refusals)
    }
}
