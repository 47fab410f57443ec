//! Anthropic's Message Batches API: the requests go up in one body
//! (`POST /v1/messages/batches`, each `{custom_id, params}`, `params` the Messages body an
//! ordinary call sends), the batch is polled (`GET /v1/messages/batches/{id}`:
//! `processing_status` `in_progress`, `canceling`, then `ended`), and once it has ended its
//! results are read from its `results_url` (JSON lines, one per request: `succeeded` with the
//! message, `errored` with the error, `canceled` or `expired`), matched by `custom_id`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::anthropic::{AnthropicChat, AnthropicConfig, Message};
use crate::batch::{BatchApi, BatchHttp, BatchRequest, BatchStatus};
use crate::chat::{ChatRequest, ChatResponse};
use crate::error::ModelError;
use crate::secret::ApiKey;

/// The Message Batches API of one Anthropic model.
#[derive(Debug)]
pub(crate) struct AnthropicBatch {
    config: AnthropicConfig,
    http: BatchHttp,
    /// Writes each request's body and reads each reply, as an ordinary call would.
    chat: AnthropicChat,
}

impl AnthropicBatch {
    pub(crate) fn new(config: &AnthropicConfig, key: ApiKey, chat: AnthropicChat) -> Result<Self, ModelError> {
        let http = BatchHttp::new("anthropic", config.headers(&key)?, key, config.http.request_timeout_ms)?;
        Ok(AnthropicBatch { config: config.clone(), http, chat })
    }

    /// A result line's reply, or why there is none; `request` (when known) says how to read
    /// it: a structured answer is the call of its output schema's tool.
    fn outcome(&self, result: LineResult, request: Option<&ChatRequest>) -> Result<ChatResponse, String> {
        match result {
            LineResult::Succeeded { message } => {
                let forced = request.and_then(|r| r.output_schema.as_ref()).map(|schema| schema.name.as_str());
                self.chat.response(message, forced).map_err(|e| e.to_string())
            }
            LineResult::Errored { error } => {
                let inner = error.get("error").unwrap_or(&error);
                let kind = inner["type"].as_str().unwrap_or("error");
                Err(format!("{kind}: {}", inner["message"].as_str().unwrap_or("no message")))
            }
            LineResult::Canceled => Err("the request was canceled".into()),
            LineResult::Expired => Err("the request expired before it was processed".into()),
        }
    }
}

#[derive(Serialize)]
struct Create<'r, P> {
    requests: Vec<Item<'r, P>>,
}

#[derive(Serialize)]
struct Item<'r, P> {
    custom_id: &'r str,
    params: P,
}

#[derive(Deserialize)]
struct Batch {
    id: String,
    processing_status: String,
    #[serde(default)]
    results_url: Option<String>,
}

/// A line of the results.
#[derive(Deserialize)]
struct Line {
    custom_id: String,
    result: LineResult,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LineResult {
    Succeeded { message: Message },
    Errored { error: Value },
    Canceled,
    Expired,
}

#[async_trait]
impl BatchApi for AnthropicBatch {
    async fn submit(&self, requests: &[BatchRequest]) -> Result<String, ModelError> {
        let items = requests
            .iter()
            .map(|request| Item { custom_id: &request.custom_id, params: self.chat.body(&request.request) })
            .collect();
        let create = self.http.client().post(self.config.url("v1/messages/batches")?).json(&Create { requests: items });
        let batch: Batch = self.http.json(create).await?;
        Ok(batch.id)
    }

    async fn poll(&self, id: &str, requests: &BTreeMap<String, ChatRequest>) -> Result<BatchStatus, ModelError> {
        let url = self.config.url(&format!("v1/messages/batches/{id}"))?;
        let batch: Batch = self.http.json(self.http.client().get(url)).await?;
        if batch.processing_status != "ended" {
            return Ok(BatchStatus::Running(batch.processing_status));
        }
        let Some(results_url) = batch.results_url else {
            return Err(self.http.malformed(format!("batch {} ended with no results_url", batch.id)));
        };
        let results_url =
            url::Url::parse(&results_url).map_err(|e| self.http.malformed(format!("results_url: {e}")))?;
        let body = self.http.send(self.http.client().get(results_url)).await?;
        let mut results = BTreeMap::new();
        for line in String::from_utf8_lossy(&body).lines().filter(|line| !line.trim().is_empty()) {
            let line: Line =
                serde_json::from_str(line).map_err(|e| self.http.malformed(format!("batch {id} results: {e}")))?;
            let outcome = self.outcome(line.result, requests.get(&line.custom_id));
            results.entry(line.custom_id).or_insert(outcome);
        }
        Ok(BatchStatus::Ended { status: batch.processing_status, results })
    }
}
