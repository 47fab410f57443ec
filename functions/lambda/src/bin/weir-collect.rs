//! `weir-collect`: the Lambda function of `weir_functions::collect`.

/// Errors are logged where they happen (as JSON, for Lambda); the exit status reports them.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    weir_functions::runtime::exit_status(weir_functions::collect::run().await)
}
