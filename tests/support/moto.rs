//! Starts moto's S3 server for tests.
//!
//! moto enforces S3's conditional writes (`If-None-Match: *`, `If-Match`), which the
//! commit protocol relies on, so the S3 tests run against it rather than a mock.
//!
//! The server runs under a small `sh` wrapper whose standard input is a pipe from the
//! test process. When that pipe closes, because the [`MotoServer`] was dropped or the
//! test process exited in any way (even killed), the wrapper stops moto. This is what
//! keeps [`shared`]'s server, which lives in a static and is never dropped, from
//! outliving the test binary.

use std::env;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long moto may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `Drop` waits for the wrapper to exit before killing it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Tries at a free port: another process can take the port between our probe and
/// moto's bind.
const START_ATTEMPTS: usize = 3;

/// Runs moto (`$1`, port `$2`, log `$3`) until its stdin reaches EOF, then stops it
/// and removes the log. A background list's stdin is /dev/null in a non-interactive
/// shell, so the pipe is kept on fd 3 for the watcher.
const WRAPPER: &str = r#"
exec 3<&0
"$1" -H 127.0.0.1 -p "$2" >"$3" 2>&1 </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; rm -f "$3"; } &
wait "$pid"
"#;

/// A moto S3 server on 127.0.0.1 with one freshly created bucket.
///
/// Dropping it stops the server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// Our end of the wrapper's stdin; closing it stops the server.
    lifeline: Option<ChildStdin>,
    port: u16,
    bucket: String,
    log: PathBuf,
}

impl MotoServer {
    /// Starts a server on a free port and creates a uniquely named bucket in it.
    ///
    /// The executable is `$WEIR_MOTO_SERVER` if set, else `moto_server` on `PATH`, else
    /// `.ci/venv/bin/moto_server` in the workspace.
    pub fn start() -> io::Result<MotoServer> {
        let executable = find_executable()?;
        let mut attempt = 1;
        loop {
            match Self::launch(&executable) {
                Err(e) if attempt < START_ATTEMPTS && e.to_string().contains("already in use") => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn launch(executable: &Path) -> io::Result<MotoServer> {
        let port = free_port()?;
        let log = env::temp_dir().join(format!("weir-moto-{}-{port}.log", std::process::id()));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("weir-moto")
            .arg(executable)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let lifeline = child.stdin.take();
        // From here on, an early return drops `server`, which stops moto.
        let mut server = MotoServer { child, lifeline, port, bucket: unique_bucket_name(), log };
        server.wait_until_up()?;
        server.create_bucket(&server.bucket)?;
        Ok(server)
    }

    /// One server for the whole test binary, started on first use.
    ///
    /// It is never dropped, but stops when the test process exits (see the module docs).
    /// Tests sharing it should each use their own key prefix.
    ///
    /// # Panics
    ///
    /// If the server cannot be started: a test that needs it cannot run.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| MotoServer::start().unwrap_or_else(|e| panic!("cannot start moto's S3 server: {e}")))
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bucket created for this server.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://BUCKET/PREFIX`, for code that takes a store URL. Give each test its own
    /// prefix when tests share a server.
    pub fn store_url(&self, prefix: &str) -> String {
        match prefix.trim_matches('/') {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// Environment variables that point an AWS client (object_store's
    /// `AmazonS3Builder::from_env`, the AWS CLI, DuckDB) at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }

    fn wait_until_up(&mut self) -> io::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "moto_server exited ({status}) before accepting connections on port {}; \
                     its output:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "moto_server did not accept connections on port {} within {:?}; \
                         its output:\n{}",
                        self.port,
                        STARTUP_TIMEOUT,
                        self.log_tail()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates the bucket `bucket` with a bare path-style PUT: moto does not check
    /// signatures, and this spares the test crate an HTTP client. Bucket names are global on
    /// the server: give each its own.
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(STARTUP_TIMEOUT))?;
        write!(
            stream,
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            bucket, self.port
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let response = String::from_utf8_lossy(&response);
        let status = response.split_whitespace().nth(1);
        if status == Some("200") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "creating bucket {} on moto failed: {}",
                bucket,
                response.chars().take(500).collect::<String>()
            )))
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                // The wrapper has already sent moto its signal; this only reaps the shell.
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

/// Shorthand for [`MotoServer::shared`].
pub fn shared() -> &'static MotoServer {
    MotoServer::shared()
}

fn find_executable() -> io::Result<PathBuf> {
    if let Some(path) = env::var_os("WEIR_MOTO_SERVER") {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "WEIR_MOTO_SERVER={} is not an executable file; run `.ci/run` from the \
                     repository root, or `pip install 'moto[server]'`",
                    path.display()
                ),
            ))
        };
    }
    let on_path: Vec<PathBuf> = env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).map(|dir| dir.join("moto_server")).collect())
        .unwrap_or_default();
    // Ancestors rather than the parent alone, so this works from any crate's depth.
    let in_workspace =
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().map(|dir| dir.join(".ci/venv/bin/moto_server"));
    on_path.into_iter().chain(in_workspace).find(|path| is_executable(path)).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "moto_server not found ($WEIR_MOTO_SERVER, PATH, \
                 .ci/venv/bin): run `.ci/run` from the repository root, which installs it, \
                 or `pip install 'moto[server]'`",
        )
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A port that was free a moment ago.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Unique across servers of this process and, through pid and time, across processes
/// that might share a server.
fn unique_bucket_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() % 1_000_000_000);
    format!("weir-test-{}-{n}-{micros}", std::process::id())
}
