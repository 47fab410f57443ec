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
//!   reply is a fixed prefix and suffix around it, so a request costs the server a few
//!   microseconds of its own beyond the kernel's TCP: less than half the CPU the benchmark
//!   process spends on it.
//! - `GET /stats`: `{"requests":…,"tool_calls":…,"in_flight":…,"peak_in_flight":…,"served_us":…,"read_late_us":…,"cpu_ms":…}`,
//!   `served_us` summing each chat request's time from arrival to reply, `read_late_us` the
//!   time from its arrival to when the server got to read it, `cpu_ms` the server's own CPU
//!   time (user and system, all threads).
//! - `POST /stats/reset`: zeroes the counters (and the peak).
//!
//! A request arrives when the kernel received it (`SO_TIMESTAMPNS`), not when the server's
//! reader thread got a core to read it: its delay does not include the wait for a core on a
//! machine the server shares with the process it answers.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;

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
    /// Microseconds from each chat request's arrival (the kernel's receive time of its last
    /// bytes) to its reply.
    served_us: AtomicU64,
    /// Microseconds from each chat request's arrival to when the reader thread read it.
    read_late_us: AtomicU64,
    /// The process's CPU time at the last reset, in milliseconds.
    cpu_ms_at_reset: AtomicU64,
}

#[derive(Debug)]
struct Server {
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
    let Some(start) = find(body, MARK).map(|i| i + MARK.len()) else {
        return "unknown";
    };
    let rest = &body[start..];
    let end = rest.iter().position(|b| !(b.is_ascii_alphanumeric() || b"-_.".contains(b))).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok().filter(|id| !id.is_empty()).unwrap_or("unknown")
}

fn has_tool_result(body: &[u8]) -> bool {
    const MARK: &[u8] = br#""role":"tool""#;
    find(body, MARK).is_some()
}

/// One HTTP/1.1 request: method, path, body, and whether the client asked to close.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

/// Takes the first whole request off the front of `buffer`; `None` while it is incomplete.
///
/// Only what `reqwest` and curl send is understood: a head, then a `Content-Length` body.
/// Anything else is a [`io::ErrorKind::InvalidData`] error naming what was wrong.
fn take_request(buffer: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let Some(head_end) = find(buffer, b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
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
    if buffer.len() < body_start + length {
        return Ok(None);
    }
    let body = buffer[body_start..body_start + length].to_vec();
    buffer.drain(..body_start + length);
    Ok(Some(Request { method, path, body, close }))
}

/// Where `needle` first occurs in `haystack`: memchr's vectorised search, since requests carry
/// a few kilobytes of prompt and schema before the product line.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
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

/// The reply to a chat request, decided when it arrives (so "one in `--tool-every`" counts
/// arrivals) and sent once the delay has passed.
fn chat(server: &Server, body: &[u8]) -> Vec<u8> {
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
        r#"{{"requests":{},"tool_calls":{},"in_flight":{},"peak_in_flight":{},"served_us":{},"read_late_us":{},"cpu_ms":{}}}"#,
        c.requests.load(Ordering::Relaxed),
        c.tool_calls.load(Ordering::Relaxed),
        c.in_flight.load(Ordering::Relaxed),
        c.peak_in_flight.load(Ordering::Relaxed),
        c.served_us.load(Ordering::Relaxed),
        c.read_late_us.load(Ordering::Relaxed),
        cpu_ms().saturating_sub(c.cpu_ms_at_reset.load(Ordering::Relaxed)),
    );
    response("200 OK", body.as_bytes())
}

fn cpu_ms() -> u64 {
    u64::try_from(weir_bench::cpu_time().as_millis()).unwrap_or(u64::MAX)
}

fn reset(server: &Server) -> Vec<u8> {
    let c = &server.counters;
    for counter in [&c.requests, &c.first_turns, &c.tool_calls, &c.peak_in_flight, &c.served_us, &c.read_late_us] {
        counter.store(0, Ordering::Relaxed);
    }
    c.peak_in_flight.store(c.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
    c.cpu_ms_at_reset.store(cpu_ms(), Ordering::Relaxed);
    response("200 OK", b"{}")
}

/// Writes all of `bytes` to a non-blocking socket. The client reads each reply before it
/// sends its next request, so the socket's buffer is full only if the client stopped reading.
fn write_all(mut stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_micros(100)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A chat reply waiting for its deadline.
struct Pending<'a> {
    stream: Arc<TcpStream>,
    reply: Vec<u8>,
    close: bool,
    in_flight: InFlight<'a>,
}

/// Chat replies in deadline order, for the threads that send each at its deadline.
///
/// Every request waits the same delay, so arrival order is deadline order: a queue, whose
/// senders sleep to the front's deadline and send replies while they are due. Only a push onto
/// an empty queue wakes them, so a busy server costs about one wake-up per group of replies
/// falling due together, not one per request.
struct Replies<'a> {
    delay: Duration,
    queue: Mutex<VecDeque<(Instant, Pending<'a>)>>,
    pushed: Condvar,
}

impl<'a> Replies<'a> {
    fn push(&self, arrived: Instant, pending: Pending<'a>) {
        let mut queue = self.queue.lock().expect("no thread panics holding the queue");
        queue.push_back((arrived + self.delay, pending));
        if queue.len() == 1 {
            self.pushed.notify_all();
        }
    }

    /// Sends replies as they fall due, forever.
    fn send(&self) -> ! {
        loop {
            let Pending { stream, reply, close, in_flight } = self.next_due();
            // Out of flight before the client can see the reply and send its next request.
            drop(in_flight);
            // A client gone mid-request loses its reply only.
            if write_all(&stream, &reply).is_ok() && close {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
        }
    }

    /// The front reply, once due.
    fn next_due(&self) -> Pending<'a> {
        let mut queue = self.queue.lock().expect("no thread panics holding the queue");
        loop {
            let Some(&(deadline, _)) = queue.front() else {
                queue = self.pushed.wait(queue).expect("no thread panics holding the queue");
                continue;
            };
            let now = Instant::now();
            if deadline <= now {
                return queue.pop_front().expect("not empty").1;
            }
            // The kernel's timer, to the microsecond, with no lock held: arrivals go on queueing.
            drop(queue);
            std::thread::sleep(deadline - now);
            queue = self.queue.lock().expect("no thread panics holding the queue");
        }
    }
}

/// One client connection: its socket (shared with the reply sender) and the bytes of a
/// request not yet whole.
struct Connection {
    stream: Arc<TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    /// Reads what arrived and answers every whole request in it; false once the connection
    /// is done (closed by the client, asked to close, or sent something this server does not
    /// understand, which is answered with 400 and the reason).
    fn readable<'a>(&mut self, server: &'a Server, replies: &Replies<'a>) -> io::Result<bool> {
        let read_at = Instant::now();
        let mut received: Option<SystemTime> = None;
        let mut chunk = [0u8; 16 * 1024];
        let mut open = true;
        loop {
            match receive(&self.stream, &mut chunk) {
                Ok((0, _)) => {
                    open = false;
                    break;
                }
                Ok((read, stamp)) => {
                    received = stamp.or(received);
                    self.buffer.extend_from_slice(&chunk[..read]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let arrived = received.map_or(read_at, |at| arrival(at, read_at));
        loop {
            let request = match take_request(&mut self.buffer) {
                Ok(Some(request)) => request,
                Ok(None) => return Ok(open),
                Err(e) => {
                    let body =
                        serde_json::json!({"error": {"message": e.to_string(), "type": "invalid_request_error"}});
                    write_all(&self.stream, &response("400 Bad Request", body.to_string().as_bytes()))?;
                    return Ok(false);
                }
            };
            let reply = match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/stats") => stats(server),
                ("POST", "/stats/reset") => reset(server),
                ("POST", _) => {
                    let late = u64::try_from((read_at - arrived).as_micros()).unwrap_or(u64::MAX);
                    server.counters.read_late_us.fetch_add(late, Ordering::Relaxed);
                    let in_flight = InFlight::enter(&server.counters, arrived);
                    let reply = chat(server, &request.body);
                    let pending = Pending { stream: self.stream.clone(), reply, close: request.close, in_flight };
                    replies.push(arrived, pending);
                    continue;
                }
                _ => response("404 Not Found", br#"{"error":{"message":"not found"}}"#),
            };
            write_all(&self.stream, &reply)?;
            if request.close {
                return Ok(false);
            }
        }
    }
}

/// Reads what is there, with the kernel's receive time of the last of it.
fn receive(stream: &TcpStream, chunk: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut iov = [io::IoSliceMut::new(chunk)];
    let mut control = nix::cmsg_space!(TimeSpec);
    let message = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(control.as_mut_slice()), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let stamp = message.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(at) => Some(UNIX_EPOCH + Duration::from(at)),
            _ => None,
        })
    });
    Ok((message.bytes, stamp))
}

/// The instant of a kernel receive time (on the wall clock), no later than `read_at`.
fn arrival(received: SystemTime, read_at: Instant) -> Instant {
    let (now, wall) = (Instant::now(), SystemTime::now());
    now.checked_sub(wall.duration_since(received).unwrap_or_default()).map_or(read_at, |at| at.min(read_at))
}

/// Threads sending replies: while one writes a reply (which on loopback also delivers it to
/// the client), another can send the next one due.
const SENDERS: usize = 2;

const LISTENER: Token = Token(usize::MAX);

/// Accepts connections and reads requests on one thread with `epoll`, until the process is
/// killed.
fn serve<'a>(server: &'a Server, replies: &Replies<'a>, mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut connections: HashMap<Token, Connection> = HashMap::new();
    let mut next_token = 0;
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            setsockopt(&stream, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
                            let token = Token(next_token);
                            next_token += 1;
                            poll.registry().register(&mut stream, token, Interest::READABLE)?;
                            connections.insert(token, Connection { stream: Arc::new(stream), buffer: Vec::new() });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let Some(connection) = connections.get_mut(&event.token()) else { continue };
            // Connection errors (a client gone mid-request) end that connection only.
            if !connection.readable(server, replies).unwrap_or(false) {
                let connection = connections.remove(&event.token()).expect("just found");
                poll.registry().deregister(&mut SourceFd(&connection.stream.as_raw_fd()))?;
            }
        }
    }
}

// No async runtime: one thread reads requests for every connection with `epoll`, two sleep
// to the next reply's deadline and send what is due. A busy server wakes about once per group
// of requests rather than twice per request (as a thread per connection did): 0.04 to 0.07 ms
// of CPU per request against the benchmark process's 0.12 to 0.18 (agent-bench's "model server
// CPU" column), with replies late by the kernel's timer slack plus the wait for a core.
fn main() -> io::Result<()> {
    let args = Args::parse();
    let server = Server { tool_every: args.tool_every, counters: Counters::default() };
    let replies = Replies {
        delay: Duration::from_millis(args.delay_ms),
        queue: Mutex::new(VecDeque::new()),
        pushed: Condvar::new(),
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    std::thread::scope(|scope| {
        for _ in 0..SENDERS {
            scope.spawn(|| {
                replies.send();
            });
        }
        serve(&server, &replies, TcpListener::from_std(listener))
    })
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
    fn takes_keep_alive_requests_in_turn_once_whole() {
        let wire = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhelloGET /stats HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut buffer = wire[..60].to_vec();
        assert!(take_request(&mut buffer).unwrap().is_none(), "the body is not whole yet");
        buffer.extend_from_slice(&wire[60..]);
        let first = take_request(&mut buffer).unwrap().unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str(), &first.body[..], first.close),
            ("POST", "/v1/chat/completions", &b"hello"[..], false)
        );
        let second = take_request(&mut buffer).unwrap().unwrap();
        assert_eq!(
            (second.method.as_str(), second.path.as_str(), second.body.len(), second.close),
            ("GET", "/stats", 0, true)
        );
        assert!(take_request(&mut buffer).unwrap().is_none());
        assert!(buffer.is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_reason() {
        let cases: [(&[u8], &str); 3] = [
            (b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", "Transfer-Encoding"),
            (b"POST / HTTP/1.1\r\ncontent-length: ten\r\n\r\n", "Content-Length"),
            (b"POST / HTTP/1.1\r\nhost\r\n\r\n", "without `:`"),
        ];
        for (wire, reason) in cases {
            let error = take_request(&mut wire.to_vec()).unwrap_err();
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
