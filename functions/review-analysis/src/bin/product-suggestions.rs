//! The product-suggestions agent's process function (a `lambda_runtime` binary). The model's API key
//! may come from the secret `WEIR_MODEL_API_KEY_SECRET` names.

/// Errors are logged where they happen (as JSON, for Lambda); the exit status reports them.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    weir_functions::process::serve_with_model_env(weir_review_analysis::suggestions_agent_with_env).await
}
