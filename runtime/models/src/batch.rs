//! Provider batch APIs: chat requests submitted together and answered within hours, at half
//! the token price (docs/batch-calls.md). A model configured with `batch: true` has one
//! ([`ChatModel::batch`](crate::ChatModel::batch)).

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::chat::{ChatRequest, ChatResponse};
use crate::error::ModelError;
use crate::secret::ApiKey;

/// One request of a provider batch, with the id its result is matched by.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest {
    /// Unique in its batch; the provider's `custom_id`.
    pub custom_id: String,
    /// The turn, as [`ChatModel::chat`](crate::ChatModel::chat) would send it.
    pub request: ChatRequest,
}

/// Where a provider batch is.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchStatus {
    /// Still at work; the provider's own word for how far (`validating`, `in_progress`, ...).
    Running(String),
    /// Done, whether it completed, failed, expired or was cancelled (`status`): the results it
    /// has, by custom id. A request it has no result for was not answered.
    Ended {
        /// The provider's final status.
        status: String,
        /// Each answered request's reply, or why the provider could not answer it.
        results: BTreeMap<String, Result<ChatResponse, String>>,
    },
}

/// A provider's batch API for one model.
#[async_trait]
pub trait BatchApi: Debug + Send + Sync + 'static {
    /// Submits `requests` as one provider batch; returns its id.
    async fn submit(&self, requests: &[BatchRequest]) -> Result<String, ModelError>;

    /// Where the batch `id` is, with its results once it has ended. `requests` are its
    /// requests still waiting, by custom id: how to read a reply may depend on its request (a
    /// structured answer in Anthropic's is the call of the output schema's tool).
    async fn poll(&self, id: &str, requests: &BTreeMap<String, ChatRequest>) -> Result<BatchStatus, ModelError>;
}

/// The few requests a batch API makes, over reqwest: a handful per invocation, each worth
/// making again by the next one, so no retries or breaker of their own.
#[derive(Debug, Clone)]
pub(crate) struct BatchHttp {
    provider: &'static str,
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    key: ApiKey,
}

impl BatchHttp {
    pub(crate) fn new(
        provider: &'static str,
        headers: reqwest::header::HeaderMap,
        key: ApiKey,
        timeout_ms: u64,
    ) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(timeout_ms))
            .build()
            .map_err(|e| ModelError::Config(format!("{provider} batch client: {e}")))?;
        Ok(BatchHttp { provider, client, headers, key })
    }

    /// The body of a successful reply to `request`.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes, ModelError> {
        let transport = |e: reqwest::Error| ModelError::Transport {
            provider: self.provider.to_owned(),
            message: self.key.scrub(&e.to_string()),
        };
        let reply = request.headers(self.headers.clone()).send().await.map_err(transport)?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let message: String = text.trim().chars().take(500).collect();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|json| json.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or(message);
            return Err(ModelError::Status {
                provider: self.provider.to_owned(),
                status: status.as_u16(),
                message: self.key.scrub(&message),
            });
        }
        Ok(body)
    }

    /// The JSON reply to `request`, as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ModelError> {
        let body = self.send(request).await?;
        serde_json::from_slice(&body).map_err(|e| self.malformed(e.to_string()))
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) fn malformed(&self, message: impl AsRef<str>) -> ModelError {
        ModelError::Malformed { provider: self.provider.to_owned(), message: self.key.scrub(message.as_ref()) }
    }
}
