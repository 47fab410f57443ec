//! Function output: every line a child writes is re-emitted, labelled with the function and
//! the request it belongs to, so that concurrent invocations can be told apart.

use std::fmt;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{broadcast, watch};

/// How many lines a slow log subscriber may fall behind before it misses some.
pub(crate) const LOG_BUFFER: usize = 4096;

/// One line a function wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The function that wrote it.
    pub function: String,
    /// The request its environment was serving (or last served); `None` before the first.
    pub request_id: Option<String>,
    /// Where it was written.
    pub stream: LogStream,
    /// The line, without its line break.
    pub text: String,
}

/// Where a [`LogLine`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The function's standard output.
    Stdout,
    /// The function's standard error.
    Stderr,
    /// The emulator, about an invocation: `START`, `END` and `REPORT`, as Lambda writes them.
    Platform,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request_id = self.request_id.as_deref().unwrap_or("init");
        write!(f, "[{} {request_id}] {}", self.function, self.text)
    }
}

/// Where an environment's lines go: `tracing` always, and any subscribers.
#[derive(Debug, Clone)]
pub(crate) struct LogOutput {
    pub(crate) function: String,
    /// The request being served, as the environment's Runtime API sets it.
    pub(crate) request_id: watch::Receiver<Option<String>>,
    pub(crate) subscribers: broadcast::Sender<LogLine>,
}

impl LogOutput {
    /// Re-emits every line of `output` until it closes (when the process exits).
    pub(crate) fn spawn_pump(&self, output: impl AsyncRead + Unpin + Send + 'static, stream: LogStream) {
        let log = self.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(output);
            let mut buffer = Vec::new();
            // Bytes, not `lines()`: a function may write anything, and one bad byte must not end the pump.
            while reader.read_until(b'\n', &mut buffer).await.is_ok_and(|read| read > 0) {
                let text = String::from_utf8_lossy(&buffer).trim_end_matches(['\n', '\r']).to_owned();
                buffer.clear();
                log.emit(LogLine {
                    function: log.function.clone(),
                    request_id: log.request_id.borrow().clone(),
                    stream,
                    text,
                });
            }
        });
    }

    /// Emits one of the emulator's own lines about `request_id`.
    pub(crate) fn platform(&self, request_id: &str, text: String) {
        let request_id = Some(request_id.to_owned());
        self.emit(LogLine { function: self.function.clone(), request_id, stream: LogStream::Platform, text });
    }

    fn emit(&self, line: LogLine) {
        tracing::info!(
            target: "weir_emulator::function",
            function = %line.function,
            request_id = line.request_id.as_deref().unwrap_or("init"),
            "{}",
            line.text
        );
        // No subscriber is the usual case, not an error.
        let _ = self.subscribers.send(line);
    }
}
