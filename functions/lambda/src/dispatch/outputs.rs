//! Committed outputs, read commit by commit from a manifest sequence number.
//!
//! `CommittedReader` reads every retained commit; a dispatcher needs only those after its
//! cursor, so it walks the chain with `PartitionDir` and decodes the outputs files itself
//! (columns `key` and `payload`, as `docs/storage-format.md` and the engine write them).

use arrow_array::{Array, RecordBatch, StringArray};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use weir_engine::{Error, FileRef, Manifest, PartitionDir, Result};

/// Manifests read at once.
const MANIFESTS_AT_ONCE: usize = 16;

/// The valid manifests from `from_seq` on, in order, and whether commits before them that
/// were not yet read had been collected (their outputs are lost to this reader).
pub(crate) async fn manifests_from(dir: &PartitionDir, from_seq: u64) -> Result<(Vec<Manifest>, bool)> {
    let boundary = dir.gc_boundary().await?;
    let after = from_seq.checked_sub(1);
    let seqs: Vec<u64> = dir.manifest_seqs(after).await?.into_iter().filter(|s| *s >= boundary).collect();
    let collected = from_seq < boundary && seqs.first().is_some_and(|first| *first > from_seq);
    let manifests: Vec<Option<Manifest>> =
        futures::stream::iter(seqs).map(|seq| dir.read_manifest(seq)).buffered(MANIFESTS_AT_ONCE).try_collect().await?;
    Ok((manifests.into_iter().flatten().collect(), collected))
}

/// The outputs of one commit, in the order the commit wrote them: `(key, payload)`.
pub(crate) async fn read_outputs(dir: &PartitionDir, file: &FileRef) -> Result<Vec<(String, Value)>> {
    let path = dir.path(&file.path);
    let corrupt = |reason: String| Error::Corrupt { path: path.to_string(), reason };
    let bytes = dir.storage().get(&path).await?.ok_or_else(|| corrupt("committed outputs are missing".into()))?;
    decode(bytes).map_err(corrupt)
}

fn decode(bytes: Bytes) -> Result<Vec<(String, Value)>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build()).map_err(|e| e.to_string())?;
    let mut outputs = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let (keys, payloads) = (strings(&batch, "key")?, strings(&batch, "payload")?);
        for row in 0..batch.num_rows() {
            let payload = serde_json::from_str(payloads.value(row)).map_err(|e| format!("row {row}: {e}"))?;
            outputs.push((keys.value(row).to_string(), payload));
        }
    }
    Ok(outputs)
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| format!("column `{name}` missing or not UTF-8"))
}
