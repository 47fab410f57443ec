//! Committed outputs and dead letters: Parquet files that DuckDB, Athena or Spark read directly.

use std::sync::Arc;

use arrow_array::{Array, BinaryArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use crate::committed::CommittedOutputs;
use crate::position::Position;

/// An event an agent emitted, as committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The key of the input event.
    pub key: String,
    /// The input event's position.
    pub event: Position,
    /// The output's index among the input event's outputs.
    pub index: u32,
    /// The output, JSON.
    pub payload: serde_json::Value,
}

/// An input event that could not be processed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The key of the input event.
    pub key: String,
    /// The input event's position.
    pub event: Position,
    /// The producer's bytes.
    pub payload: Bytes,
    /// What went wrong.
    pub reason: String,
    /// How many times its actions ran.
    pub attempts: u32,
}

/// A committed file's schema: the columns that say which commit and which input event a
/// row is of, then `fields`.
pub(crate) fn commit_schema(fields: impl IntoIterator<Item = Field>) -> Arc<Schema> {
    let event = [
        Field::new("partition", DataType::UInt32, false),
        Field::new("commit_seq", DataType::UInt64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("event_segment", DataType::UInt64, false),
        Field::new("event_index", DataType::UInt32, false),
    ];
    Arc::new(Schema::new(event.into_iter().chain(fields).collect::<Vec<_>>()))
}

fn output_schema() -> Arc<Schema> {
    commit_schema([Field::new("output_index", DataType::UInt32, false), Field::new("payload", DataType::Utf8, false)])
}

fn dead_letter_schema() -> Arc<Schema> {
    commit_schema([
        Field::new("reason", DataType::Utf8, false),
        Field::new("attempts", DataType::UInt32, false),
        Field::new("payload", DataType::Binary, false),
    ])
}

pub(crate) fn write_parquet(batch: RecordBatch) -> Bytes {
    let props = WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props)).expect("valid schema");
    writer.write(&batch).expect("in-memory write");
    writer.close().expect("in-memory write");
    Bytes::from(buffer)
}

/// Encodes outputs as rows of `(partition, commit sequence number, output)`: one commit's
/// when a batch commits, many commits' for an export.
pub(crate) fn encode_outputs<'a>(rows: impl Iterator<Item = (u32, u64, &'a Output)>) -> Bytes {
    let rows: Vec<(u32, u64, &Output)> = rows.collect();
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.key.as_str()))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.2.event.segment))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.2.event.index))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.2.index))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.payload.to_string()))),
    ];
    write_parquet(RecordBatch::try_new(output_schema(), columns).expect("columns match schema"))
}

/// The outputs of `commits` as one Parquet file, in the schema of the committed outputs
/// files (`docs/storage-format.md`): what `weir outputs --format parquet` writes.
///
/// ```
/// use weir_engine::{CommittedOutputs, Output, Position};
///
/// let output = Output { key: "k".into(), event: Position::new(0, 0), index: 0, payload: serde_json::json!({"ok": true}) };
/// let commit = CommittedOutputs { partition: 0, seq: 2, outputs_before: 0, outputs: vec![output] };
/// assert!(weir_engine::outputs_parquet(&[commit]).starts_with(b"PAR1"));
/// ```
pub fn outputs_parquet(commits: &[CommittedOutputs]) -> Bytes {
    encode_outputs(commits.iter().flat_map(|c| c.outputs.iter().map(move |o| (c.partition, c.seq, o))))
}

/// Encodes one commit's dead letters.
pub(crate) fn encode_dead_letters(partition: u32, commit_seq: u64, letters: &[DeadLetter]) -> Bytes {
    let n = letters.len();
    let columns: Vec<Arc<dyn Array>> = vec![
        Arc::new(UInt32Array::from(vec![partition; n])),
        Arc::new(UInt64Array::from(vec![commit_seq; n])),
        Arc::new(StringArray::from_iter_values(letters.iter().map(|d| d.key.as_str()))),
        Arc::new(UInt64Array::from_iter_values(letters.iter().map(|d| d.event.segment))),
        Arc::new(UInt32Array::from_iter_values(letters.iter().map(|d| d.event.index))),
        Arc::new(StringArray::from_iter_values(letters.iter().map(|d| d.reason.as_str()))),
        Arc::new(UInt32Array::from_iter_values(letters.iter().map(|d| d.attempts))),
        Arc::new(BinaryArray::from_iter_values(letters.iter().map(|d| d.payload.as_ref()))),
    ];
    write_parquet(RecordBatch::try_new(dead_letter_schema(), columns).expect("columns match schema"))
}

pub(crate) fn read_batches(bytes: Bytes) -> Result<Vec<RecordBatch>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(|e| e.to_string())?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

pub(crate) fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column `{name}` missing or of the wrong type"))
}

/// Decodes an outputs file.
pub(crate) fn decode_outputs(bytes: Bytes) -> Result<Vec<Output>, String> {
    let mut outputs = Vec::new();
    for batch in read_batches(bytes)? {
        let keys = column::<StringArray>(&batch, "key")?;
        let segments = column::<UInt64Array>(&batch, "event_segment")?;
        let indexes = column::<UInt32Array>(&batch, "event_index")?;
        let output_indexes = column::<UInt32Array>(&batch, "output_index")?;
        let payloads = column::<StringArray>(&batch, "payload")?;
        for row in 0..batch.num_rows() {
            outputs.push(Output {
                key: keys.value(row).to_string(),
                event: Position::new(segments.value(row), indexes.value(row)),
                index: output_indexes.value(row),
                payload: serde_json::from_str(payloads.value(row)).map_err(|e| e.to_string())?,
            });
        }
    }
    Ok(outputs)
}

/// Decodes a dead-letter file.
pub(crate) fn decode_dead_letters(bytes: Bytes) -> Result<Vec<DeadLetter>, String> {
    let mut letters = Vec::new();
    for batch in read_batches(bytes)? {
        let keys = column::<StringArray>(&batch, "key")?;
        let segments = column::<UInt64Array>(&batch, "event_segment")?;
        let indexes = column::<UInt32Array>(&batch, "event_index")?;
        let reasons = column::<StringArray>(&batch, "reason")?;
        let attempts = column::<UInt32Array>(&batch, "attempts")?;
        let payloads = column::<BinaryArray>(&batch, "payload")?;
        for row in 0..batch.num_rows() {
            letters.push(DeadLetter {
                key: keys.value(row).to_string(),
                event: Position::new(segments.value(row), indexes.value(row)),
                payload: Bytes::copy_from_slice(payloads.value(row)),
                reason: reasons.value(row).to_string(),
                attempts: attempts.value(row),
            });
        }
    }
    Ok(letters)
}
