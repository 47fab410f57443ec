//! The AWS services the functions call (SQS, SNS, Secrets Manager, SSM and the Lambda Invoke
//! API) through the AWS SDK's clients, all built from one configuration: one HTTP client and
//! connection pool, the standard credential chain, timeouts, and retries with backoff.
//!
//! `docs/dispatch.md` ("AWS calls") has the measurements behind the choice of the SDK over
//! requests signed by hand.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use weir_engine::ErrorKind;

use crate::error::Error;

/// A connection to a service must open within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of a request, answer read: enough for a batch of ten messages, short enough
/// that a stuck connection is retried well inside an invocation.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A request with all its retries.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per request: throttling, 5xx answers, timeouts and broken connections are
/// retried with exponential backoff and jitter, within the SDK's retry quota.
const MAX_ATTEMPTS: u32 = 4;
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The region when neither the environment nor a profile names one (Lambda always sets
/// `AWS_REGION`; this serves local runs, without a metadata lookup).
const FALLBACK_REGION: &str = "us-east-1";

/// The AWS service clients of a function, built once at cold start and shared by every
/// invocation of a warm environment.
///
/// Credentials come from the SDK's standard chain: environment variables (what Lambda sets),
/// the shared profile files, web identity, container credentials
/// (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN` or its
/// `_FILE`, or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and the instance metadata service;
/// they are cached and refreshed before they expire. Endpoints can be overridden per
/// service with `AWS_ENDPOINT_URL_<SERVICE>` (`SQS`, `SNS`, `SECRETS_MANAGER`, `SSM`,
/// `LAMBDA`) or for all with `AWS_ENDPOINT_URL`.
///
/// ```no_run
/// # async fn example() {
/// use weir_functions::AwsClients;
///
/// // As the functions do: the environment, with weir's timeouts and retries.
/// let aws = AwsClients::from_env().await;
/// // An emulator's or moto's endpoint, with fixed credentials.
/// let local = AwsClients::load(
///     AwsClients::defaults().endpoint_url("http://127.0.0.1:5000").test_credentials(),
/// )
/// .await;
/// # let _ = (aws, local);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AwsClients {
    config: SdkConfig,
}

impl AwsClients {
    /// The configuration loader with weir's timeouts, retries and region fallback; the rest
    /// (credentials, endpoints) as the environment says.
    pub fn defaults() -> ConfigLoader {
        let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::new())
            .or_else(Region::from_static(FALLBACK_REGION));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF);
        aws_config::defaults(BehaviorVersion::latest()).region(region).timeout_config(timeouts).retry_config(retries)
    }

    /// The clients as the environment configures them, with weir's timeouts and retries.
    pub async fn from_env() -> Self {
        Self::load(Self::defaults()).await
    }

    /// The clients of `loader`'s configuration (start from [`defaults`](Self::defaults)).
    pub async fn load(loader: ConfigLoader) -> Self {
        AwsClients { config: loader.load().await }
    }

    /// The region requests go to.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(Region::as_ref)
    }

    /// An SQS client; `endpoint` overrides the configured one (a queue URL's origin).
    pub fn sqs(&self, endpoint: Option<&str>) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::config::Builder::from(&self.config);
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    /// An SNS client.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    /// A Secrets Manager client.
    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    /// An SSM client.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    /// A Lambda client.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }
}

/// The error of a failed call to `service`'s `operation`, after the SDK's retries, with what
/// to do about it: throttling, timeouts, broken connections and 5xx answers are transient
/// (retry the invocation); any other refusal (no permission, no such queue, topic or secret,
/// an invalid request) needs the configuration fixed.
pub(crate) fn failure<E>(service: &'static str, operation: &'static str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &error {
        SdkError::ServiceError(refusal) => refusal_kind(refusal.err().code(), refusal.raw().status().as_u16()),
        SdkError::ConstructionFailure(_) => ErrorKind::InvalidInput,
        _ => ErrorKind::Retryable,
    };
    Error::Aws { service, operation, kind, message: DisplayErrorContext(&error).to_string() }
}

/// What to do about a service's refusal with error `code` and HTTP `status`.
fn refusal_kind(code: Option<&str>, status: u16) -> ErrorKind {
    let transient = code.is_some_and(|code| THROTTLING_ERRORS.contains(&code) || TRANSIENT_ERRORS.contains(&code));
    match transient || status == 429 || status >= 500 {
        true => ErrorKind::Retryable,
        false => ErrorKind::InvalidInput,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient_and_refusals_are_not() {
        assert_eq!(refusal_kind(Some("ThrottlingException"), 400), ErrorKind::Retryable);
        assert_eq!(refusal_kind(Some("TooManyRequestsException"), 429), ErrorKind::Retryable);
        assert_eq!(refusal_kind(Some("RequestThrottled"), 403), ErrorKind::Retryable);
        assert_eq!(refusal_kind(Some("ServiceUnavailable"), 503), ErrorKind::Retryable);
        assert_eq!(refusal_kind(None, 500), ErrorKind::Retryable);
        assert_eq!(refusal_kind(Some("AccessDeniedException"), 400), ErrorKind::InvalidInput);
        assert_eq!(refusal_kind(Some("ResourceNotFoundException"), 404), ErrorKind::InvalidInput);
        assert_eq!(refusal_kind(Some("AWS.SimpleQueueService.NonExistentQueue"), 400), ErrorKind::InvalidInput);
    }
}
