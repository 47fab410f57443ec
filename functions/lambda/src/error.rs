//! Errors of the functions: one enum whose [`ErrorKind`] says what the caller should do.

use weir_engine::ErrorKind;

/// What went wrong in a function; [`Error::kind`] says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration variable is missing or invalid: the function cannot start.
    #[error("configuration variable `{variable}` {reason}")]
    Config {
        /// The variable's name.
        variable: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The engine failed: the store, fencing, or stored data.
    #[error(transparent)]
    Engine(#[from] weir_engine::Error),
    /// The invocation's payload is not an event this function accepts.
    #[error("unsupported event: {0}")]
    Event(String),
    /// A call to an AWS service failed (after the SDK's retries), or a batch call refused
    /// some of its entries.
    #[error("{service} {operation} failed: {message}")]
    Aws {
        /// Which service: `sqs`, `sns`, `secretsmanager`, `ssm`, `lambda`.
        service: &'static str,
        /// The operation, as the service's API names it.
        operation: &'static str,
        /// Retry (throttling, timeouts, 5xx) or fix the configuration (any other refusal).
        kind: ErrorKind,
        /// The service's error code and message; never credentials.
        message: String,
    },
    /// A request to another service (a webhook, the Lambda Runtime API) failed.
    #[error("{service} request failed: {reason}")]
    Request {
        /// Which service.
        service: &'static str,
        /// Status and the service's message; never credentials or signed URLs.
        reason: String,
    },
    /// A knowledge base under the store could not be collected (`docs/search.md`).
    #[error("knowledge base: {0}")]
    KnowledgeBase(#[from] weir_search::SearchError),
    /// Some partitions failed; the others were worked on.
    #[error("{0}")]
    Partitions(String),
}

impl Error {
    /// What the caller should do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::Event(_) => ErrorKind::InvalidInput,
            Error::Engine(e) => e.kind(),
            Error::Aws { kind, .. } => *kind,
            Error::Request { .. } | Error::Partitions(_) => ErrorKind::Retryable,
            Error::KnowledgeBase(weir_search::SearchError::Storage(e)) => e.kind(),
            Error::KnowledgeBase(e) if e.is_unavailable() => ErrorKind::Retryable,
            Error::KnowledgeBase(_) => ErrorKind::InvalidInput,
        }
    }

    /// The `errorType` Lambda records for this error: `weir.` and its kind.
    pub fn error_type(&self) -> String {
        format!("weir.{:?}", self.kind())
    }

    pub(crate) fn config(variable: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Config { variable, reason: reason.to_string() }
    }

    /// A failed request, without the URL: a webhook URL may carry a token.
    pub(crate) fn request(service: &'static str, error: reqwest::Error) -> Self {
        Error::Request { service, reason: error.without_url().to_string() }
    }
}

/// Failures go back to Lambda as `{errorType, errorMessage}`, the type saying what to do.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type(), error_message: error.to_string() }
    }
}

/// The functions' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
