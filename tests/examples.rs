//! Every example of `infra/examples` starts as deployed: its functions, with the binaries and
//! environment variables the module gives them (derived from the Terraform, for inputs
//! chosen here), run from the zips `infra/package` builds, under the Lambda emulator, on
//! moto's S3 (the store), Secrets Manager (the model's key) and a fake OpenAI-compatible
//! model. Each function gets a sample of what invokes it on AWS: ingest an SQS event, the
//! others their schedule's `{}`; the outputs reach the webhook, through every agent of a
//! chain.
//!
//! What Lambda itself provides is added to each function's environment: credentials, the
//! region, and (standing in for S3 and Secrets Manager) moto's endpoint.

#[path = "infra/deployment.rs"]
mod deployment;
// Only its zip reading is needed here; the ELF checks are infra.rs's.
#[allow(dead_code)]
#[path = "infra/elf.rs"]
mod elf;
#[path = "infra/hcl.rs"]
mod hcl;
#[path = "infra/tools.rs"]
mod tools;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use deployment::{Example, Function};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use serde_json::{Value, json};
use tools::{package_lock, printed, repository, run};
use weir_emulator::{Emulator, FunctionSpec};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::fake_openai::FakeOpenAi;
use weir_tests::moto::MotoServer;

/// How long one invocation may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(120);

/// An answer meeting every example agent's output schema (extra fields are allowed).
const MODEL_ANSWER: &str = r#"{"id": "product-1", "score": 2, "reasons": ["it leaks"], "summary": "It leaks after a week.", "alert": true, "message": "Offer a replacement."}"#;

/// The sample record sent to each ingest: the fields every example's prompts read.
fn sample_record(key_field: &str, n: usize) -> Value {
    let mut record = json!({"review": "The kettle leaks after a week.", "score": 2, "summary": "It leaks."});
    record[key_field.trim_start_matches('/')] = json!(format!("product-{n}"));
    record
}

/// `infra/package` with the test profile; each binary's extracted `bootstrap`.
fn packaged_binaries(into: &Path) -> HashMap<String, PathBuf> {
    let _package = package_lock();
    let output = run(Command::new(repository().join("infra/package")).args(["--profile", "lambda-check"]));
    assert!(output.status.success(), "infra/package: {}", printed(&output));
    let mut binaries = HashMap::new();
    for zip in String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from) {
        let binary = zip.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let dir = into.join(&binary);
        std::fs::create_dir_all(&dir).unwrap();
        let bootstrap = dir.join("bootstrap");
        assert!(elf::bootstrap_of(&zip, &bootstrap).executable, "{}", zip.display());
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        binaries.insert(binary, bootstrap);
    }
    binaries
}

/// A webhook on 127.0.0.1 recording each POST's path, `Idempotency-Key` and body.
async fn webhook() -> (String, Arc<Mutex<Vec<(String, String, Value)>>>) {
    let received: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
    let record = received.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let record = record.clone();
        async move {
            let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record.lock().unwrap().push((uri.path().to_string(), key, body));
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// A Secrets Manager secret on moto holding `value`; its ARN.
async fn secret(moto: &MotoServer, value: &str) -> String {
    let name = format!("weir-model-key-{:08x}", fastrand::u32(..));
    let answer = reqwest::Client::new()
        .post(format!("{}/", moto.endpoint()))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.CreateSecret")
        // moto checks no signature; the region is in the credential scope it reads.
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0")
        .body(json!({"Name": name, "SecretString": value}).to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = answer.json().await.unwrap();
    answer["ARN"].as_str().unwrap_or_else(|| panic!("CreateSecret: {answer}")).to_string()
}

/// What Lambda gives every function, with moto standing in for AWS's endpoints.
fn lambda_environment(moto: &MotoServer) -> Vec<(String, String)> {
    moto.env().into_iter().chain([("AWS_REGION".to_string(), "us-east-1".to_string())]).collect()
}

async fn invoke(emulator: &Emulator, function: &str, payload: &Value) -> Value {
    let output = tokio::time::timeout(PATIENCE, emulator.invoke(function, payload.to_string()))
        .await
        .unwrap_or_else(|_| panic!("{function}: no answer after {PATIENCE:?}"))
        .unwrap();
    let answer = String::from_utf8_lossy(&output.payload).into_owned();
    assert_eq!(output.function_error, None, "{function} failed: {answer}");
    serde_json::from_str(&answer).unwrap_or(Value::String(answer))
}

/// An SQS event delivering `record` as the ingest queue would.
fn sqs_event(record: &Value, n: usize) -> Value {
    json!({"Records": [{
        "messageId": format!("00000000-0000-0000-0000-{n:012}"),
        "receiptHandle": "handle",
        "body": record.to_string(),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
        "awsRegion": "us-east-1"
    }]})
}

/// The inputs a test gives an example: its webhook, the fake model and the secret, for
/// whichever of these variables it declares.
fn inputs(dir: &Path, webhook: &str, model: &str, secret_arn: &str) -> BTreeMap<String, Value> {
    let declared = hcl::Body::of_dir(dir);
    let name = dir.file_name().unwrap().to_string_lossy();
    [
        ("webhook_url", json!(format!("{webhook}/{name}"))),
        ("alerts_webhook_url", json!(format!("{webhook}/{name}"))),
        ("model_base_url", json!(model)),
        ("model_api_key_secret_arn", json!(secret_arn)),
    ]
    .into_iter()
    .filter(|(variable, _)| declared.block("variable", variable).is_some())
    .map(|(variable, value)| (variable.to_string(), value))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_starts_under_the_emulator_as_deployed() {
    let scratch = TempDir::new();
    let binaries = packaged_binaries(scratch.path());
    let moto = weir_tests::moto::shared();
    let model = FakeOpenAi::start(MODEL_ANSWER).await;
    let (webhook_url, received) = webhook().await;
    let secret_arn = secret(moto, "sk-from-secrets-manager").await;

    let examples = std::fs::read_dir(repository().join("infra/examples")).unwrap();
    let mut examples: Vec<PathBuf> = examples.map(|entry| entry.unwrap().path()).collect();
    examples.sort();
    let mut expected_deliveries = BTreeMap::new();
    for dir in examples {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // The bucket each module call creates, made on moto when the derivation asks for it.
        let buckets: Mutex<HashMap<String, String>> = Mutex::default();
        let applied = |module: &str, path: &[String]| -> Option<Value> {
            (path.join(".") == "aws_s3_bucket.this.0.id").then(|| {
                let mut buckets = buckets.lock().unwrap();
                let bucket = buckets.entry(module.to_string()).or_insert_with(|| {
                    let bucket = format!("weir-{name}-{module}-{:06x}", fastrand::u32(..0xffffff));
                    moto.create_bucket(&bucket).unwrap();
                    bucket
                });
                Value::from(bucket.clone())
            })
        };
        let example = Example::load(&dir, inputs(&dir, &webhook_url, model.base_url(), &secret_arn), &applied);
        let functions: Vec<Function> = example.functions().unwrap_or_else(|e| panic!("{name}: {e}"));
        for (_, bucket, key, source) in example.uploads().unwrap_or_else(|e| panic!("{name}: {e}")) {
            let store = AmazonS3Builder::new()
                .with_endpoint(moto.endpoint())
                .with_bucket_name(&bucket)
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .with_region("us-east-1")
                .with_allow_http(true)
                .build()
                .unwrap();
            let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("{name}: {}: {e}", source.display()));
            store.put(&key.as_str().into(), bytes.into()).await.unwrap();
        }

        let mut emulator = Emulator::builder();
        for function in &functions {
            let binary = binaries.get(&function.binary).unwrap_or_else(|| {
                panic!("{name}: {} runs `{}`, which infra/package does not build", function.name, function.binary)
            });
            let mut spec = FunctionSpec::new(&function.name, binary).with_timeout(PATIENCE);
            for (variable, value) in lambda_environment(moto).into_iter().chain(function.env.clone()) {
                spec = spec.with_env(variable, value);
            }
            emulator = emulator.function(spec);
        }
        let emulator = emulator.start().await.unwrap();

        // Module calls in the order the example writes them: a chain's head comes first.
        let modules: Vec<String> = functions.iter().fold(Vec::new(), |mut modules, f| {
            if !modules.contains(&f.module) {
                modules.push(f.module.clone());
            }
            modules
        });
        let role = |module: &str, role: &str| functions.iter().find(|f| f.module == module && f.role == role).unwrap();
        for (n, module) in modules.iter().enumerate() {
            let ingest = role(module, "ingest");
            let key_field = ingest.env.get("WEIR_KEY_FIELD").map_or("/key", String::as_str);
            let answer = invoke(&emulator, &ingest.name, &sqs_event(&sample_record(key_field, n), n)).await;
            assert_eq!(answer["batchItemFailures"], json!([]), "{name}: {} refused the sample: {answer}", ingest.name);
            // Ingest has already invoked process, and process dispatch, for what moved; these
            // are their schedules' invocations, which find what is left.
            for role_name in ["process", "dispatch", "collect"] {
                invoke(&emulator, &role(module, role_name).name, &json!({})).await;
            }
        }
        // Each module's sample, and what each agent of a chain passed on, reach the end.
        let path = format!("/{name}");
        let delivered = || {
            received
                .lock()
                .unwrap()
                .iter()
                .filter(|(p, ..)| *p == path)
                .map(|(_, key, _)| key.clone())
                .collect::<BTreeSet<_>>()
                .len()
        };
        let all_delivered = async {
            while delivered() < modules.len() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(PATIENCE, all_delivered)
            .await
            .unwrap_or_else(|_| panic!("{name}: {} of {} delivered", delivered(), modules.len()));
        emulator.shutdown().await;
        expected_deliveries.insert(path, modules.len());
    }

    let received = received.lock().unwrap().clone();
    let mut deliveries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, key, body) in &received {
        assert!(!key.is_empty() && body.is_object(), "{path}: {key} {body}");
        deliveries.entry(path.clone()).or_default().insert(key.clone());
    }
    let counts: BTreeMap<String, usize> = deliveries.iter().map(|(path, keys)| (path.clone(), keys.len())).collect();
    assert_eq!(counts, expected_deliveries, "webhook deliveries per example: {received:?}");
    // Distinct deliveries: a dispatcher fenced mid-batch redelivers under the same ids.
    let distinct: usize = counts.values().sum();
    assert!(model.requests() >= distinct, "the agents asked the model: {} requests", model.requests());
    let keys: BTreeSet<String> = model.authorizations().into_iter().collect();
    assert_eq!(keys, BTreeSet::from(["Bearer sk-from-secrets-manager".to_string()]), "the key came from the secret");
}
