//! A Lambda function for the emulator's tests, built on the real `lambda_runtime`: it echoes
//! its payload, and payloads with an `"action"` make it misbehave the ways functions do.
//!
//! With `ECHO_RECORD_DIR` set, every payload is also written to `<dir>/<request id>.json`,
//! which shows that background and triggered invocations ran. With `ECHO_INIT_ERROR` set,
//! the function fails its init, reporting the variable's value to `init/error`.

use std::path::PathBuf;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    /// Answers what the function knows about itself and the invocation.
    Whoami,
    /// Fails with an `EchoFailure`.
    Fail { message: String },
    /// Panics inside the handler.
    Panic { message: String },
    /// Exits the process mid-invocation.
    Exit { code: i32 },
    /// Sleeps, then answers `whoami`.
    Sleep { ms: u64 },
    /// Writes each line to stdout and to stderr.
    Log { lines: Vec<String> },
    /// Invokes another function through the Invoke API in `AWS_ENDPOINT_URL_LAMBDA`.
    Invoke { function: String, payload: Value, invocation_type: String },
    /// Waits until `count` processes have arrived in `dir`, then answers `whoami`: only
    /// concurrent invocations in separate processes get through.
    Rendezvous { dir: PathBuf, count: usize },
}

/// A handled failure, with its own error type.
#[derive(Debug)]
struct EchoFailure(String);

impl From<EchoFailure> for Diagnostic {
    fn from(failure: EchoFailure) -> Self {
        Diagnostic { error_type: "EchoFailure".into(), error_message: failure.0 }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Ok(message) = std::env::var("ECHO_INIT_ERROR") {
        report_init_error(&message).await;
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, EchoFailure> {
    let (payload, context) = event.into_parts();
    if let Some(dir) = std::env::var_os("ECHO_RECORD_DIR") {
        let path = PathBuf::from(dir).join(format!("{}.json", context.request_id));
        std::fs::write(path, payload.to_string()).map_err(|e| EchoFailure(format!("cannot record: {e}")))?;
    }
    let Ok(action) = serde_json::from_value::<Action>(payload.clone()) else { return Ok(payload) };
    let whoami = json!({
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "function_arn": context.invoked_function_arn,
        "trace_id": context.xray_trace_id,
        "client_context": context.client_context.map(|c| c.custom),
        "function_name": context.env_config.function_name,
        "memory": context.env_config.memory,
        "pid": std::process::id(),
    });
    match action {
        Action::Whoami => Ok(whoami),
        Action::Fail { message } => Err(EchoFailure(message)),
        Action::Panic { message } => panic!("{message}"),
        Action::Exit { code } => std::process::exit(code),
        Action::Sleep { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(whoami)
        }
        Action::Log { lines } => {
            for line in &lines {
                println!("{line}");
                eprintln!("{line}");
            }
            Ok(whoami)
        }
        Action::Invoke { function, payload, invocation_type } => invoke(&function, &payload, &invocation_type).await,
        Action::Rendezvous { dir, count } => {
            std::fs::write(dir.join(std::process::id().to_string()), "").map_err(|e| EchoFailure(e.to_string()))?;
            // The emulator's timeout ends the wait when the others never come.
            while std::fs::read_dir(&dir).map_err(|e| EchoFailure(e.to_string()))?.count() < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(whoami)
        }
    }
}

async fn invoke(function: &str, payload: &Value, invocation_type: &str) -> Result<Value, EchoFailure> {
    let failed = |e: reqwest::Error| EchoFailure(format!("invoking `{function}`: {e}"));
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL_LAMBDA").map_err(|_| EchoFailure("no AWS_ENDPOINT_URL_LAMBDA".into()))?;
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/2015-03-31/functions/{function}/invocations"))
        .header("x-amz-invocation-type", invocation_type)
        .json(payload)
        .send()
        .await
        .map_err(failed)?;
    let status = response.status().as_u16();
    let request_id = response.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(failed)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(json!({"status": status, "request_id": request_id, "body": body}))
}

/// What a function does when its configuration is unusable: tell Lambda, then exit.
async fn report_init_error(message: &str) {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API is set by Lambda");
    let diagnostic = json!({"errorType": "EchoInitError", "errorMessage": message});
    let sent = reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .json(&diagnostic)
        .send()
        .await;
    if let Err(e) = sent {
        eprintln!("cannot report the init error: {e}");
    }
}
