//! Records from a file, one at a time: JSON lines, CSV (a header row, every value a string)
//! or Parquet. A record that cannot be read is handed on with the reason, numbered as its
//! format counts (a line of JSON lines or CSV, a row of Parquet), so that the caller can set
//! it aside and go on; only what makes the rest unreadable (an I/O error, a broken Parquet
//! file, a CSV header) ends the reading.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use parquet::file::reader::FileReader as _;
use serde_json::{Map, Value};
use weir_engine::records::parse_record;

use crate::error::{CliError, Result};

/// What a file may start with when Excel or PowerShell wrote it.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

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

    /// What the format numbers its records by: `line` or `row`.
    pub fn unit(self) -> &'static str {
        match self {
            InputFormat::Jsonl | InputFormat::Csv => "line",
            InputFormat::Parquet => "row",
        }
    }
}

/// One record, or why it cannot be one.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// Its line (JSON lines: from 1, blank lines counted; CSV: where the record starts, the
    /// header being line 1) or row (Parquet, from 1).
    pub number: u64,
    /// The record, or the reason it was refused.
    pub record: Result<Value, String>,
}

/// A file's records in order, holding one record at a time.
pub trait RecordSource {
    /// The next record, `None` at the end; an error ends the reading.
    fn next_record(&mut self) -> Result<Option<InputRecord>>;

    /// How far the reading is, and where it ends, in bytes or rows.
    fn progress(&self) -> (u64, u64);
}

/// Opens `path`; no record may be larger than `max_record_bytes`.
pub fn open(path: &Path, format: InputFormat, max_record_bytes: usize) -> Result<Box<dyn RecordSource>> {
    let mut file = File::open(path).map_err(|e| CliError::file(path, e))?;
    let total = file.metadata().map_err(|e| CliError::file(path, e))?.len();
    let malformed = |place: &str, reason: String| CliError::Input(format!("{}, {place}: {reason}", path.display()));
    Ok(match format {
        InputFormat::Jsonl => Box::new(JsonLines {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            line: Vec::new(),
            number: 0,
            read: 0,
            total,
            max_record_bytes,
        }),
        InputFormat::Csv => {
            skip_byte_order_mark(&mut file).map_err(|e| CliError::file(path, e))?;
            // The csv crate counts a CRLF record's line before its line feed, one short:
            // records end at the line feed here, and the carriage return is taken off.
            let mut reader =
                csv::ReaderBuilder::new().terminator(csv::Terminator::Any(b'\n')).flexible(true).from_reader(file);
            let header = reader.byte_headers().map_err(|e| malformed("header", e.to_string()))?;
            let mut names: Vec<String> = Vec::with_capacity(header.len());
            for (column, name) in fields(header).enumerate() {
                let name = std::str::from_utf8(name)
                    .map_err(|_| malformed("header", format!("column {} is not UTF-8", column + 1)))?;
                if names.iter().any(|n| n == name) {
                    return Err(malformed("header", format!("column `{name}` is named twice")));
                }
                names.push(name.to_string());
            }
            Box::new(CsvRows {
                path: path.to_path_buf(),
                reader,
                names,
                row: csv::ByteRecord::new(),
                total,
                max_record_bytes,
            })
        }
        InputFormat::Parquet => {
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file)
                .map_err(|e| malformed("footer", format!("not a Parquet file: {e}")))?;
            let total = u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
            Box::new(ParquetRows { path: path.to_path_buf(), rows: reader.into_iter(), number: 0, total })
        }
    })
}

/// Moves past a byte-order mark at the start of `file`, if there is one.
fn skip_byte_order_mark(file: &mut File) -> std::io::Result<()> {
    let mut start = [0; 3];
    let mut read = 0;
    while read < start.len() {
        match file.read(&mut start[read..])? {
            0 => break,
            n => read += n,
        }
    }
    if start[..read] != *BYTE_ORDER_MARK {
        file.rewind()?;
    }
    Ok(())
}

/// JSON lines, read through a buffer of fixed size: a line longer than the largest record is
/// skipped to its end without being held, so no line can make the reading hold more than
/// one record.
struct JsonLines {
    path: PathBuf,
    reader: BufReader<File>,
    line: Vec<u8>,
    number: u64,
    read: u64,
    total: u64,
    max_record_bytes: usize,
}

impl JsonLines {
    /// Reads the next line into `self.line` (without its `\n` or `\r\n`) and returns its
    /// length, or `None` at the end. Of a line longer than `max_record_bytes` only the length
    /// is kept.
    fn read_line(&mut self) -> std::io::Result<Option<usize>> {
        self.line.clear();
        let (mut length, mut last) = (0, 0);
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok((length > 0).then(|| self.end_line(length, last)));
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let piece = &available[..newline.unwrap_or(available.len())];
            // A carriage return before the newline is not part of the record.
            if length + piece.len() <= self.max_record_bytes + 1 {
                self.line.extend_from_slice(piece);
            }
            length += piece.len();
            last = piece.last().copied().unwrap_or(last);
            let consumed = piece.len() + usize::from(newline.is_some());
            self.reader.consume(consumed);
            self.read += consumed as u64;
            if newline.is_some() {
                return Ok(Some(self.end_line(length, last)));
            }
        }
    }

    /// The length of a line read whose last byte is `last`, taking a carriage return off.
    fn end_line(&mut self, length: usize, last: u8) -> usize {
        if last != b'\r' {
            return length;
        }
        if self.line.len() == length {
            self.line.pop();
        }
        length - 1
    }
}

impl RecordSource for JsonLines {
    fn next_record(&mut self) -> Result<Option<InputRecord>> {
        loop {
            let Some(length) = self.read_line().map_err(|e| CliError::file(&self.path, e))? else {
                return Ok(None);
            };
            self.number += 1;
            let mut bytes = self.line.as_slice();
            if self.number == 1 {
                bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
            }
            let record = if length > self.max_record_bytes {
                Err(format!("a line of {length} bytes; a record may have at most {}", self.max_record_bytes))
            } else {
                match std::str::from_utf8(bytes) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => parse_record(text),
                    Err(e) => Err(format!("not UTF-8: byte {} is not valid UTF-8", e.valid_up_to() + 1)),
                }
            };
            return Ok(Some(InputRecord { number: self.number, record }));
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.read, self.total)
    }
}

/// CSV records as JSON objects of strings under the header's names.
struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<File>,
    names: Vec<String>,
    row: csv::ByteRecord,
    total: u64,
    max_record_bytes: usize,
}

/// A CSV record's fields, the last without the carriage return of a CRLF line end.
fn fields(record: &csv::ByteRecord) -> impl Iterator<Item = &[u8]> {
    let last = record.len().saturating_sub(1);
    record.iter().enumerate().map(move |(n, field)| match n == last {
        true => field.strip_suffix(b"\r").unwrap_or(field),
        false => field,
    })
}

impl CsvRows {
    fn object(&self) -> Result<Value, String> {
        if self.row.len() != self.names.len() {
            let len = self.row.len();
            let fields = if len == 1 { "field" } else { "fields" };
            return Err(format!("{len} {fields} where the header has {}", self.names.len()));
        }
        if self.row.as_slice().len() > self.max_record_bytes {
            return Err(format!(
                "a record of {} bytes; a record may have at most {}",
                self.row.as_slice().len(),
                self.max_record_bytes
            ));
        }
        let mut object = Map::new();
        for (name, field) in self.names.iter().zip(fields(&self.row)) {
            let value = std::str::from_utf8(field).map_err(|e| {
                format!("column `{name}` is not UTF-8: byte {} is not valid UTF-8", e.valid_up_to() + 1)
            })?;
            object.insert(name.clone(), value.into());
        }
        Ok(Value::Object(object))
    }
}

impl RecordSource for CsvRows {
    fn next_record(&mut self) -> Result<Option<InputRecord>> {
        loop {
            match self.reader.read_byte_record(&mut self.row) {
                Ok(false) => return Ok(None),
                // A blank CRLF line: blank, as the csv crate skips a blank LF line.
                Ok(true) if self.row.len() == 1 && &self.row[0] == b"\r" => continue,
                Ok(true) => {
                    let number = self.row.position().map_or(0, csv::Position::line);
                    return Ok(Some(InputRecord { number, record: self.object() }));
                }
                Err(e) => {
                    let place = e.position().map_or_else(|| "a record".to_string(), |p| format!("line {}", p.line()));
                    return Err(CliError::Input(format!("{}, {place}: {e}", self.path.display())));
                }
            }
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.reader.position().byte(), self.total)
    }
}

/// Parquet rows as JSON objects. A row that cannot be decoded means the pages under it are
/// broken, and so are the rows after it: that ends the reading.
struct ParquetRows {
    path: PathBuf,
    rows: parquet::record::reader::RowIter<'static>,
    number: u64,
    total: u64,
}

impl RecordSource for ParquetRows {
    fn next_record(&mut self) -> Result<Option<InputRecord>> {
        let Some(row) = self.rows.next() else { return Ok(None) };
        self.number += 1;
        let row = row.map_err(|e| CliError::Input(format!("{}, row {}: {e}", self.path.display(), self.number)))?;
        Ok(Some(InputRecord { number: self.number, record: Ok(row.to_json_value()) }))
    }

    fn progress(&self) -> (u64, u64) {
        (self.number, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line longer than the largest record is refused with its length, and the reader
    /// never holds more of it than one record.
    #[test]
    fn a_line_longer_than_a_record_is_refused_without_being_held() {
        let path = std::env::temp_dir().join(format!("weir-input-file-{}.jsonl", std::process::id()));
        let long = format!(r#"{{"key": "{}"}}"#, "a".repeat(20 << 20));
        std::fs::write(&path, format!("{{\"key\": \"a\"}}\n{long}\r\n\n{{\"key\": \"b\"}}")).unwrap();
        let file = File::open(&path).unwrap();
        let max_record_bytes = 1 << 20;
        let mut lines = JsonLines {
            path: path.clone(),
            reader: BufReader::new(file),
            line: Vec::new(),
            number: 0,
            read: 0,
            total: 0,
            max_record_bytes,
        };
        let mut records = Vec::new();
        while let Some(record) = lines.next_record().unwrap() {
            assert!(lines.line.capacity() <= 2 * max_record_bytes + 2, "{}", lines.line.capacity());
            records.push(record);
        }
        std::fs::remove_file(&path).unwrap();
        let reasons: Vec<(u64, Result<Value, String>)> = records.into_iter().map(|r| (r.number, r.record)).collect();
        assert_eq!(
            reasons,
            [
                (1, Ok(serde_json::json!({"key": "a"}))),
                (2, Err(format!("a line of {} bytes; a record may have at most 1048576", long.len()))),
                (4, Ok(serde_json::json!({"key": "b"}))),
            ]
        );
    }
}
