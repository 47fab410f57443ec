//! The `fake-openai` process, seen from the benchmark: started, asked for its counters,
//! killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What the fake model server counted since it started (or since [`FakeModelServer::reset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeModelStats {
    /// Chat requests received.
    pub requests: u64,
    /// Replies that called the notify tool.
    pub tool_calls: u64,
    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Microseconds the chat requests spent in the server, summed: arrival (the kernel's
    /// receive time) to reply.
    pub served_us: u64,
    /// Microseconds from each chat request's arrival to when the server read it, summed.
    pub read_late_us: u64,
    /// The server's own CPU time (user and system), in milliseconds.
    pub cpu_ms: u64,
}

impl FakeModelStats {
    /// The mean time the server took to answer a chat request, in milliseconds.
    pub fn mean_served_ms(&self) -> f64 {
        self.served_us as f64 / 1000.0 / self.requests.max(1) as f64
    }

    /// How late the server read a chat request after it arrived, on average, in milliseconds.
    pub fn mean_read_late_ms(&self) -> f64 {
        self.read_late_us as f64 / 1000.0 / self.requests.max(1) as f64
    }

    /// The server's CPU time per chat request, in milliseconds.
    pub fn cpu_ms_per_request(&self) -> f64 {
        self.cpu_ms as f64 / self.requests.max(1) as f64
    }
}

/// A running `fake-openai` child process on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct FakeModelServer {
    child: Child,
    address: String,
    client: reqwest::Client,
}

impl FakeModelServer {
    /// Starts the `fake-openai` binary built next to the current executable, answering after
    /// `delay` with one first-turn reply in `tool_every` calling the notify tool (0: none).
    pub fn start(delay: Duration, tool_every: u64) -> std::io::Result<FakeModelServer> {
        Self::start_binary(&sibling_binary("fake-openai")?, delay, tool_every)
    }

    /// Like [`start`](Self::start), with the `fake-openai` binary at `binary`.
    pub fn start_binary(binary: &Path, delay: Duration, tool_every: u64) -> std::io::Result<FakeModelServer> {
        let mut child = Command::new(binary)
            .args(["--delay-ms", &delay.as_millis().to_string(), "--tool-every", &tool_every.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("starting {}: {e}", binary.display())))?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            return Err(std::io::Error::other(format!("fake-openai did not start: {line:?}")));
        };
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(std::io::Error::other)?;
        Ok(FakeModelServer { address: address.to_string(), child, client })
    }

    /// The OpenAI base URL of the server (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The server's counters.
    pub async fn stats(&self) -> reqwest::Result<FakeModelStats> {
        let url = format!("http://{}/stats", self.address);
        let stats: serde_json::Value = self.client.get(url).send().await?.error_for_status()?.json().await?;
        let count = |name: &str| stats[name].as_u64().unwrap_or(0);
        Ok(FakeModelStats {
            requests: count("requests"),
            tool_calls: count("tool_calls"),
            peak_in_flight: count("peak_in_flight"),
            served_us: count("served_us"),
            read_late_us: count("read_late_us"),
            cpu_ms: count("cpu_ms"),
        })
    }

    /// Zeroes the server's counters.
    pub async fn reset(&self) -> reqwest::Result<()> {
        let url = format!("http://{}/stats/reset", self.address);
        self.client.post(url).send().await?.error_for_status()?;
        Ok(())
    }
}

impl Drop for FakeModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling_binary(name: &str) -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} not found: build it with `cargo build --release -p weir-bench`", path.display()),
        ))
    }
}
