//! What every function binary does around its handler: JSON logs, the init error, the
//! Lambda run loop.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::work::{Deadline, PartitionRequest};

/// Logs as JSON lines on stdout, where Lambda captures them, filtered by `RUST_LOG`
/// (default `info`). Does nothing if a subscriber is already installed.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

/// Runs a function's initialisation; a failure is logged and reported to the Runtime API's
/// `/init/error`, so that Lambda shows it as the init error, then returned.
pub async fn init<T>(initialisation: impl Future<Output = Result<T>>) -> Result<T> {
    let error = match initialisation.await {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    tracing::error!(error = %error, "initialisation failed");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        let error_type = error.error_type();
        let body = serde_json::json!({"errorType": error_type, "errorMessage": error.to_string()});
        let report = reqwest::Client::new()
            .post(format!("http://{api}/2018-06-01/runtime/init/error"))
            .header("Lambda-Runtime-Function-Error-Type", &error_type)
            .json(&body)
            .send()
            .await;
        if let Err(e) = report {
            tracing::error!(error = %e.without_url(), "could not report the init error to the Runtime API");
        }
    }
    Err(error)
}

/// Serves invocations with `handler` until Lambda stops the environment: payloads are
/// decoded as `T`, answers encoded as JSON, errors sent as `{errorType, errorMessage}`.
pub async fn serve<T, R, F, Fut>(handler: F) -> Result<()>
where
    T: DeserializeOwned,
    R: Serialize,
    F: Fn(T, lambda_runtime::Context) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    let service = lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<T>| {
        let answer = handler(event.payload, event.context);
        async move { answer.await.map_err(lambda_runtime::Diagnostic::from) }
    });
    lambda_runtime::run(service).await.map_err(|e| {
        tracing::error!(error = %e, "the Lambda run loop stopped");
        Error::Request { service: "Lambda Runtime API", reason: e.to_string() }
    })
}

/// Serves a function over partitions (process, dispatch): each invocation's payload is a
/// [`PartitionRequest`], handled until the invocation's deadline less `margin`.
pub async fn serve_partitions<R, F, Fut>(margin: Duration, handle: F) -> Result<()>
where
    R: Serialize,
    F: Fn(PartitionRequest, Deadline) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    serve(|request: PartitionRequest, context| handle(request, Deadline::of(&context, margin))).await
}

/// How a function binary's run ended, as its exit status: errors were logged where they
/// happened, so only success or failure is left to report.
pub fn exit_status(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}
