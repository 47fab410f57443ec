//! An SNS topic: `PublishBatch` (query protocol), the delivery id in the message attribute
//! `weir-delivery-id` and, on FIFO topics, as `MessageDeduplicationId`.

use super::{Delivery, fifo_group};
use crate::aws::AwsClient;
use crate::error::{Error, Result};

/// Publishes outputs to a topic, ten per request.
#[derive(Debug, Clone)]
pub struct SnsSink {
    aws: AwsClient,
    topic_arn: String,
}

impl SnsSink {
    /// SNS takes at most ten messages per batch.
    pub const MAX_BATCH: usize = 10;

    /// The topic `topic_arn`, called through `aws`.
    pub fn new(topic_arn: &str, aws: AwsClient) -> Self {
        SnsSink { aws, topic_arn: topic_arn.to_string() }
    }

    /// Publishes the batch; a message SNS refuses fails it.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        let fifo = self.topic_arn.ends_with(".fifo");
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "PublishBatch").append_pair("Version", "2010-03-31");
        form.append_pair("TopicArn", &self.topic_arn);
        for (i, delivery) in batch.iter().enumerate() {
            let entry = format!("PublishBatchRequestEntries.member.{}", i + 1);
            let attribute = format!("{entry}.MessageAttributes.entry.1");
            form.append_pair(&format!("{entry}.Id"), &i.to_string())
                .append_pair(&format!("{entry}.Message"), &delivery.payload.to_string())
                .append_pair(&format!("{attribute}.Name"), "weir-delivery-id")
                .append_pair(&format!("{attribute}.Value.DataType"), "String")
                .append_pair(&format!("{attribute}.Value.StringValue"), &delivery.id);
            if fifo {
                form.append_pair(&format!("{entry}.MessageDeduplicationId"), &delivery.id)
                    .append_pair(&format!("{entry}.MessageGroupId"), &fifo_group(&delivery.key));
            }
        }
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let endpoint = format!("{}/", self.aws.endpoint("sns"));
        let response = self.aws.post("sns", &endpoint, &headers, form.finish().into_bytes()).await?;
        let answer = String::from_utf8_lossy(&response.body);
        match failed_entries(&answer) {
            None => Ok(()),
            Some(failed) => Err(Error::Request { service: "sns", reason: format!("PublishBatch refused {failed}") }),
        }
    }
}

/// The `<Failed>` section of a `PublishBatch` answer, if it lists any entry.
fn failed_entries(answer: &str) -> Option<&str> {
    let start = answer.find("<Failed>")?;
    let end = answer[start..].find("</Failed>").map_or(answer.len(), |end| start + end);
    let failed = &answer[start..end];
    failed.contains("<member>").then_some(failed)
}
