//! `weir-process`: the process function for a declarative agent, read from `WEIR_AGENT_FILE`.
//! Agents written in Rust link `weir_functions::process::serve` into a binary of their own.

use std::path::PathBuf;
use std::sync::Arc;

use weir_engine::Agent;
use weir_functions::Error;

async fn load() -> Result<Arc<dyn Agent>, Error> {
    let invalid = |reason: String| Error::Config { variable: "WEIR_AGENT_FILE", reason };
    let path = std::env::var_os("WEIR_AGENT_FILE").map(PathBuf::from).ok_or_else(|| invalid("is not set".into()))?;
    let declared = weir_agent::declarative::load(&path).await.map_err(|e| invalid(e.to_string()))?;
    tracing::info!(agent = %declared.name, file = %path.display(), "declarative agent loaded");
    Ok(Arc::new(declared.agent))
}

/// Errors are logged where they happen (as JSON, for Lambda); the exit status reports them.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    weir_functions::runtime::exit_status(weir_functions::process::serve_loaded(load()).await)
}
