//! Asynchronous invocations through the Lambda Invoke API: how an invocation that ran out
//! of time hands its remaining work to a fresh one.

use crate::aws::AwsClient;
use crate::error::{Error, Result};

/// Invokes Lambda functions asynchronously (`InvocationType: Event`).
///
/// `POST /2015-03-31/functions/{name}/invocations` at `AWS_ENDPOINT_URL_LAMBDA` (or
/// `AWS_ENDPOINT_URL`, so the local emulator works), else the regional endpoint.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    aws: AwsClient,
}

impl LambdaInvoker {
    /// An invoker signing with `aws`.
    pub fn new(aws: AwsClient) -> Self {
        LambdaInvoker { aws }
    }

    /// Queues an invocation of `function` (a name or ARN) with `payload`; Lambda answers
    /// 202 once it has accepted the event.
    pub async fn invoke_async(&self, function: &str, payload: &serde_json::Value) -> Result<()> {
        let name: String = url::form_urlencoded::byte_serialize(function.as_bytes()).collect();
        let url = format!("{}/2015-03-31/functions/{name}/invocations", self.aws.endpoint("lambda"));
        let headers = [("content-type", "application/json"), ("x-amz-invocation-type", "Event")];
        let body = serde_json::to_vec(payload).expect("a JSON value serializes");
        let response = self.aws.post("lambda", &url, &headers, body).await?;
        if response.status != reqwest::StatusCode::ACCEPTED {
            return Err(Error::Request {
                service: "lambda",
                reason: format!("HTTP {} instead of 202", response.status),
            });
        }
        Ok(())
    }
}
