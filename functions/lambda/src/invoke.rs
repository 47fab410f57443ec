//! Asynchronous invocations through the Lambda Invoke API: how an invocation that ran out
//! of time hands its remaining work to a fresh one.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::aws::{AwsClients, failure};
use crate::error::{Error, Result};

/// Invokes Lambda functions asynchronously (`InvocationType: Event`), at
/// `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`, so the local emulator works) when set,
/// else the regional endpoint.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
}

impl LambdaInvoker {
    /// An invoker calling through `aws`.
    pub fn new(aws: &AwsClients) -> Self {
        LambdaInvoker { client: aws.lambda() }
    }

    /// Queues an invocation of `function` (a name or ARN) with `payload`; Lambda answers
    /// 202 once it has accepted the event.
    pub async fn invoke_async(&self, function: &str, payload: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_vec(payload).expect("a JSON value serializes");
        let answer = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| failure("lambda", "Invoke", e))?;
        match answer.status_code() {
            202 => Ok(()),
            status => {
                Err(Error::Request { service: "lambda", reason: format!("Invoke answered {status} instead of 202") })
            }
        }
    }
}
