//! API keys, kept out of logs and error messages.

use std::fmt;
use std::sync::Arc;

use crate::error::ModelError;

/// What a key is replaced with wherever it would otherwise be shown.
const REDACTED: &str = "[redacted]";

/// A provider's API key. It prints as `[redacted]`, and [`ApiKey::scrub`] removes it from any
/// text a provider sends back, so it never reaches a log or an error.
///
/// ```
/// use weir_models::ApiKey;
///
/// let key = ApiKey::new("sk-secret");
/// assert_eq!(format!("{key} {key:?}"), "[redacted] ApiKey([redacted])");
/// assert_eq!(key.scrub("bad key sk-secret"), "bad key [redacted]");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// A key given explicitly.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Arc::from(key.into()))
    }

    /// The key in the environment variable `var`; a missing or empty variable is a
    /// [`ModelError::Config`] naming it.
    pub fn from_env(var: &str) -> Result<Self, ModelError> {
        Self::from_lookup(var, |name| std::env::var(name).ok())
    }

    /// The key `lookup` finds under `var`, as [`ApiKey::from_env`] but from any source of
    /// variables (tests, a secrets cache).
    pub fn from_lookup(var: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ModelError> {
        match lookup(var) {
            Some(key) if !key.trim().is_empty() => Ok(Self::new(key.trim())),
            _ => Err(ModelError::Config(format!("the API key variable {var} is not set"))),
        }
    }

    /// The key itself, for the request header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_owned() } else { text.replace(&*self.0, REDACTED) }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({REDACTED})")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_blank_variable_is_named() {
        for value in [None, Some("  ".to_owned())] {
            let error = ApiKey::from_lookup("MY_KEY", |_| value.clone()).unwrap_err();
            assert!(matches!(&error, ModelError::Config(message) if message.contains("MY_KEY")), "{error}");
        }
    }

    #[test]
    fn a_found_key_is_trimmed() {
        let key = ApiKey::from_lookup("MY_KEY", |_| Some(" sk-1\n".to_owned())).unwrap();
        assert_eq!(key.expose(), "sk-1");
    }
}
