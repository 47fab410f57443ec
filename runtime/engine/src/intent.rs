//! Intent objects: the one holder of each at-most-once call.
//!
//! See `docs/storage-format.md` ("Exclusive at-most-once calls").

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::journal::CallId;
use crate::manifest::{PartitionDir, Writer};
use crate::position::Position;

/// What an intent object holds: who took the call, and which call it is.
#[derive(Debug, Serialize, Deserialize)]
struct Intent<'a> {
    writer: Writer,
    name: &'a str,
    event: Position,
    key: &'a str,
    #[serde(default, skip_serializing_if = "str::is_empty")]
    branch: &'a str,
    step: u32,
}

/// Takes the at-most-once call `call` for `writer`: `Ok(true)` if this writer holds it (it
/// created the object now, or a retried request of its own did), `Ok(false)` if another
/// invocation took it first.
pub(crate) async fn take(
    dir: &PartitionDir,
    call: &CallId,
    name: &str,
    idempotency_key: &str,
    writer: &Writer,
) -> Result<bool> {
    let path = dir.path(&crate::layout::intent(call.event, idempotency_key));
    let intent = Intent {
        writer: writer.clone(),
        name,
        event: call.event,
        key: &call.key,
        branch: &call.branch,
        step: call.step,
    };
    let body = Bytes::from(serde_json::to_vec(&intent).expect("an intent serializes"));
    if dir.storage().create(&path, body).await? {
        return Ok(true);
    }
    // Gone again: collected, so taken long ago by an invocation since fenced or done.
    let Some(held) = dir.storage().get(&path).await? else { return Ok(false) };
    let holder: Intent = serde_json::from_slice(&held).map_err(|e| Error::corrupt(&path, e))?;
    Ok(holder.writer == *writer)
}
