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
    /// The provider is not asked: its circuit breaker is open after repeated failures.
    #[error("{provider} unavailable: {message}")]
    Unavailable {
        /// The provider's name.
        provider: String,
        /// Why, and when it will be asked again.
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

impl ModelError {
    /// Whether the failure is the provider's, not the request's: it could not be reached,
    /// timed out, answered 408, 429 or 5xx after the retries, or its breaker is open. Such a
    /// failure says nothing about the event that asked, which should wait, not be given up.
    ///
    /// ```
    /// use weir_models::ModelError;
    ///
    /// let overloaded = ModelError::Status { provider: "openai".into(), status: 503, message: "busy".into() };
    /// let refused = ModelError::Status { provider: "openai".into(), status: 400, message: "bad".into() };
    /// assert!(overloaded.is_unavailable() && !refused.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        match self {
            ModelError::Status { status, .. } => matches!(status, 408 | 429) || *status >= 500,
            ModelError::Transport { .. } | ModelError::Unavailable { .. } => true,
            ModelError::Config(_) | ModelError::Malformed { .. } => false,
        }
    }
}
