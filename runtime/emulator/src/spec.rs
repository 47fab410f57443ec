//! What the emulator needs to know about a function: the binary, its settings and its own
//! environment, as a Lambda function configuration would say them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A function the emulator runs: an unmodified Lambda binary (one built on
/// `lambda_runtime`, or any other client of the Runtime API) and its configuration.
///
/// ```
/// use std::time::Duration;
/// use weir_emulator::FunctionSpec;
///
/// let spec = FunctionSpec::new("ingest", "target/debug/weir-ingest")
///     .with_env("WEIR_STORE", "file:///tmp/weir-data")
///     .with_timeout(Duration::from_secs(30))
///     .with_concurrency(2);
/// assert_eq!(spec.memory_mb, 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The function's name, as the Invoke API and `AWS_LAMBDA_FUNCTION_NAME` say it.
    pub name: String,
    /// The executable: what Lambda would run as `bootstrap`.
    pub command: PathBuf,
    /// Arguments to the executable; Lambda passes none.
    pub args: Vec<String>,
    /// The function's own environment variables, set over the standard Lambda ones.
    pub env: BTreeMap<String, String>,
    /// How long one invocation may run before its process is killed.
    pub timeout: Duration,
    /// The memory size reported to the function (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`); not enforced.
    pub memory_mb: u32,
    /// How many execution environments (processes) may run at once; further invocations
    /// wait for one to be free.
    pub concurrency: usize,
    /// The handler name reported in `_HANDLER`; custom runtimes ignore it.
    pub handler: String,
    /// The port of the function's URL on 127.0.0.1 (0 picks a free one); `None`: it has none.
    pub url_port: Option<u16>,
}

impl FunctionSpec {
    /// Lambda's defaults: a 3-second timeout and 128 MB, with up to 4 environments at once.
    pub fn new(name: impl Into<String>, command: impl Into<PathBuf>) -> Self {
        FunctionSpec {
            name: name.into(),
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
            concurrency: 4,
            handler: "bootstrap".to_owned(),
            url_port: None,
        }
    }

    /// Sets one of the function's environment variables.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Sets the invocation timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many execution environments may run at once.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets the memory size reported to the function.
    pub fn with_memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    /// Gives the function a URL, `http://127.0.0.1:PORT/`, that invokes it with each HTTP
    /// request as Lambda's function URLs do (auth type `NONE`); port 0 picks a free one
    /// ([`Emulator::function_url`](crate::Emulator::function_url) tells which).
    pub fn with_url(mut self, port: u16) -> Self {
        self.url_port = Some(port);
        self
    }

    /// Checks what Lambda would refuse to deploy.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(format!("function name `{}` must be 1 to 64 letters, digits, `-` or `_`", self.name));
        }
        if self.concurrency == 0 {
            return Err(format!("function `{}` needs a concurrency of at least 1", self.name));
        }
        if self.timeout.is_zero() {
            return Err(format!("function `{}` needs a timeout above zero", self.name));
        }
        Ok(())
    }
}
