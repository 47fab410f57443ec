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

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    fn enter(counters: &'a Counters, arrived: Instant) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        InFlight { counters, arrived }
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

/// One HTTP/1.1 request: method, path, body, and whether the client asked to close.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

/// Reads the requests of one keep-alive connection in turn.
///
/// Only what `reqwest` and curl send is understood: a head, then a `Content-Length` body.
/// Anything else is a [`io::ErrorKind::InvalidData`] error naming what was wrong.
struct Requests<R> {
    reader: R,
    buffer: Vec<u8>,
}

impl<R: Read> Requests<R> {
    fn new(reader: R) -> Self {
        Requests { reader, buffer: Vec::with_capacity(16 * 1024) }
    }

    /// The next request; `None` once the client closed the connection between requests.
    fn next(&mut self) -> io::Result<Option<Request>> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if !self.fill()? {
                return if self.buffer.is_empty() { Ok(None) } else { Err(invalid("connection closed mid-head")) };
            }
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let (Some(method), Some(path)) = (request_line.next(), request_line.next()) else {
            return Err(invalid("request line is not `METHOD PATH VERSION`"));
        };
        let (method, path) = (method.to_string(), path.to_string());
        let (mut length, mut close) = (0, false);
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| invalid("header line without `:`"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| invalid("Content-Length is not a number"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("Transfer-Encoding is not supported: send a Content-Length body"));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body_start = head_end + 4;
        while self.buffer.len() < body_start + length {
            if !self.fill()? {
                return Err(invalid("connection closed mid-body"));
            }
        }
        let body = self.buffer[body_start..body_start + length].to_vec();
        self.buffer.drain(..body_start + length);
        Ok(Some(Request { method, path, body, close }))
    }

    /// Reads more bytes; false at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.reader.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read > 0)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A whole HTTP/1.1 response, head and body, for one `write`.
fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(100 + body.len());
    let head = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
    reply.extend_from_slice(head.as_bytes());
    reply.extend_from_slice(body);
    reply
}

/// The reply to a chat request that arrived at `arrived`, sent once the delay has passed.
fn chat(server: &Server, body: &[u8], arrived: Instant) -> Vec<u8> {
    let _in_flight = InFlight::enter(&server.counters, arrived);
    // This thread serves only this connection, whose client waits for the reply: sleeping
    // here, to the deadline, is as precise as the kernel's timer and wakes nothing else.
    std::thread::sleep((arrived + server.delay).saturating_duration_since(Instant::now()));
    let id = product_id(body);
    let call_tool = !has_tool_result(body) && {
        let turn = server.counters.first_turns.fetch_add(1, Ordering::Relaxed);
        server.tool_every > 0 && turn.is_multiple_of(server.tool_every)
    };
    let (head, tail) = if call_tool {
        server.counters.tool_calls.fetch_add(1, Ordering::Relaxed);
        (TOOL_HEAD, TOOL_TAIL)
    } else {
        (ANSWER_HEAD, ANSWER_TAIL)
    };
    response("200 OK", [head, id, tail].concat().as_bytes())
}

fn stats(server: &Server) -> Vec<u8> {
    let c = &server.counters;
    let body = format!(
        r#"{{"requests":{},"tool_calls":{},"in_flight":{},"peak_in_flight":{},"served_us":{}}}"#,
        c.requests.load(Ordering::Relaxed),
        c.tool_calls.load(Ordering::Relaxed),
        c.in_flight.load(Ordering::Relaxed),
        c.peak_in_flight.load(Ordering::Relaxed),
        c.served_us.load(Ordering::Relaxed),
    );
    response("200 OK", body.as_bytes())
}

fn reset(server: &Server) -> Vec<u8> {
    let c = &server.counters;
    for counter in [&c.requests, &c.first_turns, &c.tool_calls, &c.peak_in_flight, &c.served_us] {
        counter.store(0, Ordering::Relaxed);
    }
    c.peak_in_flight.store(c.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    response("200 OK", b"{}")
}

/// Serves one connection until the client closes it or sends something this server does not
/// understand (answered with 400 and the reason, then closed).
fn serve(server: &Server, stream: TcpStream) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut requests = Requests::new(stream);
    loop {
        let request = match requests.next() {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let body = serde_json::json!({"error": {"message": e.to_string(), "type": "invalid_request_error"}});
                return writer.write_all(&response("400 Bad Request", body.to_string().as_bytes()));
            }
            Err(e) => return Err(e),
        };
        let arrived = Instant::now();
        let reply = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/stats") => stats(server),
            ("POST", "/stats/reset") => reset(server),
            ("POST", _) => chat(server, &request.body, arrived),
            _ => response("404 Not Found", br#"{"error":{"message":"not found"}}"#),
        };
        writer.write_all(&reply)?;
        if request.close {
            return Ok(());
        }
    }
}

// A thread per connection, blocking I/O and no async runtime: a request costs one read, one
// sleep and one write, and no hand-off between threads, so the server costs far less CPU than
// the engine it feeds and its replies are late by the kernel's timer slack only. The client
// keeps one connection per request in flight (HTTP/1.1), a few hundred at most.
fn main() -> io::Result<()> {
    let args = Args::parse();
    let server = Arc::new(Server {
        delay: Duration::from_millis(args.delay_ms),
        tool_every: args.tool_every,
        counters: Counters::default(),
    });
    let listener = TcpListener::bind(("127.0.0.1", args.port))?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        stream.set_nodelay(true)?;
        let server = server.clone();
        // Connection errors (a client gone mid-request) end that connection only.
        std::thread::Builder::new().stack_size(64 * 1024).spawn(move || serve(&server, stream))?;
    }
    Ok(())
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
    fn reads_keep_alive_requests_in_turn() {
        let wire = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhelloGET /stats HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut requests = Requests::new(&wire[..]);
        let first = requests.next().unwrap().unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str(), &first.body[..], first.close),
            ("POST", "/v1/chat/completions", &b"hello"[..], false)
        );
        let second = requests.next().unwrap().unwrap();
        assert_eq!(
            (second.method.as_str(), second.path.as_str(), second.body.len(), second.close),
            ("GET", "/stats", 0, true)
        );
        assert!(requests.next().unwrap().is_none());
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_reason() {
        let cases: [(&[u8], &str); 4] = [
            (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", "Transfer-Encoding"),
            (b"POST / HTTP/1.1\r\ncontent-length: ten\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nshort", "mid-body"),
            (b"POST / HTTP/1.1\r\nhost", "mid-head"),
        ];
        for (wire, reason) in cases {
            let error = Requests::new(wire).next().unwrap_err();
            assert!(error.to_string().contains(reason), "{error}");
        }
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
