//! What the tools read: job logs, node health and runbooks, from JSON files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What to do about one kind of failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runbook {
    /// The usual causes.
    pub cause: String,
    /// Log phrases that point at them.
    pub signals: Vec<String>,
    /// The steps, in order.
    pub remediation: Vec<String>,
}

/// The operations data: `logs.json` (job → log lines), `nodes.json` (node → health) and
/// `runbooks.json` (failure kind → [`Runbook`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsData {
    /// Log lines by job, oldest first.
    pub logs: BTreeMap<String, Vec<String>>,
    /// Health by node: any JSON object the monitoring system reports.
    pub nodes: BTreeMap<String, Value>,
    /// Runbooks by failure kind.
    pub runbooks: BTreeMap<String, Runbook>,
}

/// A data file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum OpsDataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("{path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
}

impl OpsData {
    /// The sample data of `data/`, built in.
    pub fn sample() -> Self {
        OpsData {
            logs: serde_json::from_str(include_str!("../data/logs.json")).expect("sample logs"),
            nodes: serde_json::from_str(include_str!("../data/nodes.json")).expect("sample nodes"),
            runbooks: serde_json::from_str(include_str!("../data/runbooks.json")).expect("sample runbooks"),
        }
    }

    /// `logs.json`, `nodes.json` and `runbooks.json` of `dir`.
    pub fn load(dir: &Path) -> Result<Self, OpsDataError> {
        Ok(OpsData {
            logs: read(&dir.join("logs.json"))?,
            nodes: read(&dir.join("nodes.json"))?,
            runbooks: read(&dir.join("runbooks.json"))?,
        })
    }
}

fn read<T: DeserializeOwned>(path: &Path) -> Result<T, OpsDataError> {
    let text = std::fs::read_to_string(path).map_err(|source| OpsDataError::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|source| OpsDataError::Parse { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_loads_from_its_directory_as_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        assert_eq!(OpsData::load(&dir).unwrap(), OpsData::sample());
        assert!(OpsData::sample().runbooks.contains_key("oom"));
    }

    #[test]
    fn a_missing_or_broken_file_is_named() {
        let error = OpsData::load(Path::new("/nonexistent-weir-ops")).unwrap_err();
        assert!(error.to_string().starts_with("cannot read /nonexistent-weir-ops/logs.json"), "{error}");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let error = read::<BTreeMap<String, Runbook>>(&dir.join("lib.rs")).unwrap_err();
        assert!(error.to_string().contains("lib.rs is not valid"), "{error}");
    }
}
