//! The functions' AWS calls made from their binaries under the emulator: a Lambda Invoke
//! through the emulator's Invoke API, and a dispatch to SQS on moto signed with credentials
//! from the container credentials endpoint, as Lambda SnapStart and ECS provide them.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::Format;
use axum::http::HeaderMap;
use common::{Counter, seeded_log};
use serde_json::{Value, json};
use weir_emulator::{Emulator, FunctionSpec};
use weir_engine::{Engine, EventLog, Storage};
use weir_functions::{AwsClients, LambdaInvoker};
use weir_tests::backends::tempfile_guard::TempDir;

/// How long a test waits for something that should happen, before failing instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// A directory store: its URL for the functions, and the store for the test.
fn directory_store() -> (TempDir, String, Storage) {
    let dir = TempDir::new();
    let url = format!("file://{}", dir.path().display());
    let storage = Storage::from_url(&url).unwrap();
    (dir, url, storage)
}

async fn emulator(spec: FunctionSpec) -> Emulator {
    Emulator::builder().function(spec.with_timeout(Duration::from_secs(30))).start().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoke_reaches_the_function_through_the_emulators_invoke_api() {
    let (_dir, url, storage) = directory_store();
    let ingest = FunctionSpec::new("ingest", env!("CARGO_BIN_EXE_weir-ingest")).with_env("WEIR_STORE", &url);
    let emulator = emulator(ingest.with_env("WEIR_PARTITIONS", "2")).await;
    let aws = AwsClients::load(AwsClients::defaults().endpoint_url(emulator.invoke_url()).test_credentials()).await;

    let request = json!({
        "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "POST"}},
        "headers": {"idempotency-key": "invoke-test-1"},
        "body": "{\"key\": \"user-1\", \"clicks\": 3}",
        "isBase64Encoded": false
    });
    LambdaInvoker::new(&aws).invoke_async("ingest", &request).await.unwrap();

    let appended = async {
        loop {
            if let Ok(log) = EventLog::open(storage.clone()).await {
                let mut segments = 0;
                for p in 0..log.partitions() {
                    segments += log.segments(p).await.unwrap().len();
                }
                if segments > 0 {
                    return segments;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(tokio::time::timeout(PATIENCE, appended).await.expect("the event invocation ran"), 1);
    emulator.shutdown().await;
}

/// A container credentials endpoint: answers every request with temporary credentials and
/// records the `Authorization` header each came with.
async fn credentials_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            let token = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
            record.lock().unwrap().push(token.unwrap_or_default());
            let expiration = aws_smithy_types::DateTime::from(SystemTime::now() + Duration::from_secs(3600));
            axum::Json(json!({
                "AccessKeyId": "ASIACONTAINER",
                "SecretAccessKey": "container-secret",
                "Token": "container-session",
                "Expiration": expiration.fmt(Format::DateTime).unwrap(),
            }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/credentials", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_signs_with_container_credentials_when_the_environment_has_none() {
    let (_dir, url, storage) = directory_store();
    seeded_log(&storage, 1, 5).await;
    let engine = Engine::builder(storage.clone(), "counter", Arc::new(Counter)).build().unwrap();
    assert_eq!(engine.drain().await.unwrap().outputs, 5);

    let moto = weir_tests::moto::shared().endpoint();
    let aws = AwsClients::load(AwsClients::defaults().endpoint_url(&moto).test_credentials()).await;
    let name = format!("weir-container-{:08x}", fastrand::u32(..));
    let queue_url = aws.sqs(None).create_queue().queue_name(name).send().await.unwrap();
    let queue_url = queue_url.queue_url().unwrap().to_string();
    let (credentials_url, seen) = credentials_endpoint().await;

    let dispatch = FunctionSpec::new("dispatch", env!("CARGO_BIN_EXE_weir-dispatch"))
        .with_env("WEIR_STORE", &url)
        .with_env("WEIR_AGENT", "counter")
        .with_env("WEIR_SINK", format!("sqs:{queue_url}"))
        .with_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &credentials_url)
        .with_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer weir-test-token")
        // Whatever the test's own environment holds, the chain must reach the container.
        .with_env("AWS_ACCESS_KEY_ID", "")
        .with_env("AWS_SECRET_ACCESS_KEY", "")
        .with_env("AWS_SESSION_TOKEN", "")
        .with_env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/weir/credentials")
        .with_env("AWS_CONFIG_FILE", "/nonexistent/weir/config");
    let emulator = emulator(dispatch).await;
    let output = tokio::time::timeout(PATIENCE, emulator.invoke("dispatch", "{}")).await.unwrap().unwrap();
    assert_eq!(output.function_error, None, "{}", String::from_utf8_lossy(&output.payload));
    let report: Value = serde_json::from_slice(&output.payload).unwrap();
    assert_eq!(report["delivered"], 5, "{report}");
    emulator.shutdown().await;

    assert!(!seen.lock().unwrap().is_empty(), "the container credentials endpoint was asked");
    assert!(seen.lock().unwrap().iter().all(|token| token == "Bearer weir-test-token"), "{seen:?}");
    let sqs = aws.sqs(None);
    let attributes = sqs.get_queue_attributes().queue_url(&queue_url);
    let count = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    let answer = attributes.attribute_names(count.clone()).send().await.unwrap();
    assert_eq!(answer.attributes().unwrap()[&count], "5");
}
