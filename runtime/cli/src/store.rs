//! `--store`: a store URL, or a directory, defaulting to `./weir-data`.

use std::path::Path;

use weir_engine::{EventLog, Storage};

use crate::error::{CliError, Result};

/// The directory used when `--store` is not given, under the current directory.
pub const DEFAULT_DIR: &str = "weir-data";

/// A store as the user named it, resolved to the absolute URL that functions are given.
#[derive(Debug, Clone)]
pub struct Store {
    /// `file:///abs/dir`, `s3://bucket/prefix` or `memory://`.
    pub url: String,
    /// The opened store.
    pub storage: Storage,
}

impl Store {
    /// Opens `store` (a URL, or a directory path), or `./weir-data` when `None`.
    pub fn open(store: Option<&str>) -> Result<Self> {
        let url = match store {
            Some(url) if url.contains("://") => url.to_string(),
            Some(dir) => dir_url(Path::new(dir))?,
            None => dir_url(Path::new(DEFAULT_DIR))?,
        };
        let storage = Storage::from_url(&url)?;
        Ok(Store { url, storage })
    }

    /// Opens the event log, which must exist.
    pub async fn log(&self) -> Result<EventLog> {
        match EventLog::open(self.storage.clone()).await {
            Err(weir_engine::Error::NoLog { .. }) => Err(CliError::Input(format!(
                "no event log in {}: ingest some events first (`weir ingest FILE`)",
                self.url
            ))),
            log => Ok(log?),
        }
    }
}

/// The `file://` URL of `dir`, made absolute: functions run in another directory.
fn dir_url(dir: &Path) -> Result<String> {
    let dir = std::path::absolute(dir).map_err(|e| CliError::file(dir, e))?;
    Ok(format!("file://{}", dir.display()))
}
