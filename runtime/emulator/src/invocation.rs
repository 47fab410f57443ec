//! What goes into an invocation, and what comes out: the function's response, or its
//! failure in Lambda's `{errorType, errorMessage}` shape.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids;

/// One invocation on its way to a function.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    /// The caller's client context, as JSON (the Invoke API receives it base64-encoded).
    pub(crate) client_context: Option<String>,
}

impl Invocation {
    /// An invocation with a fresh request id.
    pub(crate) fn new(payload: Bytes, client_context: Option<String>) -> Self {
        Invocation { request_id: ids::request_id(), payload, client_context }
    }
}

/// The result of one synchronous invocation, as the Invoke API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutput {
    /// The request id the function saw (`x-amzn-RequestId`).
    pub request_id: String,
    /// The function's response, or the error document when it failed.
    pub payload: Bytes,
    /// Set when the invocation failed (`X-Amz-Function-Error: Unhandled`).
    pub function_error: Option<FunctionError>,
}

impl InvokeOutput {
    pub(crate) fn response(request_id: &str, payload: Bytes) -> Self {
        InvokeOutput { request_id: request_id.to_owned(), payload, function_error: None }
    }

    /// A failure whose document is `error` itself: one the emulator observed (a timeout, a
    /// crash) rather than one the function reported.
    pub(crate) fn failure(request_id: &str, error: FunctionError) -> Self {
        InvokeOutput { request_id: request_id.to_owned(), payload: error.to_document(), function_error: Some(error) }
    }

    /// A failure the function reported, with its document passed on as it was written;
    /// `error_type` (the `Lambda-Runtime-Function-Error-Type` header) names a failure whose
    /// document is not in the usual shape.
    pub(crate) fn reported_failure(request_id: &str, document: Bytes, error_type: &str) -> Self {
        let error = FunctionError::from_document(&document, error_type);
        InvokeOutput { request_id: request_id.to_owned(), payload: document, function_error: Some(error) }
    }
}

/// A function failure: what `lambda_runtime` posts to `/invocation/{id}/error`, and what
/// the emulator answers for timeouts and crashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    /// The kind of failure: an error type name, or `Runtime.ExitError`, `Sandbox.Timedout`, ….
    pub error_type: String,
    /// What went wrong.
    pub error_message: String,
}

impl FunctionError {
    /// A failure of `error_type` saying `error_message`.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        FunctionError { error_type: error_type.into(), error_message: error_message.into() }
    }

    /// The JSON document Lambda returns for this failure.
    pub fn to_document(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a FunctionError serializes"))
    }

    /// Reads a reported failure; one not in the usual shape is kept whole as the message.
    fn from_document(document: &[u8], error_type: &str) -> Self {
        serde_json::from_slice(document)
            .unwrap_or_else(|_| FunctionError::new(error_type, String::from_utf8_lossy(document)))
    }
}
