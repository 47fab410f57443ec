//! Records from a file: JSON lines, CSV (a header row, every value a string) or Parquet.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{CliError, Result};

/// The layout of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values under a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl InputFormat {
    /// The format a file's extension names: `.csv`, `.parquet`/`.pq`, anything else JSON lines.
    pub fn of(path: &Path) -> InputFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => InputFormat::Csv,
            Some("parquet" | "pq") => InputFormat::Parquet,
            _ => InputFormat::Jsonl,
        }
    }
}

/// One record and where it came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedRecord {
    /// `line 3` (JSON lines, CSV) or `row 3` (Parquet), counted from 1.
    pub place: String,
    /// The record.
    pub record: Value,
}

/// Reads up to `limit` records of `path`; the first malformed one is an error naming it.
pub fn read_records(path: &Path, format: InputFormat, limit: Option<usize>) -> Result<Vec<SourcedRecord>> {
    let limit = limit.unwrap_or(usize::MAX);
    let file = std::fs::File::open(path).map_err(|e| CliError::file(path, e))?;
    let malformed = |place: &str, reason: String| CliError::Input(format!("{}, {place}: {reason}", path.display()));
    let mut records = Vec::new();
    match format {
        InputFormat::Jsonl => {
            let text = std::io::read_to_string(file).map_err(|e| CliError::file(path, e))?;
            let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
            for (n, line) in lines.take(limit) {
                let place = format!("line {}", n + 1);
                let record = serde_json::from_str(line).map_err(|e| malformed(&place, format!("not JSON: {e}")))?;
                records.push(SourcedRecord { place, record });
            }
        }
        InputFormat::Csv => {
            let mut reader = csv::Reader::from_reader(file);
            let header = reader.headers().map_err(|e| malformed("header", e.to_string()))?.clone();
            for row in reader.records().take(limit) {
                let row = row.map_err(|e| {
                    let line = e.position().map_or_else(|| "a row".to_string(), |p| format!("line {}", p.line()));
                    malformed(&line, e.to_string())
                })?;
                let place = format!("line {}", row.position().map_or(0, |p| p.line()));
                let record: Map<String, Value> =
                    header.iter().zip(row.iter()).map(|(name, value)| (name.to_string(), value.into())).collect();
                records.push(SourcedRecord { place, record: Value::Object(record) });
            }
        }
        InputFormat::Parquet => {
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                .map_err(|e| malformed("footer", format!("not a Parquet file: {e}")))?;
            for (n, row) in reader.into_iter().take(limit).enumerate() {
                let place = format!("row {}", n + 1);
                let row = row.map_err(|e| malformed(&place, e.to_string()))?;
                records.push(SourcedRecord { place, record: row.to_json_value() });
            }
        }
    }
    Ok(records)
}
