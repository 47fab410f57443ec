//! An SQS queue: `SendMessageBatch` (JSON protocol), the delivery id in the message
//! attribute `weir-delivery-id` and, on FIFO queues, as `MessageDeduplicationId`.

use serde_json::{Value, json};

use super::{Delivery, fifo_group};
use crate::aws::AwsClient;
use crate::error::{Error, Result};

/// Sends outputs to a queue, ten per request.
#[derive(Debug, Clone)]
pub struct SqsSink {
    aws: AwsClient,
    queue_url: String,
    /// The queue's service endpoint: the queue URL's origin.
    endpoint: String,
}

impl SqsSink {
    /// SQS takes at most ten messages per batch.
    pub const MAX_BATCH: usize = 10;

    /// The queue at `queue_url`, called through `aws`.
    pub fn new(queue_url: &str, aws: AwsClient) -> Self {
        let endpoint = match url::Url::parse(queue_url) {
            Ok(url) => url.origin().ascii_serialization(),
            Err(_) => aws.endpoint("sqs"),
        };
        SqsSink { aws, queue_url: queue_url.to_string(), endpoint }
    }

    /// Sends the batch; a message SQS refuses fails it.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        let fifo = self.queue_url.ends_with(".fifo");
        let entries: Vec<Value> = batch
            .iter()
            .enumerate()
            .map(|(i, delivery)| {
                let mut entry = json!({
                    "Id": i.to_string(),
                    "MessageBody": delivery.payload.to_string(),
                    "MessageAttributes": {"weir-delivery-id": {"DataType": "String", "StringValue": delivery.id}},
                });
                if fifo {
                    entry["MessageDeduplicationId"] = json!(delivery.id);
                    entry["MessageGroupId"] = json!(fifo_group(&delivery.key));
                }
                entry
            })
            .collect();
        let body = json!({"QueueUrl": self.queue_url, "Entries": entries});
        let headers = [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", "AmazonSQS.SendMessageBatch")];
        let endpoint = format!("{}/", self.endpoint);
        let response = self.aws.post("sqs", &endpoint, &headers, body.to_string().into_bytes()).await?;
        let answer: Value = serde_json::from_slice(&response.body).map_err(|e| Error::Request {
            service: "sqs",
            reason: format!("unreadable SendMessageBatch answer: {e}"),
        })?;
        match answer["Failed"].as_array().and_then(|failed| failed.first()) {
            None => Ok(()),
            Some(failed) => {
                Err(Error::Request { service: "sqs", reason: format!("SendMessageBatch refused {failed}") })
            }
        }
    }
}
