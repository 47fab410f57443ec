//! What can go wrong talking to a model.

/// A model call's failure. Messages never contain API keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The model's configuration is invalid (missing key, bad URL, ...).
    #[error("model configuration: {0}")]
    Config(String),
    /// The provider answered with an error status after all retries.
    #[error("{provider} returned HTTP {status}: {message}")]
    Status {
        /// The provider's name.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The provider's error message.
        message: String,
    },
    /// The request could not be sent or timed out after all retries.
    #[error("{provider} request failed: {message}")]
    Transport {
        /// The provider's name.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// The provider's reply could not be understood.
    #[error("{provider} sent a malformed reply: {message}")]
    Malformed {
        /// The provider's name.
        provider: String,
        /// What was wrong with it.
        message: String,
    },
}
