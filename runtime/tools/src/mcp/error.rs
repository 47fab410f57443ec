//! Errors of MCP clients.

use crate::config_value::MissingEnvVar;

/// An MCP server could not be reached, or did not answer a request.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// A value of the server's configuration names an environment variable that is not set.
    #[error("MCP server `{server}`: {source}")]
    MissingEnvVar {
        /// The server's name.
        server: String,
        /// The variable and the setting.
        source: MissingEnvVar,
    },
    /// A header's name or value is not valid in HTTP; the value is not shown, it may be secret.
    #[error("MCP server `{server}`: header `{header}` has an invalid name or value")]
    InvalidHeader {
        /// The server's name.
        server: String,
        /// The header's name.
        header: String,
    },
    /// The server's process could not be started.
    #[error("MCP server `{server}`: cannot run `{command}`: {source}")]
    Spawn {
        /// The server's name.
        server: String,
        /// The program.
        command: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The server did not complete the MCP handshake.
    #[error("MCP server `{server}`: the connection did not initialize: {reason}")]
    Initialize {
        /// The server's name.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// A request failed: the server answered with an error or the connection is gone.
    #[error("MCP server `{server}`: {request} failed: {reason}")]
    Request {
        /// The server's name.
        server: String,
        /// The request, such as ``prompts/get `summary` ``.
        request: String,
        /// What went wrong.
        reason: String,
    },
}
