//! HTTP requests from a Lambda function URL or an API Gateway HTTP API (payload v2): the
//! body is one JSON object, a JSON array or JSON lines, stored all or nothing.

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine as _;
use serde_json::{Value, json};
use weir_engine::{ErrorKind, TraceParent};

use super::{IngestFunction, with_trace_parent};

/// Appends the request's records as one batch: its id is the `Idempotency-Key` header if
/// given, else the request id, so a client retrying with the same key stores them once.
/// A W3C `traceparent` header is kept with each record, so that their spans join the
/// caller's trace; one that is malformed is ignored, as the specification asks.
pub(super) async fn ingest(function: &IngestFunction, request: LambdaFunctionUrlRequest) -> Value {
    let method = request.request_context.http.method.as_deref().unwrap_or_default();
    if let Some(token) = request.query_string_parameters.get("approval") {
        return super::approval::answer(function, method, token).await;
    }
    if function.approvals_only {
        return answer(403, json!({"error": super::APPROVALS_ONLY}));
    }
    if !method.eq_ignore_ascii_case("POST") {
        return answer(405, json!({"error": format!("method {method} not allowed; POST the records")}));
    }
    let batch_id = match request.headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) if !key.is_empty() => format!("http:{key}"),
        _ => match request.request_context.request_id {
            Some(id) => format!("http-request:{id}"),
            None => return answer(400, json!({"error": "no Idempotency-Key header and no request id"})),
        },
    };
    let body = request.body.unwrap_or_default();
    let body = match request.is_base64_encoded {
        false => body.into_bytes(),
        true => match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(bytes) => bytes,
            Err(e) => return answer(400, json!({"error": format!("the body is not valid base64: {e}")})),
        },
    };
    // Several `tracestate` lines are one list, joined with commas (W3C Trace Context).
    let state: Vec<&str> = request.headers.get_all("tracestate").iter().filter_map(|v| v.to_str().ok()).collect();
    let parent = request.headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|v| {
        v.parse::<TraceParent>().inspect_err(|error| tracing::debug!(%error, "traceparent ignored")).ok()
    });
    let parent = parent.map(|p| p.with_state(Some(&state.join(","))));
    let events = match function.records.parse_body(&body) {
        Ok(events) => with_trace_parent(events, parent),
        Err(refused) => {
            function.refused(1);
            let error = format!("record refused, nothing stored: {refused}");
            return answer(400, json!({"error": error, "record": refused.record, "reason": refused.reason}));
        }
    };
    match function.append(&batch_id, &events).await {
        Ok(_) => answer(200, json!({"accepted": events.len()})),
        Err(e) => {
            function.refused(1);
            tracing::error!(batch_id, error = %e, "append failed");
            let status = if e.kind() == ErrorKind::Retryable { 503 } else { 500 };
            answer(status, json!({"error": format!("could not store the records: {e}")}))
        }
    }
}

/// A function URL / HTTP API response with a JSON body.
pub(super) fn answer(status: u16, body: Value) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}
