//! Metadata filters: `key=value`, all of which a chunk must match.

use crate::chunk::Metadata;
use crate::error::{Result, SearchError};

/// Conditions on a chunk's metadata: every `key` must be present with exactly `value`.
///
/// ```
/// use weir_search::MetadataFilter;
///
/// let filter = MetadataFilter::parse(["service=payments", "env=prod"]).unwrap();
/// let chunk_metadata = [("service".to_owned(), "payments".to_owned()), ("env".to_owned(), "prod".to_owned())].into();
/// assert!(filter.matches(&chunk_metadata));
/// assert!(MetadataFilter::parse(["no equals sign"]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataFilter {
    conditions: Vec<(String, String)>,
}

impl MetadataFilter {
    /// A filter from `key=value` strings.
    pub fn parse<S: AsRef<str>>(conditions: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut filter = MetadataFilter::default();
        for condition in conditions {
            let condition = condition.as_ref();
            let (key, value) = condition
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| SearchError::InvalidQuery(format!("filter `{condition}` is not key=value")))?;
            filter = filter.and(key.trim(), value.trim());
        }
        Ok(filter)
    }

    /// The filter with one more condition.
    pub fn and(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push((key.into(), value.into()));
        self
    }

    /// Whether `metadata` meets every condition.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        self.conditions.iter().all(|(key, value)| metadata.get(key) == Some(value))
    }

    /// The conditions, `(key, value)`, in the order given: for stores that translate them
    /// into their own filter syntax.
    pub fn conditions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.conditions.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Whether there is no condition.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }
}
