//! The review-analysis agent's process function (a `lambda_runtime` binary).

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), weir_functions::Error> {
    let agent = match weir_review_analysis::agent_from_env() {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("review-analysis: {e}");
            std::process::exit(1);
        }
    };
    weir_functions::process::run(Arc::new(agent)).await
}
