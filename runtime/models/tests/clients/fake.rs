//! A provider stand-in on 127.0.0.1: plays a script of replies and records every request.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use serde_json::Value;
use tokio::task::JoinHandle;
use weir_models::HttpSettings;

/// The key every test client is built with; error fixtures echo it.
pub const KEY: &str = "sk-test-SECRET-0123456789";

/// Settings for tests: quick backoff, and timeouts long enough for a loaded machine.
pub fn test_http() -> HttpSettings {
    HttpSettings {
        initial_backoff_ms: 10,
        max_backoff_ms: 5_000,
        request_timeout_ms: 30_000,
        ..HttpSettings::default()
    }
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    /// `status` with the fixture at `tests/fixtures/{path}` as its body.
    pub fn fixture(status: u16, path: &str) -> Self {
        Self::raw(status, &read_fixture(path))
    }

    /// `status` with the fixture at `tests/fixtures/{path}` as its body, after `change`: a
    /// published reply with one thing wrong.
    pub fn fixture_with(status: u16, path: &str, change: impl FnOnce(&mut Value)) -> Self {
        let mut body = serde_json::from_str(&read_fixture(path)).unwrap();
        change(&mut body);
        Self::json(status, &body)
    }

    /// `status` with `body` as it is.
    pub fn raw(status: u16, body: &str) -> Self {
        Reply { status, headers: Vec::new(), body: body.to_owned(), delay: Duration::ZERO }
    }

    /// `status` with `body` as JSON.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::raw(status, &body.to_string())
    }

    /// With the header `name: value`.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Sent only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

fn read_fixture(path: &str) -> String {
    let file = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&file).unwrap_or_else(|error| panic!("{file}: {error}"))
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as JSON, `Null` if it was not JSON.
    pub body: Value,
}

impl Recorded {
    /// The header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

#[derive(Debug, Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// The fake server; it stops when dropped.
#[derive(Debug)]
pub struct FakeServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// A server answering with `script` in order, its last reply repeated once it runs out.
    pub async fn start(script: Vec<Reply>) -> Self {
        assert!(!script.is_empty(), "a fake server needs at least one reply");
        let shared = Arc::new(Shared { script: Mutex::new(script.into()), ..Shared::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeServer { url, shared, task }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The one request received; fails if there were more or none.
    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "requests: {requests:#?}");
        requests.into_iter().next().unwrap()
    }

    /// The most requests that were being answered at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a request in flight until dropped, even when the client gives up on it.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let _in_flight = InFlight::enter(&shared);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let recorded =
        Recorded { method, path: uri.path().to_owned(), query: uri.query().map(str::to_owned), headers, body };
    shared.requests.lock().unwrap().push(recorded);
    let reply = {
        let mut script = shared.script.lock().unwrap();
        if script.len() > 1 { script.pop_front() } else { script.front().cloned() }
    }
    .expect("the script is never empty");
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status).header("content-type", "application/json");
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}
