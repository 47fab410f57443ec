//! `weir dev`: the functions on the local Lambda emulator. Records POSTed to the ingest
//! function through the Invoke API are processed by the triggered process function and
//! delivered by dispatch to a webhook sink; every function line is printed labelled
//! `[function request-id]`; Ctrl-C (SIGINT) stops it cleanly.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::{TempDir, weir};
use tokio::io::AsyncBufReadExt;

/// How long the records may take to reach the sink, on a loaded machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_ingest_process_and_dispatch_until_ctrl_c() {
    let delivered: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = delivered.clone();
    let sink = axum::Router::new().route(
        "/sink",
        axum::routing::post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let id = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
                record.lock().unwrap().push(id.to_string());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/sink", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sink).await.unwrap() });

    // `weir dev` finds its functions next to itself; `weir demo` builds them if missing.
    let dir = TempDir::new("dev");
    common::ok(weir(&["demo", "--store", &dir.store("build-only")]));
    let mut command = weir(&["dev", "--port", "0", "--schedule-secs", "1", "--key-field", "/id", "--sink", &sink_url]);
    command.args(["--store", &dir.store("store")]).stdout(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(command).kill_on_drop(true).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("weir dev says where it listens");
    let invoke_url = first.split("Invoke API at ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let printed: Arc<Mutex<Vec<String>>> = Arc::default();
    let collect = printed.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            collect.lock().unwrap().push(line);
        }
    });

    let request = serde_json::json!({
        "version": "2.0",
        "headers": {"idempotency-key": "dev-test"},
        "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "POST"}},
        "body": "{\"id\": \"kettle\", \"review\": \"Boils fast.\"}\n{\"id\": \"lamp\", \"review\": \"Arrived late.\"}",
        "isBase64Encoded": false
    });
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{invoke_url}/2015-03-31/functions/ingest/invocations"))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");

    tokio::time::timeout(DELIVERY_TIMEOUT, async {
        while delivered.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not delivered; weir dev printed: {:#?}", printed.lock().unwrap()));

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(child.wait().await.unwrap().success(), "Ctrl-C is a clean stop");
    reader.await.unwrap();
    let printed = printed.lock().unwrap();
    for function in ["ingest", "process", "dispatch"] {
        let prefix = format!("[{function} ");
        assert!(printed.iter().any(|l| l.starts_with(&prefix)), "no line of {function}: {printed:#?}");
    }
    assert_eq!(printed.last().map(String::as_str), Some("weir dev: stopped"), "{printed:#?}");
    let distinct: std::collections::BTreeSet<_> = delivered.lock().unwrap().iter().cloned().collect();
    assert_eq!(distinct.len(), 2, "each output delivered under its own id");
}
