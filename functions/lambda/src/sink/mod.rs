//! Where dispatch delivers committed outputs: a webhook, an SQS queue, an SNS topic or
//! another agent's event log. Every sink has the same shape: a largest batch, and
//! `deliver`, which either delivers a whole batch or fails (and is retried with the same
//! delivery ids).

mod log;
mod sns;
mod sqs;
mod webhook;

use serde_json::Value;

pub use log::LogSink;
pub use sns::SnsSink;
pub use sqs::SqsSink;
pub use webhook::WebhookSink;

use weir_engine::ErrorKind;

use crate::aws::AwsClients;
use crate::error::{Error, Result};

/// A sink as `WEIR_SINK` names it.
///
/// ```
/// use weir_functions::sink::SinkTarget;
/// let sqs = SinkTarget::parse("sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/out.fifo").unwrap();
/// assert!(matches!(sqs, SinkTarget::Sqs { .. }));
/// assert!(SinkTarget::parse("ftp://example.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// `https://…` (or `http://…`, for local receivers): POST each output.
    Webhook { url: String },
    /// `sqs:<queue-url>`: `SendMessageBatch`.
    Sqs { queue_url: String },
    /// `sns:<topic-arn>`: `PublishBatch`.
    Sns { topic_arn: String },
    /// `weir:<store-url>`: append to the event log in that store.
    Log { store_url: String },
}

impl SinkTarget {
    /// Parses a `WEIR_SINK` value; the error says what was expected.
    pub fn parse(sink: &str) -> Result<SinkTarget, String> {
        let target = if sink.starts_with("https://") || sink.starts_with("http://") {
            url::Url::parse(sink).map_err(|e| format!("is not a valid URL: {e}"))?;
            SinkTarget::Webhook { url: sink.to_string() }
        } else if let Some(queue_url) = sink.strip_prefix("sqs:") {
            url::Url::parse(queue_url).map_err(|e| format!("names an invalid queue URL: {e}"))?;
            SinkTarget::Sqs { queue_url: queue_url.to_string() }
        } else if let Some(topic_arn) = sink.strip_prefix("sns:") {
            if !topic_arn.starts_with("arn:") {
                return Err(format!("names `{topic_arn}`, not a topic ARN"));
            }
            SinkTarget::Sns { topic_arn: topic_arn.to_string() }
        } else if let Some(store_url) = sink.strip_prefix("weir:") {
            SinkTarget::Log { store_url: store_url.to_string() }
        } else {
            return Err("is none of `https://…`, `sqs:<queue-url>`, `sns:<topic-arn>`, `weir:<store-url>`".into());
        };
        Ok(target)
    }

    /// A stable name for this sink's cursors: 16 hex digits of the hash of its address, so
    /// that each sink of an agent has its own progress.
    pub fn id(&self) -> String {
        let address = match self {
            SinkTarget::Webhook { url } => url.as_str(),
            SinkTarget::Sqs { queue_url } => queue_url,
            SinkTarget::Sns { topic_arn } => topic_arn,
            SinkTarget::Log { store_url } => store_url,
        };
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(address.as_bytes()))
    }
}

/// One output to deliver, with the id that names it at every attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `<agent>-p<partition:05>-<commit seq:020>-<output index:06>`: stable across
    /// redeliveries, ordered like the partition's outputs.
    pub id: String,
    /// The key of the input event the output came from.
    pub key: String,
    /// The output, as the agent emitted it.
    pub payload: Value,
}

/// An open sink.
#[derive(Debug)]
pub enum Sink {
    Webhook(WebhookSink),
    /// An SQS queue.
    Sqs(SqsSink),
    /// An SNS topic.
    Sns(SnsSink),
    /// Another agent's event log.
    Log(LogSink),
}

impl Sink {
    /// Opens `target`; `aws` is called only for SQS and SNS. A `weir:` log is created with
    /// `partitions` partitions if absent.
    pub async fn open(target: &SinkTarget, partitions: u32, aws: impl AsyncFnOnce() -> AwsClients) -> Result<Sink> {
        Ok(match target {
            SinkTarget::Webhook { url } => Sink::Webhook(WebhookSink::new(url)),
            SinkTarget::Sqs { queue_url } => Sink::Sqs(SqsSink::new(queue_url, &aws().await)),
            SinkTarget::Sns { topic_arn } => Sink::Sns(SnsSink::new(topic_arn, &aws().await)),
            SinkTarget::Log { store_url } => Sink::Log(LogSink::open(store_url, partitions).await?),
        })
    }

    /// The most outputs one [`deliver`](Self::deliver) takes.
    pub fn max_batch(&self) -> usize {
        match self {
            Sink::Webhook(_) => WebhookSink::MAX_BATCH,
            Sink::Sqs(_) => SqsSink::MAX_BATCH,
            Sink::Sns(_) => SnsSink::MAX_BATCH,
            Sink::Log(_) => LogSink::MAX_BATCH,
        }
    }

    /// Delivers a batch; an error means some may have been delivered, and all will be
    /// again, with the same ids.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        match self {
            Sink::Webhook(sink) => sink.deliver(batch).await,
            Sink::Sqs(sink) => sink.deliver(batch).await,
            Sink::Sns(sink) => sink.deliver(batch).await,
            Sink::Log(sink) => sink.deliver(batch).await,
        }
    }
}

/// The message group of a FIFO queue or topic: the key, which keeps each key's outputs in
/// order, or its hash if the key is not a valid group id (up to 128 printable ASCII).
fn fifo_group(key: &str) -> String {
    let valid = !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic());
    match valid {
        true => key.to_string(),
        false => format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())),
    }
}

/// A request the SDK would not build: a field this code sets is missing.
fn invalid_request(service: &'static str, operation: &str, error: &dyn std::fmt::Display) -> Error {
    Error::Request { service, reason: format!("building {operation}: {error}") }
}

/// The outcome of a batch request whose entries `refusals` lists as refused, each with its
/// entry id (the index in `batch`), error code, message and whether the sender was at fault:
/// none refused is success; otherwise the error names every refused delivery, and is to be
/// fixed (not retried) if any refusal was the sender's fault.
fn refused<'a>(
    service: &'static str,
    operation: &'static str,
    batch: &[Delivery],
    refusals: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>, bool)>,
) -> Result<()> {
    let mut sender_fault = false;
    let mut reasons = Vec::new();
    for (entry, code, message, by_sender) in refusals {
        sender_fault |= by_sender;
        let delivery = entry.parse::<usize>().ok().and_then(|i| batch.get(i)).map_or(entry, |d| d.id.as_str());
        reasons.push(format!("delivery {delivery}: {code} {}", message.unwrap_or_default()).trim_end().to_string());
    }
    if reasons.is_empty() {
        return Ok(());
    }
    let kind = if sender_fault { ErrorKind::InvalidInput } else { ErrorKind::Retryable };
    Err(Error::Aws { service, operation, kind, message: format!("refused {}", reasons.join("; ")) })
}
