//! The rejects file `<input>.rejects.jsonl`: the records `weir ingest` refused, one JSON
//! object a line in the input's order, `{"line": 3, "reason": "…"}` (`row` for Parquet).
//!
//! It is also the memory of how the input was batched. A refused record that a later run
//! finds fixed stays listed as `{"line": 3, "fixed_in": 1}`: it went into the first group of
//! fixed records. A run batches the records the file never listed exactly as the first run
//! did, and each group of fixed records apart, so that every batch comes out with the id it
//! had: fixing records adds exactly them, and running unchanged adds nothing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{CliError, Result};

/// The rejects file of `input`.
pub fn path_of(input: &Path) -> PathBuf {
    let mut name = input.file_name().unwrap_or_default().to_os_string();
    name.push(".rejects.jsonl");
    input.with_file_name(name)
}

/// What an earlier run found of a record the rejects file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Earlier {
    /// Refused for this reason, and not fixed since.
    Refused(String),
    /// Refused, then fixed and ingested with this group.
    FixedIn(u32),
}

/// The rejects file an earlier run left: the records it lists, by number.
#[derive(Debug, Default)]
pub struct EarlierRejects {
    entries: BTreeMap<u64, Earlier>,
}

impl EarlierRejects {
    /// What the rejects file at `path` lists; nothing if there is none.
    pub fn read(path: &Path) -> Result<Self> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(EarlierRejects::default()),
            Err(e) => return Err(CliError::file(path, e)),
        };
        let mut entries = BTreeMap::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| CliError::file(path, e))?;
            let entry: Option<(u64, Earlier)> = serde_json::from_str::<Value>(&line).ok().and_then(|entry| {
                let number = entry.get("line").or_else(|| entry.get("row"))?.as_u64()?;
                match (entry.get("fixed_in"), entry.get("reason")) {
                    (Some(group), _) => Some((number, Earlier::FixedIn(u32::try_from(group.as_u64()?).ok()?))),
                    (None, Some(Value::String(reason))) => Some((number, Earlier::Refused(reason.clone()))),
                    (None, _) => None,
                }
            });
            let Some((number, earlier)) = entry else {
                return Err(CliError::Input(format!(
                    "{}, line {}: not an entry of a rejects file (`{{\"line\": 3, \"reason\": \"…\"}}`); it records \
                     how the input was batched, so restore it, or remove it to ingest the input as new",
                    path.display(),
                    n + 1
                )));
            };
            entries.insert(number, earlier);
        }
        Ok(EarlierRejects { entries })
    }

    /// What the file lists of record `number`.
    pub fn get(&self, number: u64) -> Option<&Earlier> {
        self.entries.get(&number)
    }

    /// The group that records fixed by this run go into.
    pub fn next_group(&self) -> u32 {
        let last = self.entries.values().filter_map(|e| match e {
            Earlier::FixedIn(group) => Some(*group),
            Earlier::Refused(_) => None,
        });
        last.max().unwrap_or(0) + 1
    }

    /// The entries after record `number`, for what a run did not reach (`--limit`).
    pub fn after(&self, number: u64) -> impl Iterator<Item = (u64, &Earlier)> + '_ {
        self.entries.range(number + 1..).map(|(&n, e)| (n, e))
    }
}

/// The rejects file being written: beside the old one until [`RejectsWriter::finish`]
/// replaces it, so that a run that fails leaves the old one as it was.
#[derive(Debug)]
pub struct RejectsWriter {
    path: PathBuf,
    partial: PathBuf,
    unit: &'static str,
    out: Option<BufWriter<std::fs::File>>,
}

impl RejectsWriter {
    /// A writer of the rejects file at `path`, numbering records by `unit` (`line`, `row`);
    /// nothing is written until the first entry.
    pub fn new(path: PathBuf, unit: &'static str) -> Self {
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        RejectsWriter { path, partial: partial.into(), unit, out: None }
    }

    /// Lists record `number` as refused for `reason`.
    pub fn refused(&mut self, number: u64, reason: &str) -> Result<()> {
        self.write(json!({self.unit: number, "reason": reason}))
    }

    /// Lists record `number` as fixed and ingested with `group`.
    pub fn fixed(&mut self, number: u64, group: u32) -> Result<()> {
        self.write(json!({self.unit: number, "fixed_in": group}))
    }

    /// Writes the earlier entry of record `number` again.
    pub fn keep(&mut self, number: u64, earlier: &Earlier) -> Result<()> {
        match earlier {
            Earlier::Refused(reason) => self.refused(number, reason),
            Earlier::FixedIn(group) => self.fixed(number, *group),
        }
    }

    fn write(&mut self, entry: Value) -> Result<()> {
        if self.out.is_none() {
            let file = std::fs::File::create(&self.partial).map_err(|e| CliError::file(&self.partial, e))?;
            self.out = Some(BufWriter::new(file));
        }
        let out = self.out.as_mut().expect("opened above");
        writeln!(out, "{entry}").map_err(|e| CliError::file(&self.partial, e))
    }

    /// Puts the new rejects file in place of the old one; with no entry, removes the old
    /// one (it cannot list anything: an earlier entry is always written again).
    pub fn finish(self) -> Result<()> {
        match self.out {
            Some(out) => {
                let file = out.into_inner().map_err(|e| CliError::file(&self.partial, e.into_error()))?;
                file.sync_all().map_err(|e| CliError::file(&self.partial, e))?;
                std::fs::rename(&self.partial, &self.path).map_err(|e| CliError::file(&self.path, e))
            }
            None => match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::file(&self.path, e)),
                _ => Ok(()),
            },
        }
    }
}
