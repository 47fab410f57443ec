//! Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`), enough of it for
//! the AWS CLI and SDKs, and for functions that invoke others or themselves; and
//! `GetFunctionUrlConfig` (`GET /2021-10-31/functions/{name}/url`), for functions that find a
//! sibling's URL. Signatures are not checked.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;

use crate::error::Error;
use crate::function::WhenBusy;
use crate::runtime_api::MAX_PAYLOAD_BYTES;
use crate::switchboard::Switchboard;

/// What the API answers from: the functions, and their URLs.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) switchboard: Arc<Switchboard>,
    /// Function URLs by function name.
    pub(crate) function_urls: HashMap<String, String>,
    /// The region of the ARNs it gives.
    pub(crate) region: String,
}

/// The Invoke API over `api`.
pub(crate) fn router(api: Api) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .route("/2021-10-31/functions/{function}/url", get(function_url_config))
        // Checked by the handler, to answer in Lambda's words.
        .layer(DefaultBodyLimit::disable())
        .with_state(Arc::new(api))
}

/// `GetFunctionUrlConfig`: the function's URL, as Lambda describes it.
async fn function_url_config(State(api): State<Arc<Api>>, Path(function): Path<String>) -> Response {
    let function = function_name(&function);
    if api.switchboard.check(function).is_err() {
        return service_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
        );
    }
    let Some(url) = api.function_urls.get(function) else {
        let message = format!("The resource you requested does not exist: function {function} has no URL");
        return service_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &message);
    };
    // Set once, when the emulator started.
    const STARTED: &str = "2026-01-01T00:00:00.000+0000";
    let body = json!({
        "FunctionUrl": url,
        "FunctionArn": format!("arn:aws:lambda:{}:000000000000:function:{function}", api.region),
        "AuthType": "NONE",
        "InvokeMode": "BUFFERED",
        "CreationTime": STARTED,
        "LastModifiedTime": STARTED,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn invoke(
    State(api): State<Arc<Api>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let function = function_name(&function);
    if payload.len() > MAX_PAYLOAD_BYTES {
        let message = format!("Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the Invoke operation");
        return service_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLargeException", &message);
    }
    let client_context = match client_context(&headers) {
        Ok(client_context) => client_context,
        Err(message) => return service_error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", &message),
    };
    let switchboard = &api.switchboard;
    let invocation_type = headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok());
    let result = match invocation_type.unwrap_or("RequestResponse") {
        "RequestResponse" => {
            switchboard.invoke(function, payload, client_context, WhenBusy::Throttle).await.map(|output| {
                let mut response = (
                    StatusCode::OK,
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::HeaderName::from_static("x-amz-executed-version"), "$LATEST"),
                    ],
                    output.payload,
                )
                    .into_response();
                if output.function_error.is_some() {
                    response.headers_mut().insert("x-amz-function-error", "Unhandled".parse().expect("a valid header"));
                }
                with_request_id(response, &output.request_id)
            })
        }
        "Event" => switchboard
            .invoke_in_background(function, payload, client_context)
            .map(|request_id| with_request_id(StatusCode::ACCEPTED.into_response(), &request_id)),
        "DryRun" => switchboard.check(function).map(|()| StatusCode::NO_CONTENT.into_response()),
        other => {
            let message = format!("X-Amz-Invocation-Type `{other}` is not one of RequestResponse, Event or DryRun");
            return service_error(StatusCode::BAD_REQUEST, "InvalidParameterValueException", &message);
        }
    };
    result.unwrap_or_else(|e| match e {
        Error::UnknownFunction(name) => {
            service_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &format!("Function not found: {name}"))
        }
        Error::Throttled { .. } => throttled(&e),
        other => service_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceException", &other.to_string()),
    })
}

/// The function's name from what a caller may pass: a name, `name:qualifier`, or an ARN.
fn function_name(given: &str) -> &str {
    let name = given.rsplit_once(":function:").map_or(given, |(_, name)| name);
    name.split(':').next().unwrap_or(name)
}

/// `X-Amz-Client-Context` is base64-encoded JSON; the runtime receives it decoded.
fn client_context(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(encoded) = headers.get("x-amz-client-context") else { return Ok(None) };
    let invalid = || "X-Amz-Client-Context must be base64-encoded JSON".to_owned();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()).map_err(|_| invalid())?;
    serde_json::from_slice::<serde_json::Value>(&decoded).map_err(|_| invalid())?;
    String::from_utf8(decoded).map(Some).map_err(|_| invalid())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Lambda's answer to a synchronous invocation beyond the function's concurrency, which AWS
/// SDKs and the CLI retry with backoff.
fn throttled(error: &Error) -> Response {
    tracing::warn!("throttled: {error}");
    let body = json!({"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded."});
    error_response(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", body)
}

/// An error of the API itself, in the shape AWS clients parse: the type in
/// `x-amzn-ErrorType`, the message in the body.
fn service_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    error_response(status, error_type, json!({"Type": "User", "Message": message}))
}

/// `body`, with the error type added to it and in `x-amzn-ErrorType`.
fn error_response(status: StatusCode, error_type: &'static str, mut body: serde_json::Value) -> Response {
    body["__type"] = error_type.into();
    let headers = [(header::HeaderName::from_static("x-amzn-errortype"), error_type)];
    (status, headers, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_names_qualifiers_and_arns() {
        assert_eq!(function_name("echo"), "echo");
        assert_eq!(function_name("echo:$LATEST"), "echo");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:echo"), "echo");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:000000000000:function:echo:live"), "echo");
    }

    #[test]
    fn client_context_is_decoded_and_must_be_json() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_context(&headers), Ok(None));
        headers.insert("x-amz-client-context", "eyJjdXN0b20iOnsiYSI6MX19".parse().unwrap());
        assert_eq!(client_context(&headers), Ok(Some(r#"{"custom":{"a":1}}"#.to_owned())));
        headers.insert("x-amz-client-context", "bm90IGpzb24=".parse().unwrap());
        assert!(client_context(&headers).is_err());
    }
}
