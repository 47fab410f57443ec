//! The Lambda Runtime API of one execution environment, as its runtime client sees it:
//! `invocation/next` hands over one invocation at a time, `response` and `error` answer
//! it, `init/error` reports a failed start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::invocation::{FunctionError, InvokeOutput};

/// The largest response a function may return, as on Lambda (6 MB).
pub(crate) const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// The Runtime API's version prefix.
const PREFIX: &str = "/2018-06-01/runtime";

/// An invocation on its way to the runtime, and where its outcome goes.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
    /// `Lambda-Runtime-Client-Context`: the caller's client context, as JSON.
    pub(crate) client_context: Option<String>,
    pub(crate) timeout: Duration,
    /// Told the deadline when the runtime takes the invocation: the timeout runs from then.
    pub(crate) taken: oneshot::Sender<Instant>,
    /// Told the function's answer.
    pub(crate) answer: oneshot::Sender<InvokeOutput>,
}

/// One environment's Runtime API, served on its own listener until dropped.
#[derive(Debug)]
pub(crate) struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) address: String,
    pub(crate) deliveries: mpsc::Sender<Delivery>,
    /// The document the runtime posted to `init/error`, once it has.
    pub(crate) init_error: watch::Receiver<Option<Bytes>>,
    /// The request being served, for labelling log lines.
    pub(crate) request_id: watch::Receiver<Option<String>>,
    _server: AbortOnDropHandle<()>,
}

#[derive(Debug)]
struct ApiState {
    deliveries: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
    /// The invocation the runtime holds: its request id and where the answer goes.
    in_flight: Mutex<Option<(String, oneshot::Sender<InvokeOutput>)>>,
    init_error: watch::Sender<Option<Bytes>>,
    request_id: watch::Sender<Option<String>>,
}

impl RuntimeApi {
    /// Serves a new Runtime API on 127.0.0.1 at a free port.
    pub(crate) async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?.to_string();
        // One invocation at a time: the environment sends the next only after the last was answered.
        let (deliveries, receiver) = mpsc::channel(1);
        let (init_error, init_error_receiver) = watch::channel(None);
        let (request_id, request_id_receiver) = watch::channel(None);
        let state = Arc::new(ApiState {
            deliveries: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(None),
            init_error,
            request_id,
        });
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next_invocation))
            .route(&format!("{PREFIX}/invocation/{{request_id}}/response"), post(invocation_response))
            .route(&format!("{PREFIX}/invocation/{{request_id}}/error"), post(invocation_error))
            .route(&format!("{PREFIX}/init/error"), post(report_init_error))
            // Sizes are checked by the handlers, so that a too large response fails its invocation.
            .layer(DefaultBodyLimit::disable())
            .with_state(state);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "a Runtime API server stopped");
            }
        });
        Ok(RuntimeApi {
            address,
            deliveries,
            init_error: init_error_receiver,
            request_id: request_id_receiver,
            _server: AbortOnDropHandle::new(server),
        })
    }
}

/// `GET invocation/next`: waits for an invocation and hands it over.
async fn next_invocation(State(state): State<Arc<ApiState>>) -> Response {
    let Some(delivery) = state.deliveries.lock().await.recv().await else {
        // The environment is going away; its process is about to be killed.
        return api_error(StatusCode::GONE, "EnvironmentGone", "the execution environment is shutting down");
    };
    let deadline_ms = (SystemTime::now() + delivery.timeout).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("lambda-runtime-aws-request-id", &delivery.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &delivery.function_arn);
    set("lambda-runtime-trace-id", &delivery.trace_id);
    if let Some(client_context) = &delivery.client_context {
        set("lambda-runtime-client-context", client_context);
    }
    set("content-type", "application/json");
    state.request_id.send_replace(Some(delivery.request_id.clone()));
    *state.in_flight.lock().expect("in-flight lock") = Some((delivery.request_id, delivery.answer));
    // The environment may have given up (killed for shutdown); then nobody waits for the deadline.
    let _ = delivery.taken.send(Instant::now() + delivery.timeout);
    (headers, delivery.payload).into_response()
}

/// `POST invocation/{id}/response`.
async fn invocation_response(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    let output = if body.len() > MAX_PAYLOAD_BYTES {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
            body.len()
        );
        InvokeOutput::failure(&request_id, FunctionError::new("Function.ResponseSizeTooLarge", message))
    } else {
        InvokeOutput::response(&request_id, body)
    };
    answer(&state, &request_id, output)
}

/// `POST invocation/{id}/error`.
async fn invocation_error(
    State(state): State<Arc<ApiState>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = body.slice(..body.len().min(MAX_PAYLOAD_BYTES));
    let output = InvokeOutput::reported_failure(&request_id, body, reported_error_type(&headers));
    answer(&state, &request_id, output)
}

/// `POST init/error`: the runtime could not start; it exits next.
async fn report_init_error(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = body.slice(..body.len().min(MAX_PAYLOAD_BYTES));
    let document = match serde_json::from_slice::<FunctionError>(&body) {
        Ok(_) => body,
        Err(_) => FunctionError::new(reported_error_type(&headers), String::from_utf8_lossy(&body)).to_document(),
    };
    state.init_error.send_replace(Some(document));
    accepted()
}

/// Passes the answer to the waiting invocation, if `request_id` is the one in flight.
fn answer(state: &ApiState, request_id: &str, output: InvokeOutput) -> Response {
    let mut in_flight = state.in_flight.lock().expect("in-flight lock");
    match in_flight.take_if(|(id, _)| id == request_id) {
        Some((_, answer)) => {
            // The invocation may have timed out just now; its answer is then moot.
            let _ = answer.send(output);
            accepted()
        }
        None => api_error(StatusCode::BAD_REQUEST, "InvalidRequestID", "Invalid request ID"),
    }
}

fn reported_error_type(headers: &HeaderMap) -> &str {
    headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).unwrap_or("Unhandled")
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (status, axum::Json(FunctionError::new(error_type, message))).into_response()
}
