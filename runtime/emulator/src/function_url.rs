//! Function URLs: a function's own HTTP endpoint, as Lambda serves one. Each request becomes
//! an invocation whose payload is Lambda's function URL event (payload format 2.0), and the
//! function's answer becomes the HTTP response by Lambda's rules: a JSON object with a
//! `statusCode` is a response (status, headers, cookies, body, `isBase64Encoded`); anything
//! else is a 200 whose body is the answer as the function wrote it. A failed invocation is a
//! 502, a throttled one a 429. Authentication is `NONE`: every request is let through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::function::WhenBusy;
use crate::ids;
use crate::runtime_api::MAX_PAYLOAD_BYTES;
use crate::switchboard::Switchboard;

/// What one function URL needs to turn requests into invocations.
#[derive(Debug)]
struct Endpoint {
    switchboard: Arc<Switchboard>,
    function: String,
    /// The host clients reach it at, `127.0.0.1:PORT`: the event's `domainName`.
    domain: String,
}

/// The function URL of `function`, reached at `domain`.
pub(crate) fn router(switchboard: Arc<Switchboard>, function: &str, domain: &str) -> Router {
    let endpoint = Endpoint { switchboard, function: function.to_owned(), domain: domain.to_owned() };
    Router::new()
        .fallback(request)
        // Checked by the handler, to answer as Lambda does.
        .layer(DefaultBodyLimit::disable())
        .with_state(Arc::new(endpoint))
}

async fn request(
    State(endpoint): State<Arc<Endpoint>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await {
        Ok(body) => body,
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let request_id = ids::request_id();
    let event = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &body,
        client,
    }
    .event(&endpoint.domain, &request_id);
    let payload = Bytes::from(serde_json::to_vec(&event).expect("an event serializes"));
    match endpoint.switchboard.invoke(&endpoint.function, payload, None, WhenBusy::Throttle).await {
        Ok(output) if output.function_error.is_none() => response(&output.payload),
        Ok(output) => {
            tracing::warn!(function = %endpoint.function, request_id = %output.request_id, "function URL invocation failed");
            plain(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Err(Error::Throttled { .. }) => plain(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        Err(e) => {
            tracing::warn!(function = %endpoint.function, error = %e, "function URL invocation not made");
            plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    }
}

/// The parts of an HTTP request that the event carries.
struct HttpRequest<'r> {
    method: &'r str,
    path: &'r str,
    query: &'r str,
    headers: &'r HeaderMap,
    body: &'r [u8],
    client: SocketAddr,
}

impl HttpRequest<'_> {
    /// Lambda's function URL event for this request.
    fn event(&self, domain: &str, request_id: &str) -> Value {
        let mut headers = Map::new();
        let mut cookies = Vec::new();
        for (name, value) in self.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if name == header::COOKIE {
                cookies.extend(value.split(';').map(|cookie| cookie.trim().to_owned()));
                continue;
            }
            // Repeated headers arrive as one, their values joined by commas.
            match headers.get_mut(name.as_str()) {
                Some(Value::String(joined)) => *joined = format!("{joined},{value}"),
                _ => drop(headers.insert(name.as_str().to_owned(), Value::String(value))),
            }
        }
        let mut parameters = Map::new();
        for (name, value) in url_pairs(self.query) {
            match parameters.get_mut(&name) {
                Some(Value::String(joined)) => *joined = format!("{joined},{value}"),
                _ => drop(parameters.insert(name, Value::String(value))),
            }
        }
        let (body, is_base64_encoded) = match (is_text(self.headers), std::str::from_utf8(self.body)) {
            _ if self.body.is_empty() => (Value::Null, false),
            (true, Ok(text)) => (Value::String(text.to_owned()), false),
            _ => (Value::String(STANDARD.encode(self.body)), true),
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let user_agent = self.headers.get(header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": domain,
                "domainName": domain,
                "domainPrefix": domain.split(':').next().unwrap_or(domain),
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.client.ip().to_string(),
                    "userAgent": user_agent,
                },
                "requestId": request_id,
                "routeKey": "$default",
                "stage": "$default",
                "time": clf_time(now.as_secs()),
                "timeEpoch": now.as_millis() as u64,
            },
            "body": body,
            "isBase64Encoded": is_base64_encoded,
        });
        if !parameters.is_empty() {
            event["queryStringParameters"] = Value::Object(parameters);
        }
        if !cookies.is_empty() {
            event["cookies"] = json!(cookies);
        }
        event
    }
}

/// Whether Lambda passes a body of this content type as text; others are base64-encoded.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let content_type = content_type.to_ascii_lowercase();
    content_type.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded", "yaml"].iter().any(|kind| content_type.contains(kind))
}

/// The query's name-value pairs, percent-decoded (`+` is a space).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |part: &str| {
        let part = part.replace('+', " ");
        let bytes = part.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) => {
                    decoded.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    decoded.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&decoded).into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The HTTP response for a function's answer.
fn response(answer: &[u8]) -> Response {
    let structured = serde_json::from_slice::<Value>(answer).ok().filter(|value| value.get("statusCode").is_some());
    let Some(answer) = structured else {
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Bytes::copy_from_slice(answer))
            .into_response();
    };
    let status = answer["statusCode"].as_u64().and_then(|code| StatusCode::from_u16(code as u16).ok());
    let Some(status) = status else {
        tracing::warn!("a function URL answer's statusCode is not an HTTP status");
        return plain(StatusCode::BAD_GATEWAY, "Internal Server Error");
    };
    let body = match (&answer["body"], answer["isBase64Encoded"] == true) {
        (Value::String(body), true) => match STANDARD.decode(body) {
            Ok(bytes) => bytes,
            Err(_) => return plain(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        },
        (Value::String(body), false) => body.clone().into_bytes(),
        (Value::Null, _) => Vec::new(),
        (other, _) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(given) = answer["headers"].as_object() {
        for (name, value) in given {
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value)) {
                headers.insert(name, value);
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if let Ok(value) = HeaderValue::try_from(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], json!({"Message": message}).to_string()).into_response()
}

/// `06/Dec/2026:18:03:58 +0000`: the event's `requestContext.time`.
fn clf_time(epoch_seconds: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, seconds) = ((epoch_seconds / 86_400) as i64, epoch_seconds % 86_400);
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_in_common_log_format() {
        assert_eq!(clf_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(clf_time(1_583_348_638), "04/Mar/2020:19:03:58 +0000");
        assert_eq!(clf_time(1_709_164_800), "29/Feb/2024:00:00:00 +0000");
    }

    #[test]
    fn query_pairs_are_decoded_and_repeats_joined() {
        let headers = HeaderMap::new();
        let client = SocketAddr::from(([127, 0, 0, 1], 5000));
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "a=1&a=2&approval=x%2Ey&q=two+words",
            headers: &headers,
            body: b"",
            client,
        };
        let event = request.event("127.0.0.1:9002", "r-1");
        assert_eq!(event["queryStringParameters"], json!({"a": "1,2", "approval": "x.y", "q": "two words"}));
        assert_eq!(event["rawQueryString"], "a=1&a=2&approval=x%2Ey&q=two+words");
        assert_eq!(event["body"], Value::Null);
    }

    #[test]
    fn binary_bodies_are_base64_and_text_bodies_are_not() {
        let mut headers = HeaderMap::new();
        let client = SocketAddr::from(([127, 0, 0, 1], 5000));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let text = HttpRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"{}", client };
        assert_eq!(
            (text.event("h", "r")["body"].clone(), text.event("h", "r")["isBase64Encoded"].clone()),
            (json!("{}"), json!(false))
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let binary = HttpRequest { method: "POST", path: "/", query: "", headers: &headers, body: &[0, 159], client };
        assert_eq!(binary.event("h", "r")["body"], json!("AJ8="));
        assert_eq!(binary.event("h", "r")["isBase64Encoded"], json!(true));
    }

    #[test]
    fn answers_with_a_status_code_are_responses_and_others_are_bodies() {
        let answer = json!({"statusCode": 409, "headers": {"x-why": "twice"}, "body": "{\"error\":\"answered\"}"});
        let response = response(answer.to_string().as_bytes());
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()["x-why"], "twice");
        assert_eq!(super::response(br#"{"accepted": 3}"#).status(), StatusCode::OK);
    }
}
