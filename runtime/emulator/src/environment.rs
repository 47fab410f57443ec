//! One execution environment: a function's process, the Runtime API it polls, and the
//! enforcement of what Lambda enforces on it (init failures, crashes, timeouts).

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use crate::ids;
use crate::invocation::{FunctionError, Invocation, InvokeOutput};
use crate::logs::{LogLine, LogOutput, LogStream};
use crate::runtime_api::{Delivery, RuntimeApi};
use crate::spec::FunctionSpec;

/// How long a new process may take to ask for its first invocation, as on Lambda.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every environment gets from the emulator that runs it.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) region: String,
    /// The Invoke API, for `AWS_ENDPOINT_URL_LAMBDA`.
    pub(crate) invoke_url: String,
    pub(crate) logs: broadcast::Sender<LogLine>,
}

/// A function's process with its own Runtime API, serving one invocation at a time.
///
/// Dropping it kills the process.
#[derive(Debug)]
pub(crate) struct Environment {
    process: Child,
    api: RuntimeApi,
    log: LogOutput,
    alive: bool,
    /// When the process was started; taken on the first invocation, for its Init Duration.
    started: Option<Instant>,
}

/// Why an environment stopped serving an invocation without an answer.
enum Ending {
    Exited(io::Result<ExitStatus>),
    InitFailed(Bytes),
    InitTimedOut,
    TimedOut(Duration),
}

impl Environment {
    /// Starts `spec`'s executable with Lambda's environment, pointed at a new Runtime API.
    pub(crate) async fn start(spec: &FunctionSpec, host: &Host) -> io::Result<Self> {
        let api = RuntimeApi::start().await?;
        let log_stream = ids::log_stream_name();
        let task_root = std::path::absolute(spec.command.parent().unwrap_or(Path::new("")))?;
        let memory = spec.memory_mb.to_string();
        let log_group = format!("/aws/lambda/{}", spec.name);
        // The emulator's own environment is inherited (credentials, RUST_LOG, PATH), Lambda's
        // variables override it, and the function's own override those.
        let lambda_env = [
            ("AWS_LAMBDA_RUNTIME_API", api.address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", &spec.name),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &memory),
            ("AWS_LAMBDA_LOG_GROUP_NAME", &log_group),
            ("AWS_LAMBDA_LOG_STREAM_NAME", &log_stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_REGION", &host.region),
            ("AWS_DEFAULT_REGION", &host.region),
            ("AWS_ENDPOINT_URL_LAMBDA", &host.invoke_url),
            ("_HANDLER", &spec.handler),
            ("LAMBDA_TASK_ROOT", &task_root.to_string_lossy()),
        ];
        let mut process = Command::new(&spec.command)
            .args(&spec.args)
            .envs(lambda_env)
            .envs(&spec.env)
            .current_dir(&task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let log = LogOutput {
            function: spec.name.clone(),
            request_id: api.request_id.clone(),
            subscribers: host.logs.clone(),
        };
        log.spawn_pump(process.stdout.take().expect("stdout is piped"), LogStream::Stdout);
        log.spawn_pump(process.stderr.take().expect("stderr is piped"), LogStream::Stderr);
        tracing::debug!(function = %spec.name, pid = process.id(), %log_stream, "started an execution environment");
        Ok(Environment { process, api, log, alive: true, started: Some(Instant::now()) })
    }

    /// Whether the process can take another invocation: false once it exited or was killed.
    pub(crate) fn is_alive(&mut self) -> bool {
        // A process may also die between invocations (killed from outside, or exiting after
        // its answer): that one is replaced, not blamed on the next invocation.
        self.alive &= matches!(self.process.try_wait(), Ok(None));
        self.alive
    }

    /// Runs one invocation: hands it to the runtime, then waits for the answer, the
    /// process's exit or the deadline, whichever comes first.
    pub(crate) async fn invoke(
        &mut self,
        invocation: Invocation,
        function_arn: &str,
        timeout: Duration,
    ) -> InvokeOutput {
        let request_id = invocation.request_id;
        let mut started = Instant::now();
        let mut init = None;
        self.log.platform(&request_id, format!("START RequestId: {request_id} Version: $LATEST"));
        let (taken, deadline) = oneshot::channel();
        let (answer, output) = oneshot::channel();
        let delivery = Delivery {
            request_id: request_id.clone(),
            payload: invocation.payload,
            function_arn: function_arn.to_owned(),
            trace_id: ids::trace_id(),
            client_context: invocation.client_context,
            timeout,
            taken,
            answer,
        };
        self.api.deliveries.send(delivery).await.expect("the Runtime API lives as long as its environment");
        let output = match self.until_taken(deadline).await {
            Ok(deadline) => {
                // As Lambda reports it: the time until the runtime first asked for work,
                // apart from the invocation's own duration.
                let taken = deadline - timeout;
                init = self.started.take().map(|spawned| taken.saturating_duration_since(spawned));
                started = started.max(taken);
                self.until_answered(output, deadline, timeout).await
            }
            Err(ending) => Err(ending),
        };
        let output = match output {
            Ok(output) => output,
            Err(ending) => self.end(&request_id, ending).await,
        };
        self.log.platform(&request_id, format!("END RequestId: {request_id}"));
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let init =
            init.map(|init| format!("\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0)).unwrap_or_default();
        self.log.platform(&request_id, format!("REPORT RequestId: {request_id}\tDuration: {millis:.2} ms{init}"));
        output
    }

    /// Kills the process and waits for it to be gone.
    pub(crate) async fn stop(mut self) {
        self.kill().await;
    }

    async fn until_taken(&mut self, taken: oneshot::Receiver<Instant>) -> Result<Instant, Ending> {
        let mut init_error = self.api.init_error.clone();
        tokio::select! {
            biased;
            deadline = taken => deadline.map_err(|_| Ending::Exited(Err(io::Error::other("the Runtime API closed")))),
            Ok(document) = init_error.wait_for(Option::is_some) => {
                Err(Ending::InitFailed(document.clone().expect("waited until it was reported")))
            }
            status = self.process.wait() => Err(self.init_failure().unwrap_or(Ending::Exited(status))),
            () = sleep(INIT_TIMEOUT) => Err(Ending::InitTimedOut),
        }
    }

    async fn until_answered(
        &mut self,
        output: oneshot::Receiver<InvokeOutput>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<InvokeOutput, Ending> {
        tokio::select! {
            biased;
            output = output => output.map_err(|_| Ending::Exited(Err(io::Error::other("the Runtime API closed")))),
            status = self.process.wait() => Err(Ending::Exited(status)),
            () = sleep_until(deadline) => Err(Ending::TimedOut(timeout)),
        }
    }

    /// The failure the runtime reported to `init/error`, if it did.
    fn init_failure(&self) -> Option<Ending> {
        self.api.init_error.borrow().clone().map(Ending::InitFailed)
    }

    /// Retires the environment and says why the invocation failed, as Lambda would.
    async fn end(&mut self, request_id: &str, ending: Ending) -> InvokeOutput {
        self.kill().await;
        let failure = |error_type: &str, reason: String| {
            InvokeOutput::failure(
                request_id,
                FunctionError::new(error_type, format!("RequestId: {request_id} Error: {reason}")),
            )
        };
        let output = match ending {
            Ending::Exited(Ok(status)) if status.success() => {
                failure("Runtime.ExitError", "Runtime exited without providing a reason".to_owned())
            }
            Ending::Exited(Ok(status)) => failure("Runtime.ExitError", format!("Runtime exited with error: {status}")),
            Ending::Exited(Err(e)) => failure("Runtime.ExitError", format!("Runtime exited: {e}")),
            Ending::InitFailed(document) => InvokeOutput::reported_failure(request_id, document, "Runtime.InitError"),
            Ending::InitTimedOut => {
                failure("Sandbox.Timedout", format!("Init timed out after {:.2} seconds", INIT_TIMEOUT.as_secs_f64()))
            }
            Ending::TimedOut(timeout) => {
                failure("Sandbox.Timedout", format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()))
            }
        };
        if let Some(error) = &output.function_error {
            self.log.platform(request_id, format!("{}: {}", error.error_type, error.error_message));
        }
        output
    }

    async fn kill(&mut self) {
        self.alive = false;
        // Fails only when the process is already gone, which is what is wanted.
        let _ = self.process.kill().await;
    }
}
