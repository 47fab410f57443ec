//! `fake-openai`: an OpenAI-compatible chat server that answers review-analysis requests
//! after a fixed delay, for `agent-bench`.
//!
//! ```text
//! fake-openai --delay-ms 20 --tool-every 10
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` once bound (port 0 by default: any free one), then
//! serves:
//!
//! - `POST …/chat/completions`: after `--delay-ms`, a chat completion whose content is the
//!   review-analysis answer `{"id":…,"score":…,"reasons":[…]}`, echoing the product id of the
//!   request's `Product: …` line. One first-turn request in `--tool-every` (by arrival order)
//!   gets a `notify_shipping_manager` tool call instead; a request that carries a tool result
//!   gets the answer. Bodies are not parsed as JSON: the id is found by a byte search, and the
//!   reply is a fixed prefix and suffix around it, so a request costs far less CPU than the
//!   engine spends on it.
//! - `GET /stats`: `{"requests":…,"tool_calls":…,"in_flight":…,"peak_in_flight":…,"served_us":…}`,
//!   `served_us` summing each chat request's time from arrival to reply.
//! - `POST /stats/reset`: zeroes the counters (and the peak).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "A fake OpenAI-compatible chat server answering review-analysis requests after a fixed delay")]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before each reply, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// One first-turn request in this many calls the notify tool first (0: never).
    #[arg(long, default_value_t = 10)]
    tool_every: u64,
}

/// Request counters; `peak_in_flight` is the most requests ever between arrival and reply.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    first_turns: AtomicU64,
    tool_calls: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    /// Microseconds from each chat request's arrival (its body read) to its reply.
    served_us: AtomicU64,
}

#[derive(Debug)]
struct Server {
    delay: Duration,
    tool_every: u64,
    counters: Counters,
}

/// Counts a request in flight, and the time it is served, until dropped.
struct InFlight<'a> {
    counters: &'a Counters,
    arrived: Instant,
}

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        InFlight { counters, arrived: Instant::now() }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let served = u64::try_from(self.arrived.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.served_us.fetch_add(served, Ordering::Relaxed);
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

const ANSWER_HEAD: &str = r#"{"id":"chatcmpl-fake","object":"chat.completion","model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"{\"id\":\""#;
const ANSWER_TAIL: &str = r#"\",\"score\":4,\"reasons\":[\"comfortable\",\"good value\"]}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":150,"completion_tokens":20}}"#;
const TOOL_HEAD: &str = r#"{"id":"chatcmpl-fake","object":"chat.completion","model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"notify_shipping_manager","arguments":"{\"id\":\""#;
const TOOL_TAIL: &str = r#"\",\"summary\":\"late delivery\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":150,"completion_tokens":20}}"#;

/// The product id after `Product: ` in the request, up to the first character that could
/// need escaping; `unknown` if there is none.
fn product_id(body: &[u8]) -> &str {
    const MARK: &[u8] = b"Product: ";
    let Some(start) = body.windows(MARK.len()).position(|w| w == MARK).map(|i| i + MARK.len()) else {
        return "unknown";
    };
    let rest = &body[start..];
    let end = rest.iter().position(|b| !(b.is_ascii_alphanumeric() || b"-_.".contains(b))).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok().filter(|id| !id.is_empty()).unwrap_or("unknown")
}

fn has_tool_result(body: &[u8]) -> bool {
    const MARK: &[u8] = br#""role":"tool""#;
    body.windows(MARK.len()).any(|w| w == MARK)
}

async fn chat(State(server): State<Arc<Server>>, body: Bytes) -> impl IntoResponse {
    let in_flight = InFlight::enter(&server.counters);
    // tokio's timer wakes on whole milliseconds, late by about one on average (20 ms asked,
    // 21 to 22 served): the delay is slept on a blocking-pool thread, to its deadline.
    let deadline = in_flight.arrived + server.delay;
    let slept =
        tokio::task::spawn_blocking(move || std::thread::sleep(deadline.saturating_duration_since(Instant::now())));
    slept.await.expect("a sleep does not panic");
    let id = product_id(&body);
    let call_tool = !has_tool_result(&body) && {
        let turn = server.counters.first_turns.fetch_add(1, Ordering::Relaxed);
        server.tool_every > 0 && turn % server.tool_every == 0
    };
    let (head, tail) = if call_tool {
        server.counters.tool_calls.fetch_add(1, Ordering::Relaxed);
        (TOOL_HEAD, TOOL_TAIL)
    } else {
        (ANSWER_HEAD, ANSWER_TAIL)
    };
    let mut reply = String::with_capacity(head.len() + id.len() + tail.len());
    reply.push_str(head);
    reply.push_str(id);
    reply.push_str(tail);
    ([(CONTENT_TYPE, "application/json")], reply)
}

async fn stats(State(server): State<Arc<Server>>) -> impl IntoResponse {
    let c = &server.counters;
    let body = format!(
        r#"{{"requests":{},"tool_calls":{},"in_flight":{},"peak_in_flight":{},"served_us":{}}}"#,
        c.requests.load(Ordering::Relaxed),
        c.tool_calls.load(Ordering::Relaxed),
        c.in_flight.load(Ordering::Relaxed),
        c.peak_in_flight.load(Ordering::Relaxed),
        c.served_us.load(Ordering::Relaxed),
    );
    ([(CONTENT_TYPE, "application/json")], body)
}

async fn reset(State(server): State<Arc<Server>>) {
    let c = &server.counters;
    for counter in [&c.requests, &c.first_turns, &c.tool_calls, &c.peak_in_flight, &c.served_us] {
        counter.store(0, Ordering::Relaxed);
    }
    c.peak_in_flight.store(c.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
}

// One thread: the server must cost far less CPU than the engine it feeds, and stay off the
// benchmark's second core as much as it can.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = Arc::new(Server {
        delay: Duration::from_millis(args.delay_ms),
        tool_every: args.tool_every,
        counters: Counters::default(),
    });
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset))
        .fallback(post(chat))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_product_id_in_a_request() {
        let body = br#"{"messages":[{"role":"user","content":"Product: product-042\nReview: great"}]}"#;
        assert_eq!(product_id(body), "product-042");
        assert_eq!(product_id(b"{}"), "unknown");
        assert!(!has_tool_result(body));
        assert!(has_tool_result(br#"[{"role":"tool","content":"ok"}]"#));
    }

    #[test]
    fn replies_are_chat_completions_with_the_answer_shape() {
        for (head, tail) in [(ANSWER_HEAD, ANSWER_TAIL), (TOOL_HEAD, TOOL_TAIL)] {
            let reply: serde_json::Value = serde_json::from_str(&format!("{head}p-1{tail}")).unwrap();
            let message = &reply["choices"][0]["message"];
            let text = message["content"].as_str().or(message["tool_calls"][0]["function"]["arguments"].as_str());
            let inner: serde_json::Value = serde_json::from_str(text.unwrap()).unwrap();
            assert_eq!(inner["id"], "p-1");
        }
    }
}
