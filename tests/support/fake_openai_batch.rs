//! OpenAI's Batch API on 127.0.0.1, from its published wire format, beside its Chat
//! Completions: `POST /v1/files` (multipart, purpose `batch`, a JSONL of requests),
//! `POST /v1/batches` (endpoint `/v1/chat/completions`, window `24h`), `GET /v1/batches/{id}`
//! (`validating`, `in_progress`, then `completed`, `failed`, `expired` or `cancelled`), and
//! `GET /v1/files/{id}/content` (the output file: a line per answered request, its
//! `response.status_code` and `body`; the error file: the requests that got none, with
//! `error.code`). The test moves the batches on ([`FakeOpenAiBatch::complete`],
//! [`FakeOpenAiBatch::expire`], [`FakeOpenAiBatch::fail`]) and counts every request.
//!
//! Each request is answered by the test's `answer`: the assistant message (`content` and
//! `tool_calls` as Chat Completions has them) for a Chat Completions body, or an error
//! message, which the batch writes as that request's HTTP 400 and a direct call returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// What answers a Chat Completions body: the assistant message, or an error.
pub type Answer = Arc<dyn Fn(&Value) -> Result<Value, String> + Send + Sync>;

/// Requests the fake received, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `POST /v1/chat/completions`: ordinary calls.
    pub chat: u64,
    /// `POST /v1/files`.
    pub uploads: u64,
    /// `POST /v1/batches`.
    pub creates: u64,
    /// `GET /v1/batches/{id}`.
    pub polls: u64,
    /// `GET /v1/files/{id}/content`.
    pub downloads: u64,
    /// Requests answered inside batches.
    pub batched_requests: u64,
}

#[derive(Debug, Clone)]
struct Batch {
    input_file_id: String,
    status: String,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    errors: Option<Value>,
    total: u64,
    completed: u64,
    failed: u64,
}

#[derive(Default)]
struct Shared {
    files: BTreeMap<String, Vec<u8>>,
    batches: BTreeMap<String, Batch>,
    counts: Counts,
    /// Requests refused with 500 from now on, by path prefix; the test sets and clears it.
    refusing: Option<String>,
}

/// A running fake; dropping it stops the server.
pub struct FakeOpenAiBatch {
    url: String,
    shared: Arc<Mutex<Shared>>,
    answer: Answer,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeOpenAiBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenAiBatch").field("url", &self.url).finish()
    }
}

type App = (Arc<Mutex<Shared>>, Answer);

impl FakeOpenAiBatch {
    /// Starts a server answering each request with `answer`.
    pub async fn start(answer: impl Fn(&Value) -> Result<Value, String> + Send + Sync + 'static) -> FakeOpenAiBatch {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let answer: Answer = Arc::new(answer);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/files", post(upload))
            .route("/v1/files/{id}/content", get(download))
            .route("/v1/batches", post(create))
            .route("/v1/batches/{id}", get(retrieve))
            .with_state((shared.clone(), answer.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/v1", listener.local_addr().expect("bound"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake provider serves");
        });
        FakeOpenAiBatch { url, shared, answer, server }
    }

    /// The base URL, `http://127.0.0.1:PORT/v1` (`WEIR_MODEL_BASE_URL`).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Requests so far, by kind.
    pub fn counts(&self) -> Counts {
        self.shared.lock().unwrap().counts
    }

    /// The ids of the batches created so far.
    pub fn batches(&self) -> Vec<String> {
        self.shared.lock().unwrap().batches.keys().cloned().collect()
    }

    /// Refuses every request whose path starts with `prefix` (`/v1/batches`, `/v1/files`)
    /// with 500 until [`FakeOpenAiBatch::recover`].
    pub fn refuse(&self, prefix: &str) {
        self.shared.lock().unwrap().refusing = Some(prefix.to_string());
    }

    /// Answers every request again.
    pub fn recover(&self) {
        self.shared.lock().unwrap().refusing = None;
    }

    /// Answers every request of the batches still at work, and ends them `completed`:
    /// answered requests in the output file, refused ones too (HTTP 400), nothing in the
    /// error file.
    pub fn complete(&self) {
        let mut shared = self.shared.lock().unwrap();
        let open: Vec<String> = shared.batches.iter().filter(|(_, b)| !ended(b)).map(|(id, _)| id.clone()).collect();
        for id in open {
            let input = shared.files[&shared.batches[&id].input_file_id].clone();
            let mut output = Vec::new();
            let (mut completed, mut failed) = (0, 0);
            for (n, line) in String::from_utf8(input).unwrap().lines().enumerate() {
                let line: Value = serde_json::from_str(line).unwrap();
                let (status, body) = match (self.answer)(&line["body"]) {
                    Ok(message) => {
                        completed += 1;
                        (200, completion(message))
                    }
                    Err(message) => {
                        failed += 1;
                        (400, json!({"error": {"message": message, "type": "invalid_request_error"}}))
                    }
                };
                let result = json!({
                    "id": format!("batch_req_{n}"), "custom_id": line["custom_id"],
                    "response": {"status_code": status, "request_id": format!("req_{n}"), "body": body},
                    "error": null,
                });
                output.extend_from_slice(format!("{result}\n").as_bytes());
            }
            shared.counts.batched_requests += completed + failed;
            let file = format!("file-out-{id}");
            shared.files.insert(file.clone(), output);
            let batch = shared.batches.get_mut(&id).unwrap();
            (batch.status, batch.output_file_id, batch.completed, batch.failed) =
                ("completed".into(), Some(file), completed, failed);
        }
    }

    /// Ends the batches still at work `expired`: every request in the error file, with code
    /// `batch_expired`, as OpenAI writes the requests an expired batch did not run.
    pub fn expire(&self) {
        let mut shared = self.shared.lock().unwrap();
        let open: Vec<String> = shared.batches.iter().filter(|(_, b)| !ended(b)).map(|(id, _)| id.clone()).collect();
        for id in open {
            let input = shared.files[&shared.batches[&id].input_file_id].clone();
            let mut errors = Vec::new();
            for (n, line) in String::from_utf8(input).unwrap().lines().enumerate() {
                let line: Value = serde_json::from_str(line).unwrap();
                let message = "This request could not be executed before the completion window expired.";
                let result = json!({
                    "id": format!("batch_req_{n}"), "custom_id": line["custom_id"], "response": null,
                    "error": {"code": "batch_expired", "message": message},
                });
                errors.extend_from_slice(format!("{result}\n").as_bytes());
            }
            let file = format!("file-err-{id}");
            shared.files.insert(file.clone(), errors);
            let batch = shared.batches.get_mut(&id).unwrap();
            (batch.status, batch.error_file_id, batch.failed) = ("expired".into(), Some(file), batch.total);
        }
    }

    /// Ends the batches still at work `failed`, as validation fails: no files, `errors`.
    pub fn fail(&self) {
        let mut shared = self.shared.lock().unwrap();
        for batch in shared.batches.values_mut().filter(|b| !ended(b)) {
            batch.status = "failed".into();
            batch.errors = Some(
                json!({"object": "list", "data": [{"code": "invalid_request", "message": "the input file is invalid", "param": null, "line": null}]}),
            );
        }
    }
}

impl Drop for FakeOpenAiBatch {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ended(batch: &Batch) -> bool {
    matches!(batch.status.as_str(), "completed" | "failed" | "expired" | "cancelled")
}

/// A Chat Completions reply carrying `message`.
fn completion(mut message: Value) -> Value {
    message["role"] = json!("assistant");
    let calls = message.get("tool_calls").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
    json!({
        "id": "chatcmpl-weir-test", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": if calls { "tool_calls" } else { "stop" }}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
}

fn refused(shared: &Shared, path: &str) -> bool {
    shared.refusing.as_deref().is_some_and(|prefix| path.starts_with(prefix))
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})))
}

async fn chat(State((shared, answer)): State<App>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    {
        let mut shared = shared.lock().unwrap();
        shared.counts.chat += 1;
        if refused(&shared, "/v1/chat") {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "the fake refuses");
        }
    }
    match answer(&body) {
        Ok(message) => (StatusCode::OK, Json(completion(message))),
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

/// The parts of a `multipart/form-data` body, by field name.
fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<BTreeMap<String, Vec<u8>>> {
    let content_type = headers.get("content-type")?.to_str().ok()?;
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut parts = BTreeMap::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (head, content) = part.split_once("\r\n\r\n")?;
        let name = head.split("name=\"").nth(1)?.split('"').next()?;
        parts.insert(name.to_string(), content.strip_suffix("\r\n").unwrap_or(content).as_bytes().to_vec());
    }
    Some(parts)
}

async fn upload(State((shared, _)): State<App>, headers: HeaderMap, body: Bytes) -> (StatusCode, Json<Value>) {
    let mut shared = shared.lock().unwrap();
    shared.counts.uploads += 1;
    if refused(&shared, "/v1/files") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the fake refuses");
    }
    let Some(parts) = multipart(&headers, &body) else {
        return error(StatusCode::BAD_REQUEST, "not a multipart/form-data body");
    };
    if parts.get("purpose").map(Vec::as_slice) != Some(b"batch".as_slice()) {
        return error(StatusCode::BAD_REQUEST, "purpose must be `batch`");
    }
    let Some(file) = parts.get("file") else { return error(StatusCode::BAD_REQUEST, "no `file` part") };
    for line in String::from_utf8_lossy(file).lines() {
        let Ok(line) = serde_json::from_str::<Value>(line) else {
            return error(StatusCode::BAD_REQUEST, "a line of the file is not JSON");
        };
        if line["method"] != "POST" || line["url"] != "/v1/chat/completions" || !line["custom_id"].is_string() {
            return error(StatusCode::BAD_REQUEST, "a line lacks custom_id, method POST or url /v1/chat/completions");
        }
    }
    let id = format!("file-{}", shared.files.len());
    let bytes = file.len();
    shared.files.insert(id.clone(), file.clone());
    let object = json!({"id": id, "object": "file", "bytes": bytes, "created_at": 0, "filename": "batch.jsonl", "purpose": "batch"});
    (StatusCode::OK, Json(object))
}

async fn download(State((shared, _)): State<App>, Path(id): Path<String>) -> (StatusCode, Vec<u8>) {
    let mut shared = shared.lock().unwrap();
    shared.counts.downloads += 1;
    if refused(&shared, "/v1/files") {
        return (StatusCode::INTERNAL_SERVER_ERROR, Vec::new());
    }
    match shared.files.get(&id) {
        Some(bytes) => (StatusCode::OK, bytes.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

fn batch_object(id: &str, batch: &Batch) -> Value {
    json!({
        "id": id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": batch.errors,
        "input_file_id": batch.input_file_id, "completion_window": "24h", "status": batch.status,
        "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
        "created_at": 0, "in_progress_at": null, "expires_at": 86_400, "completed_at": null,
        "request_counts": {"total": batch.total, "completed": batch.completed, "failed": batch.failed},
        "metadata": null,
    })
}

async fn create(State((shared, _)): State<App>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let mut shared = shared.lock().unwrap();
    shared.counts.creates += 1;
    if refused(&shared, "/v1/batches") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the fake refuses");
    }
    if body["endpoint"] != "/v1/chat/completions" || body["completion_window"] != "24h" {
        return error(StatusCode::BAD_REQUEST, "endpoint must be /v1/chat/completions and completion_window 24h");
    }
    let Some(file) = body["input_file_id"].as_str().and_then(|id| shared.files.get(id)) else {
        return error(StatusCode::BAD_REQUEST, "no such input_file_id");
    };
    let total = String::from_utf8_lossy(file).lines().count() as u64;
    let id = format!("batch_{}", shared.batches.len());
    let batch = Batch {
        input_file_id: body["input_file_id"].as_str().unwrap().to_string(),
        status: "validating".into(),
        output_file_id: None,
        error_file_id: None,
        errors: None,
        total,
        completed: 0,
        failed: 0,
    };
    let object = batch_object(&id, &batch);
    shared.batches.insert(id, batch);
    (StatusCode::OK, Json(object))
}

async fn retrieve(State((shared, _)): State<App>, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    let mut shared = shared.lock().unwrap();
    shared.counts.polls += 1;
    if refused(&shared, "/v1/batches") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the fake refuses");
    }
    let Some(batch) = shared.batches.get_mut(&id) else { return error(StatusCode::NOT_FOUND, "no such batch") };
    if batch.status == "validating" {
        batch.status = "in_progress".into();
    }
    let object = batch_object(&id, batch);
    (StatusCode::OK, Json(object))
}
