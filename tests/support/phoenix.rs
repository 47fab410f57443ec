//! Starts Arize Phoenix, a trace receiver nobody here wrote, for tests of the OpenTelemetry
//! export: it takes OTLP over HTTP on `/v1/traces` and serves what it received on its REST
//! API (`/v1/projects/{project}/spans`).
//!
//! As with moto (`moto.rs`), the server runs under an `sh` wrapper whose standard input is
//! a pipe from the test process: when the pipe closes (the [`Phoenix`] was dropped, or the
//! test process ended in any way), the wrapper stops Phoenix.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Phoenix may take to start: it migrates its database first, and a loaded CI
/// machine is slow.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs Phoenix (`$1`) until stdin reaches EOF; its output goes to `$2`.
const WRAPPER: &str = r#"
exec 3<&0
"$1" serve >"$2" 2>&1 </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
"#;

/// A Phoenix server on 127.0.0.1 with a database of its own; dropping it stops the server
/// and removes the database.
#[derive(Debug)]
pub struct Phoenix {
    child: Child,
    lifeline: Option<ChildStdin>,
    port: u16,
    dir: PathBuf,
}

impl Phoenix {
    /// Starts Phoenix: `$WEIR_PHOENIX`, the `phoenix` command that `.ci/run` installs in
    /// `.ci/phoenix`.
    pub fn start() -> io::Result<Phoenix> {
        let executable = std::env::var_os("WEIR_PHOENIX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/phoenix/bin/phoenix"));
        if !executable.exists() {
            return Err(io::Error::other(format!(
                "no {}: run `.ci/run`, which installs Arize Phoenix, or set WEIR_PHOENIX",
                executable.display()
            )));
        }
        let (port, grpc_port) = (free_port()?, free_port()?);
        let dir = std::env::temp_dir().join(format!("weir-phoenix-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("weir-phoenix")
            .arg(&executable)
            .arg(dir.join("phoenix.log"))
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", grpc_port.to_string())
            .env("PHOENIX_WORKING_DIR", &dir)
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .env("DO_NOT_TRACK", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let lifeline = child.stdin.take();
        let mut phoenix = Phoenix { child, lifeline, port, dir };
        phoenix.wait_until_up()?;
        Ok(phoenix)
    }

    /// Where OTLP over HTTP goes: the value of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The REST API's path `path` (`/v1/...`).
    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint())
    }

    fn wait_until_up(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("phoenix exited ({status}) before serving: {}", self.log())));
            }
            // Serving its API, not only bound: the port opens before the database is ready.
            if http_status(self.port, "/v1/projects").is_some_and(|status| status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "phoenix did not serve within {STARTUP_TIMEOUT:?}: {}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("phoenix.log")).unwrap_or_default()
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status of a bare HTTP GET, or `None` when nothing answers: spares the test crate an
/// HTTP client for the readiness check.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).split_whitespace().nth(1)?.parse().ok()
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}
