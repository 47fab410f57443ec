//! What can go wrong in a `weir` command, each said in one line that names the culprit.

use std::path::PathBuf;

/// A failed command. `main` prints it as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store, the log or a commit could not be read or written.
    #[error(transparent)]
    Engine(#[from] weir_engine::Error),
    /// A knowledge base could not be read, written or searched.
    #[error(transparent)]
    Search(#[from] weir_search::SearchError),
    /// The emulator could not start or invoke a function.
    #[error("emulator: {0}")]
    Emulator(#[from] weir_emulator::Error),
    /// The agent could not be built.
    #[error("agent `{name}`: {reason}")]
    Agent {
        /// The agent as `--agent` named it.
        name: String,
        /// Why it could not be built.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Input that cannot be used as given: a malformed record, a bad flag value.
    #[error("{0}")]
    Input(String),
    /// A function binary is missing or could not be built.
    #[error("{0}")]
    Binary(String),
    /// Some input records were refused and set aside; the rest was used.
    #[error("{0}")]
    Refused(String),
    /// An evaluated version did worse than its gate allows.
    #[error("{0}")]
    Regressed(String),
    /// A function failed, or the work did not finish in time.
    #[error("{0}")]
    Function(String),
}

impl CliError {
    /// A file error naming `path`.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::File { path: path.into(), source }
    }
}

impl CliError {
    /// The exit code: 3 when records were refused but the rest was ingested, so that a script
    /// can tell it from a failure (1) and from a usage error (2, clap's); 75 (`EX_TEMPFAIL`)
    /// when something the events need is down and nothing was lost: run it again later.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(_) => 3,
            CliError::Engine(e) if e.kind() == weir_engine::ErrorKind::Unavailable => 75,
            _ => 1,
        }
    }
}

/// Writes a command's output to standard output. A closed pipe (`weir outputs | head`) is
/// the reader's choice, not an error.
pub fn write_out(bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::file("standard output", e)),
        _ => Ok(()),
    }
}

/// The result of a command.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
