//! HTTP endpoints as tools.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_models::{RetryPolicy, ToolSpec};

use crate::config_value::{ConfigValue, MissingEnvVar};
use crate::tool::{Tool, ToolError};

/// The header carrying the journal's idempotency key, the same on every attempt of one call.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Pause before the first retry when the server does not say, doubled for each further one.
const INITIAL_BACKOFF_MS: u64 = 200;
/// Longest pause before a retry, also bounding a server's `Retry-After`.
const MAX_BACKOFF_MS: u64 = 10_000;

/// How much of an error reply's body goes into the error.
const BODY_EXCERPT_CHARS: usize = 300;

/// An HTTP tool as an agent file declares it.
///
/// ```
/// let yaml_as_json = r#"{
///     "name": "lookup_order",
///     "description": "Finds an order by its id.",
///     "url": "https://orders.example.com/lookup",
///     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
///     "headers": {"Authorization": {"env": "ORDERS_TOKEN", "prefix": "Bearer "}},
///     "timeout_ms": 5000
/// }"#;
/// let config: weir_tools::HttpToolConfig = serde_json::from_str(yaml_as_json).unwrap();
/// assert_eq!(config.retries, 2);
/// assert!(!config.at_most_once);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToolConfig {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Where the arguments are POSTed, as JSON.
    pub url: String,
    /// A JSON Schema of the arguments; by default an object with any properties.
    #[serde(default = "any_object_schema")]
    pub parameters: Value,
    /// Headers sent with every call; values may come from environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, ConfigValue>,
    /// How long one attempt may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts made again, with the same key, after a transport error or a reply worth
    /// another attempt (408, 409, 429, 5xx, as `x-should-retry` may say otherwise), after
    /// the wait the server asks for (`Retry-After`) or a jittered backoff: the model
    /// clients' [`RetryPolicy`](weir_models::RetryPolicy).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Never call twice for one call: no retries, and no new attempt after a crash.
    #[serde(default)]
    pub at_most_once: bool,
    /// The endpoint only reads: a replay may call it for real (`docs/replay.md`).
    #[serde(default)]
    pub read_only: bool,
}

fn any_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_retries() -> u32 {
    2
}

/// An [`HttpToolConfig`] that cannot become a tool.
#[derive(Debug, thiserror::Error)]
pub enum HttpToolError {
    /// The URL does not parse.
    #[error("HTTP tool `{tool}`: invalid url: {reason}")]
    InvalidUrl {
        /// The tool's name.
        tool: String,
        /// Why the URL does not parse.
        reason: String,
    },
    /// A header's value names an environment variable that is not set.
    #[error("HTTP tool `{tool}`: {source}")]
    MissingEnvVar {
        /// The tool's name.
        tool: String,
        /// The variable and the header.
        source: MissingEnvVar,
    },
    /// A header's name or value is not valid in HTTP; the value is not shown, it may be secret.
    #[error("HTTP tool `{tool}`: header `{header}` has an invalid name or value")]
    InvalidHeader {
        /// The tool's name.
        tool: String,
        /// The header's name.
        header: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP tool `{tool}`: cannot build its HTTP client: {source}")]
    Client {
        /// The tool's name.
        tool: String,
        /// What the client builder reported.
        source: reqwest::Error,
    },
}

/// A tool that POSTs its JSON arguments to a URL; the reply's JSON (or text) is the result.
///
/// Every attempt carries the journal's idempotency key in an `Idempotency-Key` header, so
/// an endpoint that honours it runs a retried call once. A 5xx reply or a transport error is
/// retried ([`HttpToolConfig::retries`]); any other non-2xx reply is a [`ToolError`] naming
/// the status, with an excerpt of the body.
///
/// ```no_run
/// use weir_tools::{HttpTool, HttpToolConfig, Tool};
///
/// # async fn run(config: HttpToolConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let tool = HttpTool::new(&config)?;
/// let order = tool.call(serde_json::json!({"order_id": "42"}), "order-42-lookup").await?;
/// # Ok(()) }
/// ```
pub struct HttpTool {
    spec: ToolSpec,
    url: Url,
    headers: HeaderMap,
    client: Client,
    retry: RetryPolicy,
    at_most_once: bool,
    read_only: bool,
}

impl HttpTool {
    /// The tool `config` declares; header values from the environment are read now.
    pub fn new(config: &HttpToolConfig) -> Result<Self, HttpToolError> {
        let tool = || config.name.clone();
        let url = Url::parse(&config.url)
            .map_err(|error| HttpToolError::InvalidUrl { tool: tool(), reason: error.to_string() })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let value = value
                .resolve(&format!("header `{name}`"))
                .map_err(|source| HttpToolError::MissingEnvVar { tool: tool(), source })?;
            let invalid = || HttpToolError::InvalidHeader { tool: tool(), header: name.clone() };
            let name = HeaderName::try_from(name.as_str()).map_err(|_| invalid())?;
            let mut value = HeaderValue::try_from(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|source| HttpToolError::Client { tool: tool(), source })?;
        Ok(HttpTool {
            spec: ToolSpec {
                name: config.name.clone(),
                description: config.description.clone(),
                parameters: config.parameters.clone().into(),
            },
            url,
            headers,
            client,
            retry: RetryPolicy {
                max_retries: if config.at_most_once { 0 } else { config.retries },
                initial_backoff_ms: INITIAL_BACKOFF_MS,
                max_backoff_ms: MAX_BACKOFF_MS,
            },
            at_most_once: config.at_most_once,
            read_only: config.read_only,
        })
    }

    /// One POST: the result, or why it failed and whether another attempt may succeed.
    async fn attempt(&self, arguments: &Value, idempotency_key: &str) -> Result<Value, Failure> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(IDEMPOTENCY_KEY_HEADER, idempotency_key)
            .json(arguments)
            .send()
            .await
            .map_err(|error| self.transport_failure(error))?;
        let status = response.status();
        if status.is_success() {
            return read_result(response).await.map_err(|error| self.transport_failure(error));
        }
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let error = ToolError::new(format!("`{}` answered {status}: {}", self.spec.name, excerpt(&body)));
        let retry = RetryPolicy::is_retryable(status, &headers).then_some(Some(headers));
        Err(Failure { error, retry })
    }

    fn transport_failure(&self, error: reqwest::Error) -> Failure {
        // A request that could not be built (a key that is no header value) fails alike again.
        let retryable = !error.is_builder();
        // The URL stays out of the message: a query string may hold a secret.
        let error = error.without_url();
        let mut message = format!("`{}` could not be reached: {error}", self.spec.name);
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            message.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        Failure { error: ToolError::new(message), retry: retryable.then_some(None) }
    }
}

/// A failed attempt.
struct Failure {
    error: ToolError,
    /// `Some` if another attempt may succeed, with the reply's headers if there was a reply.
    retry: Option<Option<HeaderMap>>,
}

/// The body of a 2xx reply: its JSON, else its text; nothing at all is `null`.
async fn read_result(response: Response) -> Result<Value, reqwest::Error> {
    let body = response.bytes().await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())))
}

/// The start of `body`, enough to tell what went wrong without flooding the model.
fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(BODY_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    }
}

#[async_trait]
impl Tool for HttpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn at_most_once(&self) -> bool {
        self.at_most_once
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError> {
        let mut retries = 0;
        loop {
            let failure = match self.attempt(&arguments, idempotency_key).await {
                Ok(result) => return Ok(result),
                Err(failure) => failure,
            };
            let Some(headers) = failure.retry else { return Err(failure.error) };
            if retries >= self.retry.max_retries {
                // Still failing in a way another attempt might not: the tool is down.
                return Err(ToolError::unavailable(failure.error.message));
            }
            let delay = self.retry.delay(retries, headers.as_ref());
            tracing::warn!(tool = %self.spec.name, retries, delay_ms = delay.as_millis() as u64, error = %failure.error, "HTTP tool call failed; retrying");
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }
}

impl fmt::Debug for HttpTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTool")
            .field("name", &self.spec.name)
            .field("retry", &self.retry)
            .field("at_most_once", &self.at_most_once)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(BODY_EXCERPT_CHARS + 10);
        let cut = excerpt(&body);
        assert_eq!(cut.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("  short\n"), "short");
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        let error = serde_json::from_str::<HttpToolConfig>(
            r#"{"name": "a", "description": "b", "url": "http://127.0.0.1/", "timeout": 5}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("unknown field `timeout`"), "{error}");
    }

    #[test]
    fn a_missing_variable_fails_the_tool_naming_it() {
        let config: HttpToolConfig = serde_json::from_str(
            r#"{"name": "orders", "description": "b", "url": "http://127.0.0.1/",
                "headers": {"Authorization": {"env": "WEIR_TOOLS_TEST_UNSET_TOKEN"}}}"#,
        )
        .unwrap();
        let error = HttpTool::new(&config).unwrap_err().to_string();
        assert!(error.contains("`orders`") && error.contains("WEIR_TOOLS_TEST_UNSET_TOKEN"), "{error}");
        assert!(error.contains("header `Authorization`"), "{error}");
    }
}
