//! Errors of the emulator itself, as opposed to a function's own failures, which are
//! answered as function errors (see [`crate::FunctionError`]).

use std::net::SocketAddr;

/// Why the emulator could not start or could not take an invocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No function of that name was registered with the emulator.
    #[error("function not found: `{0}`")]
    UnknownFunction(String),
    /// A function or trigger definition is unusable; fix it and start again.
    #[error("invalid emulator setup: {0}")]
    InvalidSetup(String),
    /// A listener could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why the bind failed.
        source: std::io::Error,
    },
    /// A synchronous invocation found every environment of the function busy: Lambda answers
    /// it with a 429 (`TooManyRequestsException`) rather than queue it.
    #[error("function `{function}` is already running its {concurrency} concurrent invocations")]
    Throttled {
        function: String,
        /// Its concurrency, all in use.
        concurrency: usize,
    },
    /// The emulator is shutting down and takes no more invocations.
    #[error("the emulator is shutting down")]
    ShuttingDown,
}

/// The emulator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
