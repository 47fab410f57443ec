//! A webhook: each output is POSTed as JSON with its delivery id in `Idempotency-Key`.

use std::time::Duration;

use futures::future::try_join_all;

use super::Delivery;
use crate::error::{Error, Result};

/// How long a receiver may take to answer one POST.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// POSTs outputs to a URL, a batch's concurrently.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    http: reqwest::Client,
    url: String,
}

impl WebhookSink {
    /// Outputs POSTed at once.
    pub const MAX_BATCH: usize = 16;

    /// A webhook at `url`.
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("a plain client builds");
        WebhookSink { http, url: url.to_string() }
    }

    /// POSTs each output; any answer but 2xx fails the batch.
    pub async fn deliver(&self, batch: &[Delivery]) -> Result<()> {
        try_join_all(batch.iter().map(|delivery| self.post(delivery))).await?;
        Ok(())
    }

    async fn post(&self, delivery: &Delivery) -> Result<()> {
        let response = self
            .http
            .post(&self.url)
            .header("idempotency-key", &delivery.id)
            .json(&delivery.payload)
            .send()
            .await
            .map_err(|e| Error::request("webhook", e))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(Error::Request {
                service: "webhook",
                reason: format!("HTTP {status} for delivery {}", delivery.id),
            }),
        }
    }
}
