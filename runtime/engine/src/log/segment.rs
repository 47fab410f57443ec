//! Log segments: one immutable Parquet file per appended batch.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch, StringArray};
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
    /// The trace context of the request that brought it, as a W3C `traceparent`
    /// ([`TraceParent`](crate::TraceParent)), so that its spans join the producer's trace.
    pub trace_parent: Option<String>,
    /// The `tracestate` that came with it, if any ([`TraceParent::state`](crate::TraceParent)).
    pub trace_state: Option<String>,
}

impl LogEvent {
    /// An event with these bytes and no trace context.
    pub fn new(key: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        LogEvent { key: key.into(), payload: payload.into(), trace_parent: None, trace_state: None }
    }

    /// An event with a JSON payload.
    pub fn json(key: impl Into<String>, payload: &serde_json::Value) -> Self {
        LogEvent::new(key, Bytes::from(payload.to_string()))
    }

    /// The same event, carrying the trace context `parent`.
    pub fn with_trace_parent(mut self, parent: Option<crate::TraceParent>) -> Self {
        self.trace_parent = parent.as_ref().map(|p| p.to_string());
        self.trace_state = parent.and_then(|p| p.state);
        self
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
/// The optional columns of the events' trace contexts.
const TRACE_PARENT: &str = "trace_parent";
const TRACE_STATE: &str = "trace_state";

/// The columns of a segment: `trace_parent` and `trace_state` only when some event carries
/// one, so that a batch without trace context is stored as before they existed.
fn schema(with_trace_parent: bool, with_trace_state: bool) -> Arc<Schema> {
    let mut fields = vec![Field::new("key", DataType::Utf8, false), Field::new("payload", DataType::Binary, false)];
    if with_trace_parent {
        fields.push(Field::new(TRACE_PARENT, DataType::Utf8, true));
    }
    if with_trace_state {
        fields.push(Field::new(TRACE_STATE, DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// Encodes a batch as a Parquet segment.
pub fn encode(batch_id: &str, events: &[LogEvent]) -> Result<Bytes, parquet::errors::ParquetError> {
    let keys = StringArray::from_iter_values(events.iter().map(|e| e.key.as_str()));
    let payloads = BinaryArray::from_iter_values(events.iter().map(|e| e.payload.as_ref()));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(payloads)];
    let with_trace_parent = events.iter().any(|e| e.trace_parent.is_some());
    if with_trace_parent {
        columns.push(Arc::new(StringArray::from_iter(events.iter().map(|e| e.trace_parent.as_deref()))));
    }
    let with_trace_state = events.iter().any(|e| e.trace_state.is_some());
    if with_trace_state {
        columns.push(Arc::new(StringArray::from_iter(events.iter().map(|e| e.trace_state.as_deref()))));
    }
    let schema = schema(with_trace_parent, with_trace_state);
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(BATCH_ID_KEY.into(), batch_id.to_string())]))
        .build();
    let mut buffer = Vec::with_capacity(events.iter().map(|e| e.key.len() + e.payload.len()).sum::<usize>() / 2 + 1024);
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(props))?;
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
        // Absent from segments written before it existed, and from batches without context.
        let optional = |name: &str| match batch.column_by_name(name) {
            Some(column) => {
                column.as_any().downcast_ref::<StringArray>().map(Some).ok_or(format!("`{name}` is not utf8"))
            }
            None => Ok(None),
        };
        let (trace_parents, trace_states) = (optional(TRACE_PARENT)?, optional(TRACE_STATE)?);
        let value = |column: Option<&StringArray>, i: usize| {
            column.filter(|column| column.is_valid(i)).map(|column| column.value(i).to_string())
        };
        events.extend(keys.iter().zip(payloads.iter()).enumerate().map(|(i, (k, p))| LogEvent {
            key: k.unwrap_or_default().to_string(),
            payload: Bytes::copy_from_slice(p.unwrap_or_default()),
            trace_parent: value(trace_parents, i),
            trace_state: value(trace_states, i),
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
            LogEvent::new("b", Bytes::from_static(b"\xff not json")),
        ];
        let segment = decode(encode("batch-1", &events).unwrap()).unwrap();
        assert_eq!(segment.batch_id, "batch-1");
        assert_eq!(segment.events, events);
    }

    #[test]
    fn trace_parents_round_trip_and_a_batch_without_them_has_no_such_column() {
        let parent: Option<crate::TraceParent> = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().ok();
        let stated = parent.clone().map(|p| p.with_state(Some("rojo=00f067aa0ba902b7")));
        let events = vec![
            LogEvent::new("a", "{}").with_trace_parent(parent),
            LogEvent::new("b", "{}"),
            LogEvent::new("c", "{}").with_trace_parent(stated),
        ];
        let segment = decode(encode("batch-1", &events).unwrap()).unwrap();
        assert_eq!(segment.events, events);
        assert_eq!(segment.events[2].trace_state.as_deref(), Some("rojo=00f067aa0ba902b7"));
        assert_eq!(segment.events[0].trace_state, None);
        assert_eq!(
            segment.events[0].trace_parent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );

        let plain = encode("batch-2", &events[1..2]).unwrap();
        let columns = ParquetRecordBatchReaderBuilder::try_new(plain.clone()).unwrap().schema().fields().len();
        assert_eq!(columns, 2, "the format of a batch without context is unchanged");
        assert_eq!(decode(plain).unwrap().events[0].trace_parent, None);
    }
}
