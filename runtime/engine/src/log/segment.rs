//! Log segments: one immutable Parquet file per appended batch.

use std::sync::Arc;

use arrow_array::{Array, BinaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// One event as producers hand it to the log: a key and the raw payload bytes.
///
/// The payload is kept unparsed so that an undecodable event is stored and later
/// dead-lettered with its reason, not refused at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// The key: events of one key are processed in order, by one partition.
    pub key: String,
    /// The producer's bytes, JSON by convention.
    pub payload: Bytes,
}

impl LogEvent {
    /// An event with a JSON payload.
    pub fn json(key: impl Into<String>, payload: &serde_json::Value) -> Self {
        LogEvent { key: key.into(), payload: Bytes::from(payload.to_string()) }
    }
}

/// A decoded segment: the producer's batch id and its events in order.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The batch id the producer appended with.
    pub batch_id: String,
    /// The events, in append order.
    pub events: Vec<LogEvent>,
}

const BATCH_ID_KEY: &str = "weir.batch_id";

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("payload", DataType::Binary, false),
    ]))
}

/// Encodes a batch as a Parquet segment.
pub fn encode(batch_id: &str, events: &[LogEvent]) -> Result<Bytes, parquet::errors::ParquetError> {
    let keys = StringArray::from_iter_values(events.iter().map(|e| e.key.as_str()));
    let payloads = BinaryArray::from_iter_values(events.iter().map(|e| e.payload.as_ref()));
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(keys), Arc::new(payloads)])?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(BATCH_ID_KEY.into(), batch_id.to_string())]))
        .build();
    let mut buffer = Vec::with_capacity(events.iter().map(|e| e.key.len() + e.payload.len()).sum::<usize>() / 2 + 1024);
    let mut writer = ArrowWriter::try_new(&mut buffer, schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Decodes a Parquet segment.
pub fn decode(bytes: Bytes) -> Result<Segment, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let batch_id = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == BATCH_ID_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or("no weir.batch_id metadata")?;
    let mut events = Vec::new();
    for batch in builder.build().map_err(|e| e.to_string())? {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| batch.column_by_name(name).ok_or_else(|| format!("no `{name}` column"));
        let keys = column("key")?.as_any().downcast_ref::<StringArray>().ok_or("`key` is not utf8")?;
        let payloads = column("payload")?.as_any().downcast_ref::<BinaryArray>().ok_or("`payload` is not binary")?;
        if keys.null_count() > 0 || payloads.null_count() > 0 {
            return Err("null key or payload".into());
        }
        events.extend(keys.iter().zip(payloads.iter()).map(|(k, p)| LogEvent {
            key: k.unwrap_or_default().to_string(),
            payload: Bytes::copy_from_slice(p.unwrap_or_default()),
        }));
    }
    Ok(Segment { batch_id, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_batch_id_order_and_raw_bytes() {
        let events = vec![
            LogEvent::json("a", &serde_json::json!({"n": 1})),
            LogEvent { key: "b".into(), payload: Bytes::from_static(b"\xff not json") },
        ];
        let segment = decode(encode("batch-1", &events).unwrap()).unwrap();
        assert_eq!(segment.batch_id, "batch-1");
        assert_eq!(segment.events, events);
    }
}
