//! Where the process function finds a declarative agent file (`WEIR_AGENT_FILE`): a path in
//! its file system, or a store URL (`s3://bucket/prefix/agent.yaml`, `file:///dir/agent.yaml`)
//! from which it is read once, at cold start. A Lambda zip holds only `bootstrap`, so on AWS
//! the module uploads the file into the agent's store and passes its URL.

use std::path::PathBuf;

use weir_engine::Storage;

use crate::error::{Error, Result};

const VARIABLE: &str = "WEIR_AGENT_FILE";

/// A path to the agent file named by `location`: the path itself, or a copy of the object a
/// store URL names, in the temporary directory under the object's own file name (which
/// says YAML or TOML). An error names the variable and the location.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let path = weir_functions::agent_file::local_copy("/var/task/agent.yaml").await.unwrap();
/// assert_eq!(path, std::path::PathBuf::from("/var/task/agent.yaml"));
/// let missing = weir_functions::agent_file::local_copy("memory:///agent.yaml").await.unwrap_err();
/// assert!(missing.to_string().contains("WEIR_AGENT_FILE"), "{missing}");
/// # });
/// ```
pub async fn local_copy(location: &str) -> Result<PathBuf> {
    let invalid = |reason: String| Error::Config { variable: VARIABLE, reason: format!("`{location}`: {reason}") };
    let Some((scheme, _)) = location.split_once("://") else { return Ok(PathBuf::from(location)) };
    let (folder, name) = location
        .rsplit_once('/')
        .filter(|(folder, name)| !name.is_empty() && folder.len() > scheme.len() + 2)
        .ok_or_else(|| invalid("names no file".into()))?;
    let storage = Storage::from_url(folder).map_err(|e| invalid(e.to_string()))?;
    let bytes = storage.get(&storage.path(name)).await.map_err(|e| invalid(e.to_string()))?;
    let bytes = bytes.ok_or_else(|| invalid("no such object".into()))?;
    let dir = std::env::temp_dir().join("weir-agent-file");
    let path = dir.join(name);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &bytes))
        .map_err(|e| invalid(format!("cannot copy it to {}: {e}", path.display())))?;
    tracing::info!(location, copy = %path.display(), bytes = bytes.len(), "agent file read from the store");
    Ok(path)
}
