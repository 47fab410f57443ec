//! The ops-diagnosis agent's process function (a `lambda_runtime` binary). The model's API
//! key may come from the secret `WEIR_MODEL_API_KEY_SECRET` names.

use std::sync::Arc;

use weir_engine::Agent;
use weir_functions::secrets::ModelEnvironment;
use weir_functions::{AwsClient, Error};

async fn load() -> Result<Arc<dyn Agent>, Error> {
    let env = ModelEnvironment::load(AwsClient::from_env).await?;
    let agent = weir_ops_diagnosis::agent_with_env(&|name| env.get(name))
        .map_err(|e| Error::Config { variable: "WEIR_MODEL_PROVIDER", reason: e.to_string() })?;
    Ok(Arc::new(agent))
}

/// Errors are logged where they happen (as JSON, for Lambda); the exit status reports them.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match weir_functions::process::run_loaded(load()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
