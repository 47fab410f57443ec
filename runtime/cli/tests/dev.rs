//! `weir dev`: the functions on the local Lambda emulator. Records POSTed to the ingest
//! function through the Invoke API are processed by the triggered process function and
//! delivered by dispatch to a webhook sink; every function line is printed labelled
//! `[function request-id]`; Ctrl-C (SIGINT) stops it cleanly. Ingest has a function URL,
//! through which records are posted and approval links followed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{TempDir, weir};
use tokio::io::AsyncBufReadExt;

/// How long the records may take to reach the sink, on a loaded machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A webhook that keeps what is posted to it: idempotency key and JSON body.
#[derive(Clone, Default)]
struct Webhook {
    received: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Webhook {
    /// Listens on a free port of 127.0.0.1; its URL.
    async fn start(&self) -> String {
        let received = self.received.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let received = received.clone();
                async move {
                    let id = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                    received.lock().unwrap().push((id.to_string(), body));
                    axum::Json(serde_json::json!({"ok": true}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn received(&self) -> Vec<(String, serde_json::Value)> {
        self.received.lock().unwrap().clone()
    }
}

/// A running `weir dev`, with what it printed.
struct Dev {
    child: tokio::process::Child,
    invoke_url: String,
    function_url: String,
    printed: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Dev {
    /// `weir dev` with `args` on free ports; `weir demo` first builds the functions if missing.
    async fn start(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Dev {
        common::ok(weir(&["demo", "--store", &dir.store("build-only")]));
        let mut command = weir(&["dev", "--port", "0", "--url-port", "0", "--schedule-secs", "1"]);
        command.args(args).args(["--store", &dir.store("store")]).stdout(std::process::Stdio::piped());
        command.envs(env.iter().copied());
        let mut child = tokio::process::Command::from(command).kill_on_drop(true).spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().expect("weir dev says where it listens");
        let invoke_url = first.split("Invoke API at ").nth(1).unwrap().split(' ').next().unwrap().to_string();
        let second = lines.next_line().await.unwrap().expect("weir dev says where ingest's URL is");
        let function_url = second.split("function URL ").nth(1).unwrap().split(' ').next().unwrap().to_string();
        let printed: Arc<Mutex<Vec<String>>> = Arc::default();
        let collect = printed.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                collect.lock().unwrap().push(line);
            }
        });
        Dev { child, invoke_url, function_url, printed, reader }
    }

    /// Waits until `done` holds, or fails the test with what `weir dev` printed.
    async fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let waited = tokio::time::timeout(DELIVERY_TIMEOUT, async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        waited
            .await
            .unwrap_or_else(|_| panic!("{what}: timed out; weir dev printed: {:#?}", self.printed.lock().unwrap()));
    }

    /// Ctrl-C, which must stop it cleanly; what it printed.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        assert!(self.child.wait().await.unwrap().success(), "Ctrl-C is a clean stop");
        self.reader.await.unwrap();
        let printed = self.printed.lock().unwrap().clone();
        assert_eq!(printed.last().map(String::as_str), Some("weir dev: stopped"), "{printed:#?}");
        printed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_ingest_process_and_dispatch_until_ctrl_c() {
    let sink = Webhook::default();
    let sink_url = sink.start().await;
    let dir = TempDir::new("dev");
    let dev = Dev::start(&dir, &["--key-field", "/id", "--sink", &sink_url], &[]).await;

    let request = serde_json::json!({
        "version": "2.0",
        "headers": {"idempotency-key": "dev-test"},
        "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "POST"}},
        "body": "{\"id\": \"kettle\", \"review\": \"Boils fast.\"}\n{\"id\": \"lamp\", \"review\": \"Arrived late.\"}",
        "isBase64Encoded": false
    });
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/2015-03-31/functions/ingest/invocations", dev.invoke_url))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");

    dev.wait_for("both outputs delivered", || sink.received().len() >= 2).await;
    let printed = dev.stop().await;
    for function in ["ingest", "process", "dispatch"] {
        let prefix = format!("[{function} ");
        assert!(printed.iter().any(|l| l.starts_with(&prefix)), "no line of {function}: {printed:#?}");
    }
    let distinct: std::collections::BTreeSet<_> = sink.received().into_iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), 2, "each output delivered under its own id");
}

/// The approval of a remediation from end to end, as a user of `weir dev` sees it: a failure
/// posted to ingest's function URL; the ops agent diagnoses it and asks to carry out the
/// runbook's first step; the request reaches the sink with signed links, and `weir dev`
/// prints it; following the approve link (through the function URL, as a browser would)
/// resumes the held call, which reaches the remediation webhook once; the diagnosis naming
/// the step taken is committed and delivered. The deny link is then refused, and the approve
/// link followed again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_remediation_runs_once_under_the_emulator() {
    let (sink, remediation) = (Webhook::default(), Webhook::default());
    let (sink_url, remediation_url) = (sink.start().await, remediation.start().await);
    let dir = TempDir::new("dev-approval");
    let args = ["--agent", "ops-diagnosis", "--key-field", "/job", "--sink", &sink_url];
    let dev = Dev::start(&dir, &args, &[("WEIR_OPS_REMEDIATION", &remediation_url)]).await;
    let client = reqwest::Client::new();

    let failure = r#"{"job": "report-daily", "node": "n-3", "failure": "oom", "ts": 1763700300}"#;
    let posted =
        client.post(&dev.function_url).header("idempotency-key", "failure-1").body(failure).send().await.unwrap();
    assert_eq!(posted.status(), 200, "{}", posted.text().await.unwrap());

    let approval_request =
        || sink.received().into_iter().map(|(_, body)| body).find(|body| body.get("approval_request").is_some());
    dev.wait_for("the approval request delivered", || approval_request().is_some()).await;
    let request = approval_request().unwrap();
    assert_eq!(request["approval_request"]["tool"], "remediate", "{request}");
    assert_eq!(request["approval_request"]["key"], "report-daily");
    assert!(remediation.received().is_empty(), "nothing is done before the approval");
    let id = request["approval_request"]["id"].as_str().unwrap().to_string();
    let shown = format!("[weir] approval pending: {id}");
    dev.wait_for("weir dev shows the pending approval", || {
        dev.printed.lock().unwrap().iter().any(|line| line.starts_with(&shown))
    })
    .await;

    let approve_url = request["approve_url"].as_str().unwrap();
    assert!(approve_url.starts_with(&dev.function_url), "{approve_url} goes to ingest's URL");
    let approved = client.get(approve_url).send().await.unwrap();
    assert_eq!(approved.status(), 200);
    assert_eq!(approved.json::<serde_json::Value>().await.unwrap()["decision"], "approve");

    let diagnosis = || sink.received().into_iter().map(|(_, body)| body).find(|body| body.get("diagnosis").is_some());
    dev.wait_for("the diagnosis delivered", || diagnosis().is_some()).await;
    let diagnosis = diagnosis().unwrap();
    let step = remediation.received();
    assert_eq!(step.len(), 1, "the remediation ran once: {step:?}");
    assert_eq!(step[0].1["job"], "report-daily");
    assert_eq!(diagnosis["action_taken"], step[0].1["action"], "{diagnosis}");

    let denied = client.get(request["deny_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(denied.status(), 409, "the other link of the pair is refused");
    assert!(denied.text().await.unwrap().contains("answered already"));
    assert_eq!(client.get(approve_url).send().await.unwrap().status(), 200, "the same link again changes nothing");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let printed = dev.stop().await;
    assert_eq!(remediation.received().len(), 1, "still once: {printed:#?}");
    let diagnoses = sink.received().into_iter().filter(|(_, body)| body.get("diagnosis").is_some()).count();
    assert_eq!(diagnoses, 1, "the diagnosis delivered once");
}
