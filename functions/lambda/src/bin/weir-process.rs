//! `weir-process`: the process function for a declarative agent, read from `WEIR_AGENT_FILE`
//! (a path, or a store URL the module uploaded it to). Its `environment` models get the API
//! key from the secret `WEIR_MODEL_API_KEY_SECRET` names. Agents written in Rust link
//! `weir_functions::process::serve` into a binary of their own.

use weir_agent::WorkflowAgent;
use weir_functions::secrets::ModelEnvironment;
use weir_functions::{AwsClients, Error, agent_file};

async fn load() -> Result<WorkflowAgent, Error> {
    let invalid = |reason: String| Error::Config { variable: "WEIR_AGENT_FILE", reason };
    let location = std::env::var("WEIR_AGENT_FILE").ok().filter(|v| !v.trim().is_empty());
    let path = agent_file::local_copy(location.ok_or_else(|| invalid("is not set".into()))?.trim()).await?;
    let env = ModelEnvironment::load(AwsClients::from_env).await?;
    let loader = weir_agent::declarative::Loader::new().environment(move |name| env.get(name));
    let declared = loader.load(&path).await.map_err(|e| invalid(e.to_string()))?;
    tracing::info!(agent = %declared.name, file = %path.display(), "declarative agent loaded");
    Ok(declared.agent)
}

/// Errors are logged where they happen (as JSON, for Lambda); the exit status reports them.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    weir_functions::runtime::exit_status(weir_functions::process::serve_counted(load()).await)
}
