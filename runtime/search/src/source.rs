//! Documents as a knowledge base takes them in: read from Markdown, text and JSON-lines files.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_128;

use crate::chunk::Metadata;
use crate::error::{Result, SearchError};

/// The kind of text a document holds, which decides how it is chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// Markdown: split at headings first.
    Markdown,
    /// Plain text.
    Text,
}

/// One document to add: its id (a path, or a path and a record's id), text and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDocument {
    /// What identifies it across adds: the same id replaces the earlier version.
    pub id: String,
    /// How to chunk it.
    pub kind: DocumentKind,
    /// Its text.
    pub text: String,
    /// Its metadata, given to every chunk.
    pub metadata: Metadata,
}

impl SourceDocument {
    /// A document from text already in memory.
    pub fn new(id: impl Into<String>, kind: DocumentKind, text: impl Into<String>) -> Self {
        SourceDocument { id: id.into(), kind, text: text.into(), metadata: Metadata::new() }
    }

    /// The same document with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// A hash of everything that decides its chunks: an unchanged hash means nothing to do.
    pub fn content_hash(&self) -> String {
        let mut bytes = Vec::with_capacity(self.text.len() + 64);
        bytes.push(self.kind as u8);
        bytes.extend_from_slice(self.text.as_bytes());
        for (key, value) in &self.metadata {
            bytes.push(0);
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(value.as_bytes());
        }
        format!("{:032x}", xxh3_128(&bytes))
    }
}

/// The documents in `paths`: each file, and every file below each directory with a known
/// extension (`.md`, `.markdown`, `.txt`, `.jsonl`; hidden entries skipped), in path order.
///
/// A file's id is its path as given; a JSON-lines record's is the path and the record's `id`
/// (or its line number). A path that cannot be read, or a record that is not a JSON object
/// with a `text` or `content` string, is [`SearchError::Unreadable`] naming it.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<SourceDocument>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    let mut documents = Vec::new();
    for file in files {
        documents.extend(read_file(&file)?);
    }
    Ok(documents)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))? {
        let path = entry.map_err(|e| unreadable(dir, e))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if kind_of(&path).is_some() {
            files.push(path);
        }
    }
    Ok(())
}

enum FileKind {
    Document(DocumentKind),
    JsonLines,
}

fn kind_of(path: &Path) -> Option<FileKind> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "md" | "markdown" => Some(FileKind::Document(DocumentKind::Markdown)),
        "txt" | "text" => Some(FileKind::Document(DocumentKind::Text)),
        "jsonl" | "ndjson" => Some(FileKind::JsonLines),
        _ => None,
    }
}

fn unreadable(path: &Path, reason: impl std::fmt::Display) -> SearchError {
    SearchError::Unreadable { path: display(path), reason: reason.to_string() }
}

fn display(path: &Path) -> String {
    let shown = path.to_string_lossy();
    shown.strip_prefix("./").unwrap_or(&shown).to_string()
}

/// The documents of one file; a file named explicitly with an unknown extension is text.
fn read_file(path: &Path) -> Result<Vec<SourceDocument>> {
    let bytes = std::fs::read(path).map_err(|e| unreadable(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| unreadable(path, format!("not UTF-8 text ({e})")))?;
    let id = display(path);
    match kind_of(path).unwrap_or(FileKind::Document(DocumentKind::Text)) {
        FileKind::Document(kind) => Ok(vec![SourceDocument::new(id.clone(), kind, text).with_metadata("source", id)]),
        FileKind::JsonLines => json_lines(&id, &text),
    }
}

/// One document per non-empty line: `text` or `content` is the text, `id` the id within the
/// file, every other scalar field metadata.
fn json_lines(file: &str, text: &str) -> Result<Vec<SourceDocument>> {
    let mut documents = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = format!("{file}:{}", n + 1);
        let bad = |reason: String| SearchError::Unreadable { path: at.clone(), reason };
        let Value::Object(record) = serde_json::from_str(line).map_err(|e| bad(format!("not JSON ({e})")))? else {
            return Err(bad("not a JSON object".into()));
        };
        let body = ["text", "content"].iter().find_map(|field| record.get(*field).and_then(Value::as_str));
        let body = body.ok_or_else(|| bad("no `text` or `content` string".into()))?;
        let id = match record.get("id") {
            Some(Value::String(id)) => format!("{file}#{id}"),
            Some(id @ Value::Number(_)) => format!("{file}#{id}"),
            _ => format!("{file}:{}", n + 1),
        };
        let mut document = SourceDocument::new(id, DocumentKind::Text, body).with_metadata("source", file);
        for (key, value) in &record {
            if matches!(key.as_str(), "text" | "content") {
                continue;
            }
            match value {
                Value::String(s) => document.metadata.insert(key.clone(), s.clone()),
                Value::Number(_) | Value::Bool(_) => document.metadata.insert(key.clone(), value.to_string()),
                _ => None,
            };
        }
        documents.push(document);
    }
    Ok(documents)
}
