//! S3 object-created notifications: the object is read as JSON lines and appended under
//! its bucket, key and version (or ETag); lines that are not records are reported.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use serde_json::{Value, json};

use super::IngestFunction;
use crate::error::{Error, Result};

/// Appends each created object. Refused lines are logged and listed in the answer; a store
/// error fails the invocation, which Lambda retries (the append is idempotent).
pub(super) async fn ingest(function: &IngestFunction, event: S3Event) -> Result<Value> {
    let mut objects = Vec::new();
    for record in event.records {
        if !record.event_name.as_deref().unwrap_or_default().starts_with("ObjectCreated") {
            continue;
        }
        objects.push(ingest_object(function, record).await?);
    }
    Ok(json!({ "objects": objects }))
}

async fn ingest_object(function: &IngestFunction, record: S3EventRecord) -> Result<Value> {
    let bucket = record.s3.bucket.name.ok_or_else(|| Error::Event("an S3 record without a bucket name".into()))?;
    let key = decode_key(&record.s3.object.key.unwrap_or_default())?;
    let name = format!("s3://{bucket}/{key}");
    let version = record.s3.object.version_id.or(record.s3.object.e_tag).filter(|v| !v.is_empty());
    let version =
        version.ok_or_else(|| Error::Event(format!("{name}: the notification has no version id nor ETag")))?;
    let storage = (function.open_bucket)(&bucket)?;
    let Some(bytes) = storage.get(&storage.path(&key)).await? else {
        // Deleted since: retrying cannot help.
        tracing::warn!(object = %name, "the notified object no longer exists");
        return Ok(
            json!({"object": name, "appended": 0, "refused": [{"record": "the object", "reason": "not found"}]}),
        );
    };
    let text = String::from_utf8_lossy(&bytes);
    let (events, refused) = function.records.parse_lines(&text);
    function.append(&format!("s3:{bucket}/{key}@{version}"), &events).await?;
    function.refused(refused.len());
    for line in &refused {
        tracing::warn!(object = %name, record = %line.record, reason = %line.reason, "line refused");
    }
    let refused: Vec<Value> = refused.iter().map(|r| json!({"record": r.record, "reason": r.reason})).collect();
    Ok(json!({"object": name, "appended": events.len(), "refused": refused}))
}

/// Notification keys are URL-encoded, spaces as `+`.
fn decode_key(key: &str) -> Result<String> {
    let key = key.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&key).decode_utf8();
    decoded.map(|k| k.into_owned()).map_err(|e| Error::Event(format!("object key `{key}` is not UTF-8: {e}")))
}
