//! The Lambda emulator runs an unmodified `lambda_runtime` binary (`echo-lambda`) and
//! answers as Lambda does: responses, function errors, timeouts, crashes, init errors,
//! concurrency, background invocations, logs, functions invoking functions, triggers,
//! shutdown, function URLs, and the AWS CLI as a client.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use weir_emulator::{Emulator, Error, FunctionSpec, LogStream, Trigger};
use weir_engine::{EventLog, LogEvent};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::backends::{Backend, fresh_storage};

/// How long a test waits for something that should happen, before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

fn echo(name: &str) -> FunctionSpec {
    FunctionSpec::new(name, env!("CARGO_BIN_EXE_echo-lambda")).with_timeout(Duration::from_secs(30))
}

async fn start(functions: impl IntoIterator<Item = FunctionSpec>) -> Emulator {
    let builder = functions.into_iter().fold(Emulator::builder(), |builder, spec| builder.function(spec));
    builder.start().await.expect("the emulator starts")
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future).await.unwrap_or_else(|_| panic!("{what}: nothing after {PATIENCE:?}"))
}

/// Invokes `function` with `payload` and answers the parsed response; panics on a function error.
async fn invoke_json(emulator: &Emulator, function: &str, payload: Value) -> Value {
    let output = within("invocation", emulator.invoke(function, payload.to_string())).await.expect("invoked");
    assert_eq!(output.function_error, None, "payload: {}", String::from_utf8_lossy(&output.payload));
    serde_json::from_slice(&output.payload).expect("a JSON response")
}

/// A POST to the Invoke API, as an AWS SDK sends it.
async fn http_invoke(emulator: &Emulator, function: &str, invocation_type: &str, payload: &Value) -> reqwest::Response {
    let url = format!("{}/2015-03-31/functions/{function}/invocations", emulator.invoke_url());
    let request = reqwest::Client::new().post(url).header("x-amz-invocation-type", invocation_type).json(payload);
    within("Invoke API", request.send()).await.expect("the Invoke API answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn pid_of(whoami: &Value) -> u32 {
    whoami["pid"].as_u64().expect("a pid") as u32
}

/// Whether the process exists and is not a zombie awaiting its parent.
fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The payloads `echo-lambda` recorded in `dir`, by request id.
fn recorded(dir: &Path) -> Vec<(String, Value)> {
    let mut records = Vec::new();
    for entry in fs::read_dir(dir).expect("record dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A record being written is not complete JSON yet.
        if let (Some(id), Ok(payload)) =
            (name.strip_suffix(".json"), serde_json::from_slice(&fs::read(entry.path()).unwrap_or_default()))
        {
            records.push((id.to_owned(), payload));
        }
    }
    records
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64
}

#[tokio::test]
async fn response_round_trip_carries_request_id_deadline_and_context() {
    let timeout = Duration::from_secs(30);
    let emulator = start([echo("echo").with_timeout(timeout).with_memory_mb(256)]).await;

    let response = http_invoke(&emulator, "echo", "RequestResponse", &json!({"hello": ["world", 1]})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(header(&response, "x-amz-function-error"), None);
    assert!(header(&response, "x-amzn-requestid").is_some_and(|id| id.len() == 36));
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"hello": ["world", 1]}), "echoed unchanged");

    let before = now_ms();
    let url = format!("{}/2015-03-31/functions/echo/invocations", emulator.invoke_url());
    // {"custom":{"tenant":"t-1"}}, base64-encoded as the Invoke API takes it.
    let request = reqwest::Client::new()
        .post(url)
        .header("x-amz-client-context", "eyJjdXN0b20iOnsidGVuYW50IjoidC0xIn19")
        .json(&json!({"action": "whoami"}));
    let response = within("whoami", request.send()).await.unwrap();
    let after = now_ms();
    let request_id = header(&response, "x-amzn-requestid").unwrap().to_owned();
    let whoami: Value = response.json().await.unwrap();
    assert_eq!(whoami["request_id"], request_id.as_str(), "the function saw the request id the caller got");
    let deadline = whoami["deadline_ms"].as_u64().unwrap();
    let timeout_ms = timeout.as_millis() as u64;
    assert!(
        (before + timeout_ms..=after + timeout_ms).contains(&deadline),
        "deadline {deadline} is the timeout from hand-over"
    );
    assert_eq!(whoami["function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo");
    assert_eq!(whoami["function_name"], "echo");
    assert_eq!(whoami["memory"], 256);
    assert!(whoami["trace_id"].as_str().is_some_and(|t| t.starts_with("Root=1-")));
    assert_eq!(whoami["client_context"], json!({"tenant": "t-1"}));
    emulator.shutdown().await;
}

#[tokio::test]
async fn function_errors_come_back_unhandled_in_the_error_shape() {
    let emulator = start([echo("echo").with_concurrency(1)]).await;

    let response =
        http_invoke(&emulator, "echo", "RequestResponse", &json!({"action": "fail", "message": "bad input"})).await;
    assert_eq!(response.status(), 200, "a function error is not an API error");
    assert_eq!(header(&response, "x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"errorType": "EchoFailure", "errorMessage": "bad input"})
    );

    let first = invoke_json(&emulator, "echo", json!({"action": "whoami"})).await;
    let panicked = emulator.invoke("echo", json!({"action": "panic", "message": "boom"}).to_string()).await.unwrap();
    let error = panicked.function_error.expect("a panic is a function error");
    assert!(error.error_message.contains("boom"), "{error:?}");
    let after = invoke_json(&emulator, "echo", json!({"action": "whoami"})).await;
    assert_eq!(pid_of(&after), pid_of(&first), "lambda_runtime catches the panic: the process lives on");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_timeout_kills_the_process_and_the_next_invocation_gets_a_fresh_one() {
    let emulator = start([echo("slow").with_timeout(Duration::from_secs(1)).with_concurrency(1)]).await;
    let first = pid_of(&invoke_json(&emulator, "slow", json!({"action": "whoami"})).await);

    let output = within("timeout", emulator.invoke("slow", json!({"action": "sleep", "ms": 600_000}).to_string()))
        .await
        .unwrap();
    let error = output.function_error.expect("timed out");
    assert_eq!(error.error_type, "Sandbox.Timedout");
    assert!(error.error_message.ends_with("Task timed out after 1.00 seconds"), "{error:?}");
    assert!(error.error_message.contains(&output.request_id));
    assert!(!is_running(first), "the timed-out process was killed");

    let second = pid_of(&invoke_json(&emulator, "slow", json!({"action": "whoami"})).await);
    assert_ne!(second, first);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_crash_mid_invocation_is_an_exit_error_and_the_process_is_replaced() {
    let emulator = start([echo("echo").with_concurrency(1)]).await;
    let first = pid_of(&invoke_json(&emulator, "echo", json!({"action": "whoami"})).await);

    let response = http_invoke(&emulator, "echo", "RequestResponse", &json!({"action": "exit", "code": 3})).await;
    assert_eq!(header(&response, "x-amz-function-error"), Some("Unhandled"));
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(error["errorMessage"].as_str().unwrap().contains("exit status: 3"), "{error}");
    assert!(!is_running(first));

    let second = pid_of(&invoke_json(&emulator, "echo", json!({"action": "whoami"})).await);
    assert_ne!(second, first);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_process_that_died_while_idle_is_replaced_silently() {
    let emulator = start([echo("echo").with_concurrency(1)]).await;
    let first = pid_of(&invoke_json(&emulator, "echo", json!({"action": "whoami"})).await);
    let killed = std::process::Command::new("kill").args(["-KILL", &first.to_string()]).status().unwrap();
    assert!(killed.success());
    wait_until("the process to die", || !is_running(first)).await;

    let second = pid_of(&invoke_json(&emulator, "echo", json!({"action": "whoami"})).await);
    assert_ne!(second, first);
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_init_error_is_reported_to_the_caller() {
    let emulator = start([echo("broken").with_env("ECHO_INIT_ERROR", "WEIR_STORE is not set")]).await;
    for _ in 0..2 {
        let output = within("init error", emulator.invoke("broken", "{}")).await.unwrap();
        let error = output.function_error.expect("init failed");
        assert_eq!(
            (error.error_type.as_str(), error.error_message.as_str()),
            ("EchoInitError", "WEIR_STORE is not set")
        );
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn concurrent_invocations_run_in_separate_environments_up_to_the_limit() {
    let emulator = start([echo("echo").with_concurrency(2)]).await;
    let meeting = TempDir::new();
    let rendezvous = json!({"action": "rendezvous", "dir": meeting.path(), "count": 2});
    // Each waits for the other: they complete only if they run at once, in two processes.
    let (a, b) = tokio::join!(
        invoke_json(&emulator, "echo", rendezvous.clone()),
        invoke_json(&emulator, "echo", rendezvous.clone())
    );
    let warm: BTreeSet<u32> = [pid_of(&a), pid_of(&b)].into();
    assert_eq!(warm.len(), 2, "two environments");

    let sleeps = (0..5).map(|_| invoke_json(&emulator, "echo", json!({"action": "sleep", "ms": 50})));
    let pids: BTreeSet<u32> = futures::future::join_all(sleeps).await.iter().map(pid_of).collect();
    assert!(pids.is_subset(&warm), "never more than 2 environments, reused warm: {pids:?} within {warm:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_synchronous_invocation_beyond_the_concurrency_is_throttled_as_on_lambda() {
    let emulator = start([echo("echo").with_concurrency(1)]).await;
    let meeting = TempDir::new();
    // Holds the one environment until a second arrival, which this test fakes below.
    emulator
        .invoke_in_background("echo", json!({"action": "rendezvous", "dir": meeting.path(), "count": 2}).to_string())
        .unwrap();
    wait_until("the first invocation to hold the environment", || fs::read_dir(meeting.path()).unwrap().count() == 1)
        .await;

    let throttled = http_invoke(&emulator, "echo", "RequestResponse", &json!({"n": 1})).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(header(&throttled, "x-amzn-errortype"), Some("TooManyRequestsException"));
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");
    // An asynchronous invocation is queued instead, as Lambda's event queue does.
    assert_eq!(http_invoke(&emulator, "echo", "Event", &json!({"n": 2})).await.status(), 202);

    fs::write(meeting.path().join("released-by-the-test"), "").unwrap();
    // Retried as the AWS CLI retries a throttle: answered once the environment is free (the
    // queued Event invocation may take it first).
    within("a retried invocation to be answered", async {
        loop {
            let response = http_invoke(&emulator, "echo", "RequestResponse", &json!({"action": "whoami"})).await;
            match response.status().as_u16() {
                200 => break,
                429 => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("{other}: {}", response.text().await.unwrap_or_default()),
            }
        }
    })
    .await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn event_invocations_run_in_the_background_and_dry_runs_only_check() {
    let records = TempDir::new();
    let emulator = start([echo("echo").with_env("ECHO_RECORD_DIR", records.path().to_string_lossy())]).await;

    let dry_run = http_invoke(&emulator, "echo", "DryRun", &json!({"n": 0})).await;
    assert_eq!(dry_run.status(), 204);

    let response = http_invoke(&emulator, "echo", "Event", &json!({"n": 1})).await;
    assert_eq!(response.status(), 202);
    let request_id = header(&response, "x-amzn-requestid").expect("a request id").to_owned();
    let library_request_id = emulator.invoke_in_background("echo", json!({"n": 2}).to_string()).unwrap();

    wait_until("both background invocations", || recorded(records.path()).len() == 2).await;
    let mut records = recorded(records.path());
    records.sort_by_key(|(_, payload)| payload["n"].as_u64());
    assert_eq!(records, [(request_id, json!({"n": 1})), (library_request_id, json!({"n": 2}))]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn unknown_functions_are_resource_not_found() {
    let emulator = start([echo("echo")]).await;
    for invocation_type in ["RequestResponse", "Event", "DryRun"] {
        let response = http_invoke(&emulator, "nope", invocation_type, &json!({})).await;
        assert_eq!(response.status(), 404);
        assert_eq!(header(&response, "x-amzn-errortype"), Some("ResourceNotFoundException"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["Message"], "Function not found: nope");
    }
    assert!(matches!(emulator.invoke("nope", "{}").await, Err(Error::UnknownFunction(name)) if name == "nope"));
    emulator.shutdown().await;
}

#[tokio::test]
async fn log_lines_carry_the_function_and_request_id() {
    let emulator = start([echo("chatty")]).await;
    let mut logs = emulator.subscribe_logs();
    let lines = ["first line", "second line"];
    let (a, b) = tokio::join!(
        emulator.invoke("chatty", json!({"action": "log", "lines": ["a: first line", "a: second line"]}).to_string()),
        emulator.invoke("chatty", json!({"action": "log", "lines": ["b: first line", "b: second line"]}).to_string()),
    );
    let ids = [("a", a.unwrap().request_id), ("b", b.unwrap().request_id)];

    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (prefix, request_id) in &ids {
        for line in lines {
            expected.insert((request_id.clone(), format!("{prefix}: {line}"), "out".into()));
            expected.insert((request_id.clone(), format!("{prefix}: {line}"), "err".into()));
        }
    }
    within("every line", async {
        while !expected.is_empty() {
            let line = logs.recv().await.expect("log lines");
            assert_eq!(line.function, "chatty");
            let stream = match line.stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
                LogStream::Platform => continue,
            };
            expected.remove(&(line.request_id.clone().unwrap_or_default(), line.text.clone(), stream.into()));
        }
    })
    .await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_function_invokes_another_through_the_emulator() {
    let records = TempDir::new();
    let emulator =
        start([echo("caller"), echo("callee").with_env("ECHO_RECORD_DIR", records.path().to_string_lossy())]).await;
    let call = json!({"action": "invoke", "function": "callee", "payload": {"action": "whoami"}, "invocation_type": "RequestResponse"});
    let answer = invoke_json(&emulator, "caller", call).await;
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["function_name"], "callee");
    assert_eq!(answer["body"]["request_id"], answer["request_id"]);

    // Continuation: a function queues another run of itself, or of another, and returns.
    let queue =
        json!({"action": "invoke", "function": "callee", "payload": {"continue": true}, "invocation_type": "Event"});
    let answer = invoke_json(&emulator, "caller", queue).await;
    assert_eq!(answer["status"], 202);
    let request_id = answer["request_id"].as_str().unwrap().to_owned();
    wait_until("the queued invocation", || recorded(records.path()).iter().any(|(id, _)| *id == request_id)).await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_log_segment_trigger_invokes_with_the_partitions_that_moved() {
    let records = TempDir::new();
    let (storage, _store_dir) = fresh_storage(Backend::File);
    let trigger = Trigger::LogSegments {
        function: "process".into(),
        storage: storage.clone(),
        poll_every: Duration::from_millis(50),
    };
    let emulator = Emulator::builder()
        .function(echo("process").with_env("ECHO_RECORD_DIR", records.path().to_string_lossy()))
        .trigger(trigger)
        .start()
        .await
        .unwrap();
    // No log yet: the trigger polls without invoking.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(recorded(records.path()).is_empty());

    let log = EventLog::create(storage, 4).await.unwrap();
    let appended = log.append("batch-1", &[LogEvent::json("review-1", &json!({"stars": 5}))]).await.unwrap();
    let partition = appended[0].partition;
    wait_until("a triggered invocation", || !recorded(records.path()).is_empty()).await;
    assert_eq!(recorded(records.path())[0].1, json!({"partitions": [partition]}));

    let other_key = (0..).map(|n| format!("review-{n}")).find(|key| log.partition_of(key) != partition).unwrap();
    let second = log.append("batch-2", &[LogEvent::json(&other_key, &json!({"stars": 1}))]).await.unwrap();
    wait_until("a second triggered invocation", || recorded(records.path()).len() == 2).await;
    let payloads: Vec<Value> = recorded(records.path()).into_iter().map(|(_, payload)| payload).collect();
    assert!(payloads.contains(&json!({"partitions": [second[0].partition]})), "only the moved partition: {payloads:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_schedule_trigger_invokes_with_its_payload() {
    let records = TempDir::new();
    let trigger = Trigger::Schedule {
        function: "tick".into(),
        every: Duration::from_millis(100),
        payload: json!({"tick": true}),
    };
    let emulator = Emulator::builder()
        .function(echo("tick").with_env("ECHO_RECORD_DIR", records.path().to_string_lossy()))
        .trigger(trigger)
        .start()
        .await
        .unwrap();
    wait_until("two ticks", || recorded(records.path()).len() >= 2).await;
    assert!(recorded(records.path()).iter().all(|(_, payload)| *payload == json!({"tick": true})));
    emulator.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_child_processes() {
    let emulator = start([echo("echo").with_concurrency(2)]).await;
    let meeting = TempDir::new();
    let rendezvous = json!({"action": "rendezvous", "dir": meeting.path(), "count": 2});
    let (a, b) = tokio::join!(
        invoke_json(&emulator, "echo", rendezvous.clone()),
        invoke_json(&emulator, "echo", rendezvous.clone())
    );
    let slow = emulator.invoke_in_background("echo", json!({"action": "sleep", "ms": 100}).to_string()).unwrap();
    assert!(!slow.is_empty());
    let pids = [pid_of(&a), pid_of(&b)];
    assert!(pids.iter().all(|&pid| is_running(pid)));

    within("shutdown", emulator.shutdown()).await;
    for pid in pids {
        assert!(!is_running(pid), "process {pid} outlived the shutdown");
    }
}

#[tokio::test]
async fn dropping_the_emulator_kills_its_processes() {
    let emulator = start([echo("echo")]).await;
    let pid = pid_of(&invoke_json(&emulator, "echo", json!({"action": "whoami"})).await);
    let busy = {
        let url = format!("{}/2015-03-31/functions/echo/invocations", emulator.invoke_url());
        tokio::spawn(reqwest::Client::new().post(url).json(&json!({"action": "sleep", "ms": 600_000})).send())
    };
    drop(emulator);
    wait_until("the idle process to be killed", || !is_running(pid)).await;
    // The invocation in flight is abandoned and answered, not left hanging.
    let abandoned = within("the abandoned invocation", busy).await.unwrap();
    assert!(abandoned.is_err() || abandoned.is_ok_and(|r| r.status() != 200));
}

/// `aws` from `$WEIR_AWS_CLI` (set by `.ci/run`), else on `PATH`, else in `.ci/venv/bin`.
fn aws_cli() -> PathBuf {
    if let Some(path) = env::var_os("WEIR_AWS_CLI") {
        return PathBuf::from(path);
    }
    let on_path =
        env::var_os("PATH").map(|paths| env::split_paths(&paths).map(|dir| dir.join("aws")).collect::<Vec<_>>());
    let in_workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().map(|dir| dir.join(".ci/venv/bin/aws"));
    on_path
        .unwrap_or_default()
        .into_iter()
        .chain(in_workspace)
        .find(|path| fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0))
        .expect("the AWS CLI (`aws`) was not found ($WEIR_AWS_CLI, PATH, .ci/venv/bin): run `.ci/run` from the repository root, which installs it, or `pip install awscli`")
}

fn is_aws_cli_v2(aws: &Path) -> bool {
    let version = std::process::Command::new(aws).arg("--version").output().expect("`aws --version` runs");
    // Version 1 prints its version to stderr, version 2 to stdout.
    [version.stdout, version.stderr].iter().any(|out| out.starts_with(b"aws-cli/2."))
}

/// `aws lambda <operation>` against the emulator, isolated from the machine's AWS profile.
fn aws_lambda(aws: &Path, emulator: &Emulator, operation: &str) -> std::process::Command {
    let mut command = std::process::Command::new(aws);
    command
        .args(["lambda", operation, "--endpoint-url", emulator.invoke_url()])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "")
        .env_remove("AWS_PROFILE");
    command
}

/// Runs `aws lambda invoke` against the emulator; answers its exit code, its standard output
/// (the invocation's metadata) and the response payload it wrote.
async fn aws_lambda_invoke(emulator: &Emulator, function: &str, payload: &str) -> (Option<i32>, Value, Value) {
    let out_dir = TempDir::new();
    let out_file = out_dir.path().join("out.json");
    let aws = aws_cli();
    let mut command = aws_lambda(&aws, emulator, "invoke");
    command.args(["--function-name", function]);
    // Version 2 reads `--payload` as base64 unless told otherwise; version 1 (PyPI's `awscli`)
    // takes it raw and knows no such option.
    if is_aws_cli_v2(&aws) {
        command.args(["--cli-binary-format", "raw-in-base64-out"]);
    }
    command.args(["--payload", payload]).arg(&out_file);
    let output = within("aws lambda invoke", tokio::task::spawn_blocking(move || command.output())).await.unwrap();
    let output = output.unwrap_or_else(|e| panic!("cannot run the AWS CLI: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let metadata =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("aws printed no JSON; stderr: {stderr}"));
    let written = serde_json::from_slice(&fs::read(&out_file).unwrap_or_default()).unwrap_or(Value::Null);
    (output.status.code(), metadata, written)
}

#[tokio::test]
async fn the_aws_cli_invokes_functions() {
    let emulator = start([echo("echo")]).await;

    let (code, metadata, written) = aws_lambda_invoke(&emulator, "echo", r#"{"from": "the cli"}"#).await;
    assert_eq!(code, Some(0));
    assert_eq!(metadata["StatusCode"], 200);
    assert_eq!(metadata["ExecutedVersion"], "$LATEST");
    assert_eq!(written, json!({"from": "the cli"}));

    let (code, metadata, written) =
        aws_lambda_invoke(&emulator, "echo", r#"{"action": "fail", "message": "no"}"#).await;
    assert_eq!(code, Some(0), "a function error is reported, not a CLI failure");
    assert_eq!(metadata["FunctionError"], "Unhandled");
    assert_eq!(written, json!({"errorType": "EchoFailure", "errorMessage": "no"}));
    emulator.shutdown().await;
}

/// A function URL turns each HTTP request into Lambda's function URL event (payload 2.0) and
/// the answer into the response; the AWS CLI's `get-function-url-config` finds the URL, and a
/// function without one is `ResourceNotFoundException`.
#[tokio::test]
async fn function_urls_invoke_with_lambdas_event_and_the_aws_cli_finds_them() {
    let emulator = start([echo("echo").with_url(0), echo("plain")]).await;
    let url = emulator.function_url("echo").expect("echo has a URL").to_string();
    assert!(emulator.function_url("plain").is_none());

    let response = reqwest::Client::new()
        .post(format!("{url}orders/7?approval=a%2Eb&approval=c"))
        .header("content-type", "application/json")
        .header("cookie", "a=1; b=2")
        .body(r#"{"n": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event: Value = response.json().await.unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/orders/7");
    assert_eq!(event["rawQueryString"], "approval=a%2Eb&approval=c");
    assert_eq!(event["queryStringParameters"], json!({"approval": "a.b,c"}));
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(event["headers"]["content-type"], "application/json");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!((event["body"].clone(), event["isBase64Encoded"].clone()), (json!(r#"{"n": 1}"#), json!(false)));

    let get = within("function URL", reqwest::Client::new().get(&url).send()).await.unwrap();
    assert_eq!(get.status(), 200, "a GET is an event too: {}", get.text().await.unwrap());

    let aws = aws_cli();
    // The CLI blocks: run it off the runtime that serves the emulator.
    let config = |function: &str| {
        let mut command = aws_lambda(&aws, &emulator, "get-function-url-config");
        command.args(["--function-name", function]);
        async move {
            within("aws lambda get-function-url-config", tokio::task::spawn_blocking(move || command.output()))
                .await
                .unwrap()
                .expect("the AWS CLI runs")
        }
    };
    let found = config("echo").await;
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    let found: Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found["FunctionUrl"], url.as_str());
    assert_eq!(found["AuthType"], "NONE");
    let missing = config("plain").await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"), "{missing:?}");
    emulator.shutdown().await;
}
