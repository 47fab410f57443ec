//! Errors of the engine: one public enum whose [`ErrorKind`] tells the caller what to do.

/// What went wrong, in the detail an operator needs; [`Error::kind`] says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another invocation committed first: this one must stop.
    #[error("fenced: partition={partition} seq={seq} was committed by another invocation")]
    Fenced { partition: u32, seq: u64 },
    /// Another invocation's lease holds the partition: leave it to that invocation.
    #[error("leased: partition={partition} is held by another invocation until {until_ms} ms since the epoch")]
    Leased { partition: u32, until_ms: u64 },
    /// A request to the object store failed; [`Error::kind`] tells a passing failure
    /// (network, throttling, 5xx) from a missing object or a refused permission.
    #[error("object store request failed: {0}")]
    Store(#[from] object_store::Error),
    /// There is no event log under the store's root.
    #[error("no event log at `{root}`: create one first")]
    NoLog { root: String },
    /// Something the partition's events need (a model, a tool, the store) cannot be reached:
    /// the partition stays at its last commit; try again after a while.
    #[error("unavailable: partition={partition} waits at its last commit: {reason}")]
    Unavailable { partition: u32, reason: String },
    /// Work stopped before it finished (its task was cancelled): run it again.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// An object exists but cannot be understood.
    #[error("corrupt object at `{path}`: {reason}")]
    Corrupt { path: String, reason: String },
    /// The caller passed something unusable: a bad store URL, agent name, setting or event.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// What the caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A newer invocation owns the partition: stop without retrying.
    Fenced,
    /// Another invocation holds the partition under a live lease: leave it; that one, or
    /// the first claim after its lease ends, carries on.
    Leased,
    /// A transient failure: run the invocation again.
    Retryable,
    /// A dependency is down: nothing was lost; back off, then run the invocation again.
    Unavailable,
    /// Fix the input or configuration; retrying will not help.
    InvalidInput,
    /// Stored data is damaged or of an unknown format: needs an operator.
    Corrupt,
}

impl Error {
    /// What the caller should do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Fenced { .. } => ErrorKind::Fenced,
            Error::Leased { .. } => ErrorKind::Leased,
            Error::Store(store) => match store {
                // A committed object that is gone: the store was damaged.
                object_store::Error::NotFound { .. } => ErrorKind::Corrupt,
                // Another writer changed what a conditional request relied on.
                object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
                    ErrorKind::Fenced
                }
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
                | object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. }
                | object_store::Error::UnknownConfigurationKey { .. }
                | object_store::Error::InvalidPath { .. } => ErrorKind::InvalidInput,
                _ => ErrorKind::Retryable,
            },
            Error::NoLog { .. } => ErrorKind::InvalidInput,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Interrupted(_) => ErrorKind::Retryable,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }

    pub(crate) fn corrupt(path: impl std::fmt::Display, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt { path: path.to_string(), reason: reason.to_string() }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
