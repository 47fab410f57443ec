//! A chunk: the unit a knowledge base stores and returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metadata of a document and its chunks: scalar values as strings, so that a filter
/// `key=value` compares one way whatever the source's types were.
pub type Metadata = BTreeMap<String, String>;

/// A piece of a document, small enough to embed and to show a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The document it was cut from.
    pub document: String,
    /// Its place in the document, from 0.
    pub ordinal: u32,
    /// The text.
    pub text: String,
    /// The document's metadata, plus what chunking adds (`section` for Markdown).
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}
