//! Requests to AWS services signed with SigV4: the Lambda Invoke API, SQS and SNS.
//!
//! `aws-sigv4` and the shared `reqwest` client instead of the AWS SDK crates, which would
//! compile a second HTTP stack; see `docs/dispatch.md` for the measurement.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use crate::error::{Error, Result};

/// The services this crate calls, by signing name.
const SERVICES: [&str; 3] = ["lambda", "sqs", "sns"];

/// Static credentials, as Lambda provides them in the environment.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Signs and sends requests to AWS services (or to emulators at overridden endpoints).
#[derive(Debug, Clone)]
pub struct AwsClient {
    http: reqwest::Client,
    credentials: AwsCredentials,
    region: String,
    endpoints: HashMap<String, String>,
}

/// A service's answer: its status and body.
#[derive(Debug)]
pub struct AwsResponse {
    /// The HTTP status.
    pub status: reqwest::StatusCode,
    pub body: Bytes,
}

impl AwsClient {
    /// A client with these credentials in `region`, using the services' public endpoints.
    pub fn new(credentials: AwsCredentials, region: impl Into<String>) -> Self {
        AwsClient { http: reqwest::Client::new(), credentials, region: region.into(), endpoints: HashMap::new() }
    }

    /// Reads the credentials, the region and endpoint overrides as the AWS SDKs do:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL_<SERVICE>` and `AWS_ENDPOINT_URL`.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let required = |name: &'static str| var(name).ok_or_else(|| Error::config(name, "is not set"));
        let credentials = AwsCredentials {
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        };
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        let mut client = AwsClient::new(credentials, region);
        for service in SERVICES {
            let specific = format!("AWS_ENDPOINT_URL_{}", service.to_uppercase());
            if let Some(endpoint) = var(&specific).or_else(|| var("AWS_ENDPOINT_URL")) {
                client = client.with_endpoint(service, endpoint);
            }
        }
        Ok(client)
    }

    /// Sends requests for `service` (`lambda`, `sqs`, `sns`) to `endpoint` instead.
    pub fn with_endpoint(mut self, service: &str, endpoint: impl Into<String>) -> Self {
        self.endpoints.insert(service.to_string(), endpoint.into().trim_end_matches('/').to_string());
        self
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The base URL of `service`: the override, else its public endpoint in the region.
    pub(crate) fn endpoint(&self, service: &str) -> String {
        match self.endpoints.get(service) {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://{service}.{}.amazonaws.com", self.region),
        }
    }

    /// Signs a POST of `body` to `url` for `service` and sends it; a non-2xx answer is an
    /// error carrying its status and the start of its body.
    pub async fn post(
        &self,
        service: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<AwsResponse> {
        let identity = Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            self.credentials.session_token.clone(),
            None,
            "environment",
        )
        .into();
        let signing_error = |e: &dyn std::fmt::Display| Error::Request { service, reason: format!("signing: {e}") };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing_error(&e))?
            .into();
        let signable = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(&body))
            .map_err(|e| signing_error(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| signing_error(&e))?.into_parts();
        let mut request = self.http.post(url);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| Error::request(service, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Error::request(service, e))?;
        if !status.is_success() {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(500).collect();
            return Err(Error::Request { service, reason: format!("HTTP {status}: {excerpt}") });
        }
        Ok(AwsResponse { status, body })
    }
}
