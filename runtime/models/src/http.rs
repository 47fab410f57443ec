//! The HTTP layer under every provider: timeouts, retries, a concurrency limit and counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::breaker::Breaker;
use crate::error::ModelError;
use crate::retry::RetryPolicy;
use crate::secret::ApiKey;
use crate::stats::{ModelStats, StatsRecorder};
use crate::transport::{Transport, TransportError};

/// How a model client talks HTTP. Unnamed fields keep their defaults.
///
/// ```
/// let settings: weir_models::HttpSettings = serde_json::from_str(r#"{"max_retries": 5}"#).unwrap();
/// assert_eq!(settings.max_retries, 5);
/// assert_eq!(settings.max_concurrency, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Longest wait for one attempt's whole reply, in milliseconds.
    pub request_timeout_ms: u64,
    /// Longest wait for a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Attempts after the first on rate limits, overload, server errors, timeouts and
    /// connection failures.
    pub max_retries: u32,
    /// Wait before the first retry when the server does not say, doubled for each further
    /// one, with jitter; in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait before a retry, also bounding a server's `Retry-After`; in milliseconds.
    pub max_backoff_ms: u64,
    /// Most requests of this client in flight at once.
    pub max_concurrency: usize,
    /// Consecutive failed calls (after their retries) that open the circuit breaker: while
    /// it is open, calls fail at once without a request. 0: never opens.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one call probes the provider, in
    /// milliseconds; doubled at each failed probe, up to ten times this.
    pub breaker_cooldown_ms: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_timeout_ms: 120_000,
            connect_timeout_ms: 10_000,
            max_retries: 3,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            max_concurrency: 8,
            breaker_failures: 3,
            breaker_cooldown_ms: 30_000,
        }
    }
}

/// One provider URL that JSON is posted to, shared by the clones of a model client.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    provider: &'static str,
    key: Option<ApiKey>,
    settings: HttpSettings,
    transport: Transport,
    permits: Semaphore,
    stats: StatsRecorder,
    breaker: Breaker,
}

/// An attempt's failure, and whether another attempt may succeed.
struct Failure {
    error: ModelError,
    retry: Retry,
}

enum Retry {
    No,
    /// After the wait the reply's headers ask for, if any.
    After(Option<HeaderMap>),
}

impl Endpoint {
    /// An endpoint posting to `url` with `headers` (auth included); `key` is scrubbed from
    /// whatever the provider sends back.
    pub(crate) fn new(
        provider: &'static str,
        url: Url,
        headers: HeaderMap,
        key: Option<ApiKey>,
        settings: &HttpSettings,
    ) -> Result<Self, ModelError> {
        if settings.max_concurrency == 0 {
            return Err(ModelError::Config(format!("{provider}: http.max_concurrency must be at least 1")));
        }
        let transport = Transport::new(
            url,
            headers,
            Duration::from_millis(settings.connect_timeout_ms),
            Duration::from_millis(settings.request_timeout_ms),
        )
        .map_err(|error| ModelError::Config(format!("{provider}: {error}")))?;
        let shared = Shared {
            provider,
            key,
            permits: Semaphore::new(settings.max_concurrency),
            settings: settings.clone(),
            transport,
            stats: StatsRecorder::default(),
            breaker: Breaker::new(settings.breaker_failures, Duration::from_millis(settings.breaker_cooldown_ms)),
        };
        Ok(Endpoint { shared: Arc::new(shared) })
    }

    /// The error of a call its breaker holds back for `wait` more.
    fn breaker_open(&self, wait: Duration) -> ModelError {
        let message = format!("not asked: it failed repeatedly; the next try is in {} ms", wait.as_millis());
        ModelError::Unavailable { provider: self.shared.provider.to_owned(), message }
    }

    /// What this endpoint has done so far, and whether its breaker is open.
    pub(crate) fn stats(&self) -> ModelStats {
        ModelStats { breaker_open: self.shared.breaker.open_for().is_some(), ..self.shared.stats.snapshot() }
    }

    /// Posts `body`, retrying what may succeed on another attempt, and turns the reply into
    /// the caller's type with `convert`. The call is counted in [`Endpoint::stats`].
    pub(crate) async fn call<Reply: DeserializeOwned, Out>(
        &self,
        body: &impl Serialize,
        convert: impl FnOnce(Reply) -> Result<Out, ModelError>,
    ) -> Result<Out, ModelError> {
        let started = Instant::now();
        let shared = &*self.shared;
        if let Err(wait) = shared.breaker.admit() {
            shared.stats.call_ended(started.elapsed(), true);
            return Err(self.breaker_open(wait));
        }
        let result = self.post_with_retries(body).await.and_then(convert);
        match &result {
            Err(error) if error.is_unavailable() => {
                if shared.breaker.failed() {
                    tracing::warn!(provider = shared.provider, %error, "circuit breaker open: the provider is not asked for a while");
                }
            }
            // Answered, even with an error of the request's own: the provider is up.
            _ => shared.breaker.succeeded(),
        }
        shared.stats.call_ended(started.elapsed(), result.is_err());
        result
    }

    async fn post_with_retries<T: DeserializeOwned>(&self, body: &impl Serialize) -> Result<T, ModelError> {
        // Bytes: each attempt sends the same body without copying it.
        let body = bytes::Bytes::from(
            serde_json::to_vec(body).map_err(|error| self.malformed(format!("cannot encode request: {error}")))?,
        );
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(&body).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            let Retry::After(headers) = failure.retry else { return Err(failure.error) };
            if attempt >= self.shared.settings.max_retries {
                return Err(failure.error);
            }
            let delay = self.shared.settings.retry_policy().delay(attempt, headers.as_ref());
            tracing::warn!(
                provider = self.shared.provider,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying a model request"
            );
            self.shared.stats.retrying();
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, body: &bytes::Bytes) -> Result<T, Failure> {
        let shared = &*self.shared;
        // Held until the reply is read: the limit is on requests the provider is working on.
        let _permit = shared.permits.acquire().await.expect("the semaphore is never closed");
        if let Some(wait) = shared.breaker.open_for() {
            return Err(Failure { error: self.breaker_open(wait), retry: Retry::No });
        }
        shared.stats.request_sent();
        let reply = shared.transport.post(body.clone()).await.map_err(|error| self.transport(error))?;
        if !reply.status.is_success() {
            let text = String::from_utf8_lossy(&reply.body);
            let error = ModelError::Status {
                provider: shared.provider.to_owned(),
                status: reply.status.as_u16(),
                message: self.scrub(&provider_message(reply.status, &text)),
            };
            let retry = if RetryPolicy::is_retryable(reply.status, &reply.headers) {
                Retry::After(Some(reply.headers))
            } else {
                Retry::No
            };
            return Err(Failure { error, retry });
        }
        tracing::debug!(
            provider = shared.provider,
            status = reply.status.as_u16(),
            bytes = reply.body.len(),
            "model reply"
        );
        parse_reply(&reply.body).map_err(|problem| Failure { error: self.malformed(problem), retry: Retry::No })
    }

    /// A failure to send or to read the reply: worth retrying, as timeouts and resets pass.
    fn transport(&self, error: TransportError) -> Failure {
        let message = if error.timed_out {
            format!("timed out after {} ms", self.shared.settings.request_timeout_ms)
        } else {
            error.message
        };
        let error = ModelError::Transport { provider: self.shared.provider.to_owned(), message: self.scrub(&message) };
        Failure { error, retry: Retry::After(None) }
    }

    /// A reply that could not be understood.
    pub(crate) fn malformed(&self, message: impl AsRef<str>) -> ModelError {
        ModelError::Malformed { provider: self.shared.provider.to_owned(), message: self.scrub(message.as_ref()) }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.shared.key {
            Some(key) => key.scrub(text),
            None => text.to_owned(),
        }
    }
}

/// A reply body as `T`, or what was wrong with it and where, such as
/// ``content[0]: missing field `input` ``.
fn parse_reply<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(|error| {
        match error.path().to_string().as_str() {
            "." => error.inner().to_string(),
            path => format!("{path}: {}", error.inner()),
        }
    })
}

/// `{base}/{path}?{query}`, or a configuration error naming the bad base URL.
pub(crate) fn endpoint_url(base: &str, path: &str, query: &BTreeMap<String, String>) -> Result<Url, ModelError> {
    let joined = format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'));
    let mut url = Url::parse(&joined).map_err(|error| ModelError::Config(format!("base URL `{base}`: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ModelError::Config(format!("base URL `{base}`: only http and https are supported")));
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// A header carrying a secret: marked sensitive so that it is never printed.
pub(crate) fn secret_header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), ModelError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ModelError::Config("the API key has characters not allowed in an HTTP header".to_owned()))?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The most of an unrecognised error body kept in a message.
const MAX_ERROR_BODY_CHARS: usize = 500;

/// The provider's own words from an error body: `error.message` (OpenAI, Anthropic) with its
/// `error.type`, or `error` as a string (Ollama), else the start of the body.
fn provider_message(status: StatusCode, body: &str) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let text_at = |pointer: &str| json.as_ref().and_then(|json| json.pointer(pointer)).and_then(Value::as_str);
    let message = text_at("/error/message").or_else(|| text_at("/error")).or_else(|| text_at("/message"));
    match (message, text_at("/error/type")) {
        (Some(message), Some(kind)) => format!("{message} ({kind})"),
        (Some(message), None) => message.to_owned(),
        _ if body.trim().is_empty() => status.canonical_reason().unwrap_or("no reason given").to_owned(),
        _ => body.trim().chars().take(MAX_ERROR_BODY_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_are_found_in_every_error_shape() {
        let openai = r#"{"error": {"message": "Bad key", "type": "invalid_request_error", "code": null}}"#;
        assert_eq!(provider_message(StatusCode::UNAUTHORIZED, openai), "Bad key (invalid_request_error)");
        assert_eq!(provider_message(StatusCode::NOT_FOUND, r#"{"error": "model not found"}"#), "model not found");
        assert_eq!(provider_message(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>"), "<html>bad gateway</html>");
        assert_eq!(provider_message(StatusCode::SERVICE_UNAVAILABLE, ""), "Service Unavailable");
        assert_eq!(provider_message(StatusCode::BAD_GATEWAY, &"x".repeat(2000)).len(), MAX_ERROR_BODY_CHARS);
    }

    #[test]
    fn a_malformed_reply_names_where_it_is_wrong() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Reply {
            content: Vec<Block>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Block {
            input: Value,
        }
        let problem = |body: &str| parse_reply::<Reply>(body.as_bytes()).unwrap_err();
        for (body, start) in [
            (r#"{"content": [{"input": {}}, {}]}"#, "content[1]: missing field `input` at line 1"),
            (r#"{"contents": []}"#, "missing field `content` at line 1"),
            ("<html>", "expected value at line 1"),
        ] {
            assert!(problem(body).starts_with(start), "{body}: {}", problem(body));
        }
    }

    #[test]
    fn urls_join_the_base_and_path_and_carry_the_query() {
        let query = BTreeMap::from([("api-version".to_owned(), "2024-10-21".to_owned())]);
        let url = endpoint_url("https://x.example/openai/v1/", "/chat/completions", &query).unwrap();
        assert_eq!(url.as_str(), "https://x.example/openai/v1/chat/completions?api-version=2024-10-21");
        assert!(matches!(endpoint_url("not a url", "x", &BTreeMap::new()), Err(ModelError::Config(_))));
        assert!(matches!(endpoint_url("ftp://x.example", "x", &BTreeMap::new()), Err(ModelError::Config(_))));
    }
}
