//! Records of model calls submitted to a provider's batch API on behalf of waiting keys
//! (docs/batch-calls.md): which calls a provider batch answers, so that they are submitted
//! once, and polled until it ends.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::PartitionDir;
use crate::storage::Storage;

/// One provider batch: the calls it answers, and whether it has ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSubmission {
    /// The agent's name for the model.
    pub model: String,
    /// The provider's id of the batch.
    pub provider_batch: String,
    /// Each call's id (the provider's `custom_id`, the wait's correlation id), with the key
    /// that waits on it.
    pub calls: BTreeMap<String, String>,
    /// When it was submitted.
    pub submitted_ms: u64,
    /// When its results were appended to the log; `None`: it is still polled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    #[serde(flatten)]
    submission: BatchSubmission,
}

impl BatchSubmission {
    /// The record's name: the same for the same model and calls, whoever submits them.
    fn hash(&self) -> u128 {
        let mut id = self.model.clone();
        for call in self.calls.keys() {
            id.push('\0');
            id.push_str(call);
        }
        xxh3_128(id.as_bytes())
    }
}

/// The batch submissions of one agent's partition.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_engine::{BatchSubmission, BatchSubmissions, Storage};
///
/// let submissions = BatchSubmissions::new(Storage::from_url("memory://").unwrap(), "reviews", 0).unwrap();
/// let submission = BatchSubmission {
///     model: "reviewer".into(),
///     provider_batch: "batch_1".into(),
///     calls: [("c1".to_string(), "kettle".to_string())].into(),
///     submitted_ms: 1,
///     ended_ms: None,
/// };
/// assert!(submissions.create(&submission).await.unwrap());
/// assert!(!submissions.create(&BatchSubmission { provider_batch: "batch_2".into(), ..submission.clone() }).await.unwrap());
/// assert_eq!(submissions.list().await.unwrap(), vec![submission]);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct BatchSubmissions {
    dir: PartitionDir,
}

impl BatchSubmissions {
    /// The submissions of `agent`'s `partition`.
    pub fn new(storage: Storage, agent: &str, partition: u32) -> Result<Self> {
        Ok(BatchSubmissions { dir: PartitionDir::new(storage, agent, partition)? })
    }

    /// Every record, open or ended.
    pub async fn list(&self) -> Result<Vec<BatchSubmission>> {
        let storage = self.dir.storage();
        let mut found = Vec::new();
        for object in storage.list_after(&self.dir.path(layout::BATCH_SUBMISSIONS), None).await? {
            let Some(bytes) = storage.get(&object.location).await? else { continue };
            let file: File = serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&object.location, e))?;
            if file.format != 1 {
                return Err(Error::corrupt(&object.location, format!("format {} is not 1", file.format)));
            }
            found.push(file.submission);
        }
        Ok(found)
    }

    /// Records `submission` unless a record of the same model and calls exists: `false`
    /// then, and the record that stands is the first one.
    pub async fn create(&self, submission: &BatchSubmission) -> Result<bool> {
        let path = self.dir.path(&layout::batch_submission(submission.hash()));
        self.dir.storage().create(&path, encode(submission)).await
    }

    /// Records that `submission`'s results are in the log.
    pub async fn end(&self, submission: &BatchSubmission, at_ms: u64) -> Result<()> {
        let ended = BatchSubmission { ended_ms: Some(at_ms), ..submission.clone() };
        self.dir.storage().put(&self.dir.path(&layout::batch_submission(submission.hash())), encode(&ended)).await
    }

    /// Deletes the record of an ended submission none of whose calls waits any more.
    pub async fn remove(&self, submission: &BatchSubmission) -> Result<()> {
        self.dir.storage().delete(&self.dir.path(&layout::batch_submission(submission.hash()))).await
    }
}

fn encode(submission: &BatchSubmission) -> Bytes {
    let file = File { format: 1, submission: submission.clone() };
    Bytes::from(serde_json::to_vec(&file).expect("a submission serializes"))
}
