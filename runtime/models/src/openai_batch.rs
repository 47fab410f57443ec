//! OpenAI's Batch API for chat completions: the requests go up as a JSONL file
//! (`POST /files`, purpose `batch`), a batch is created on it (`POST /batches`, endpoint
//! `/v1/chat/completions`, window `24h`), polled (`GET /batches/{id}`), and its output and
//! error files read (`GET /files/{id}/content`), each line matched to its request by
//! `custom_id`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch::{BatchApi, BatchHttp, BatchRequest, BatchStatus};
use crate::chat::{ChatRequest, ChatResponse};
use crate::error::ModelError;
use crate::openai::{Completion, OpenAiChat, OpenAiConfig};
use crate::secret::ApiKey;

/// The endpoint every request of a chat batch names.
const CHAT_ENDPOINT: &str = "/v1/chat/completions";

/// Statuses of a batch that will not change any more.
const ENDED: [&str; 4] = ["completed", "failed", "expired", "cancelled"];

/// The Batch API of one OpenAI chat model.
#[derive(Debug)]
pub(crate) struct OpenAiBatch {
    config: OpenAiConfig,
    http: BatchHttp,
    /// Writes each request's body and reads each reply, as an ordinary call would.
    chat: OpenAiChat,
}

impl OpenAiBatch {
    pub(crate) fn new(config: &OpenAiConfig, key: ApiKey, chat: OpenAiChat) -> Result<Self, ModelError> {
        let http = BatchHttp::new("openai", config.auth_headers(&key)?, key, config.http.request_timeout_ms)?;
        Ok(OpenAiBatch { config: config.clone(), http, chat })
    }

    fn url(&self, path: &str) -> Result<url::Url, ModelError> {
        self.config.url(path)
    }

    /// The lines of the file `id`.
    async fn file_lines(&self, id: &str) -> Result<Vec<Line>, ModelError> {
        let body = self.http.send(self.http.client().get(self.url(&format!("files/{id}/content"))?)).await?;
        let text = String::from_utf8_lossy(&body);
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| self.http.malformed(format!("file {id}: {e}"))))
            .collect()
    }

    /// A result line's reply, or why there is none.
    fn outcome(&self, line: Line) -> Result<ChatResponse, String> {
        if let Some(error) = line.error {
            return Err(format!("{}: {}", error.code.unwrap_or_default(), error.message.unwrap_or_default()));
        }
        let Some(response) = line.response else { return Err("the result line has no response".into()) };
        if response.status_code != 200 {
            let message = response.body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
            return Err(format!("HTTP {}: {message}", response.status_code));
        }
        let completion: Completion = serde_json::from_value(response.body).map_err(|e| e.to_string())?;
        self.chat.response(completion).map_err(|e| e.to_string())
    }
}

#[derive(Serialize)]
struct InputLine<'r, B> {
    custom_id: &'r str,
    method: &'static str,
    url: &'static str,
    body: B,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Batch {
    status: String,
    #[serde(default)]
    output_file_id: Option<String>,
    #[serde(default)]
    error_file_id: Option<String>,
}

/// A line of an output or error file.
#[derive(Deserialize)]
struct Line {
    custom_id: String,
    #[serde(default)]
    response: Option<LineResponse>,
    #[serde(default)]
    error: Option<LineError>,
}

#[derive(Deserialize)]
struct LineResponse {
    status_code: u16,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct LineError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[async_trait]
impl BatchApi for OpenAiBatch {
    async fn submit(&self, requests: &[BatchRequest]) -> Result<String, ModelError> {
        let mut jsonl = Vec::new();
        for request in requests {
            let line = InputLine {
                custom_id: &request.custom_id,
                method: "POST",
                url: CHAT_ENDPOINT,
                body: self.chat.body(&request.request),
            };
            serde_json::to_writer(&mut jsonl, &line).map_err(|e| self.http.malformed(e.to_string()))?;
            jsonl.push(b'\n');
        }
        let (content_type, body) = multipart_file("batch", "batch.jsonl", &jsonl);
        let upload = self.http.client().post(self.url("files")?).header("content-type", content_type).body(body);
        let file: Created = self.http.json(upload).await?;
        let create = serde_json::json!({
            "input_file_id": file.id,
            "endpoint": CHAT_ENDPOINT,
            "completion_window": "24h",
        });
        let batch: Created = self.http.json(self.http.client().post(self.url("batches")?).json(&create)).await?;
        Ok(batch.id)
    }

    async fn poll(&self, id: &str, _requests: &BTreeMap<String, ChatRequest>) -> Result<BatchStatus, ModelError> {
        let batch: Batch = self.http.json(self.http.client().get(self.url(&format!("batches/{id}"))?)).await?;
        if !ENDED.contains(&batch.status.as_str()) {
            return Ok(BatchStatus::Running(batch.status));
        }
        let mut results = BTreeMap::new();
        for file in [batch.output_file_id, batch.error_file_id].into_iter().flatten() {
            for line in self.file_lines(&file).await? {
                let custom_id = line.custom_id.clone();
                results.entry(custom_id).or_insert_with(|| self.outcome(line));
            }
        }
        Ok(BatchStatus::Ended { status: batch.status, results })
    }
}

/// A `multipart/form-data` body of the field `purpose` and one file: the content type (with
/// its boundary) and the bytes.
fn multipart_file(purpose: &str, file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("weir-{:016x}", fastrand::u64(..));
    let mut body = Vec::with_capacity(content.len() + 512);
    body.extend_from_slice(
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             content-type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
