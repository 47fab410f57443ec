//! The emulator: its builder, and the running emulator that owns the Invoke API, the
//! triggers and every function process.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::environment::Host;
use crate::error::{Error, Result};
use crate::function::{Function, WhenBusy};
use crate::function_url;
use crate::invocation::InvokeOutput;
use crate::invoke_api;
use crate::logs::{LOG_BUFFER, LogLine};
use crate::spec::FunctionSpec;
use crate::switchboard::Switchboard;
use crate::trigger::Trigger;

/// Sets up an [`Emulator`]: the functions it runs, what triggers them, where it listens.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    functions: Vec<FunctionSpec>,
    triggers: Vec<Trigger>,
    port: u16,
    region: String,
    shutdown_grace: Duration,
}

impl EmulatorBuilder {
    /// Registers a function.
    pub fn function(mut self, spec: FunctionSpec) -> Self {
        self.functions.push(spec);
        self
    }

    /// Adds a trigger; it must name a registered function.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// The Invoke API's port on 127.0.0.1; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The region functions are told they run in (`AWS_REGION`); `us-east-1` by default.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// How long [`Emulator::shutdown`] waits for invocations in flight before killing them;
    /// 30 seconds by default.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Opens the Invoke API and starts the triggers. Function processes start on their
    /// first invocation.
    pub async fn start(self) -> Result<Emulator> {
        self.validate().map_err(Error::InvalidSetup)?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let bind = |source| Error::Bind { address, source };
        let listener = tokio::net::TcpListener::bind(address).await.map_err(bind)?;
        let invoke_url = format!("http://{}", listener.local_addr().map_err(bind)?);
        let (logs, _) = broadcast::channel(LOG_BUFFER);
        let host = Host { region: self.region, invoke_url: invoke_url.clone(), logs: logs.clone() };
        let url_ports: Vec<(String, u16)> =
            self.functions.iter().filter_map(|spec| Some((spec.name.clone(), spec.url_port?))).collect();
        let functions =
            self.functions.into_iter().map(|spec| (spec.name.clone(), Function::new(spec, host.clone()))).collect();
        let switchboard = Arc::new(Switchboard::new(functions));
        let mut function_urls = HashMap::new();
        for (function, port) in url_ports {
            let url = serve_function_url(&switchboard, &function, port).await?;
            function_urls.insert(function, url);
        }

        let api = invoke_api::Api {
            switchboard: Arc::clone(&switchboard),
            function_urls: function_urls.clone(),
            region: host.region.clone(),
        };
        let server = axum::serve(listener, invoke_api::router(api))
            .with_graceful_shutdown(switchboard.stopping.clone().cancelled_owned());
        let killing = switchboard.killing.clone();
        switchboard.background.spawn(async move {
            if let Some(Err(e)) = killing.run_until_cancelled(server.into_future()).await {
                tracing::error!(error = %e, "the Invoke API stopped");
            }
        });
        for trigger in self.triggers {
            switchboard.background.spawn(trigger.run(Arc::clone(&switchboard)));
        }
        tracing::info!(%invoke_url, "Lambda emulator listening");
        Ok(Emulator { switchboard, invoke_url, function_urls, logs, shutdown_grace: self.shutdown_grace })
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = HashMap::new();
        for spec in &self.functions {
            spec.validate()?;
            if names.insert(spec.name.as_str(), ()).is_some() {
                return Err(format!("function `{}` is registered twice", spec.name));
            }
        }
        for trigger in &self.triggers {
            if !names.contains_key(trigger.function()) {
                return Err(format!("a trigger names function `{}`, which is not registered", trigger.function()));
            }
            if trigger.interval().is_zero() {
                return Err(format!("the trigger of function `{}` needs an interval above zero", trigger.function()));
            }
        }
        Ok(())
    }
}

/// Serves `function`'s URL on `port` of 127.0.0.1 until shutdown; its base URL.
async fn serve_function_url(switchboard: &Arc<Switchboard>, function: &str, port: u16) -> Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let bind = |source| Error::Bind { address, source };
    let listener = tokio::net::TcpListener::bind(address).await.map_err(bind)?;
    let domain = listener.local_addr().map_err(bind)?.to_string();
    let router = function_url::router(Arc::clone(switchboard), function, &domain);
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(switchboard.stopping.clone().cancelled_owned());
    let killing = switchboard.killing.clone();
    let name = function.to_owned();
    switchboard.background.spawn(async move {
        if let Some(Err(e)) = killing.run_until_cancelled(server.into_future()).await {
            tracing::error!(function = %name, error = %e, "the function URL stopped");
        }
    });
    let url = format!("http://{domain}/");
    tracing::info!(%function, %url, "function URL listening");
    Ok(url)
}

/// A running Lambda emulator: unmodified function binaries run as child processes that
/// speak the Lambda Runtime API, invoked through Lambda's Invoke API on 127.0.0.1, by
/// triggers, or directly.
///
/// Dropping it stops everything and kills every process; [`Emulator::shutdown`] first lets
/// invocations in flight finish.
///
/// ```no_run
/// # async fn run() -> weir_emulator::Result<()> {
/// use weir_emulator::{Emulator, FunctionSpec};
///
/// let emulator = Emulator::builder()
///     .function(FunctionSpec::new("echo", "target/debug/echo-lambda"))
///     .start()
///     .await?;
/// // Also reachable as `aws lambda invoke --endpoint-url <invoke_url> --function-name echo …`.
/// println!("Invoke API at {}", emulator.invoke_url());
/// let output = emulator.invoke("echo", r#"{"hello": "world"}"#).await?;
/// assert!(output.function_error.is_none());
/// emulator.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Emulator {
    switchboard: Arc<Switchboard>,
    invoke_url: String,
    function_urls: HashMap<String, String>,
    logs: broadcast::Sender<LogLine>,
    shutdown_grace: Duration,
}

impl Emulator {
    /// A builder with no functions, listening on a free port.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            functions: Vec::new(),
            triggers: Vec::new(),
            port: 0,
            region: "us-east-1".to_owned(),
            shutdown_grace: Duration::from_secs(30),
        }
    }

    /// The Invoke API's endpoint, `http://127.0.0.1:PORT`: what `--endpoint-url` and
    /// `AWS_ENDPOINT_URL_LAMBDA` take. Functions are given it in the latter.
    pub fn invoke_url(&self) -> &str {
        &self.invoke_url
    }

    /// The URL of `function` (`http://127.0.0.1:PORT/`), if it was given one
    /// ([`FunctionSpec::with_url`]).
    pub fn function_url(&self, function: &str) -> Option<&str> {
        self.function_urls.get(function).map(String::as_str)
    }

    /// Invokes `function` and waits for its answer, as a `RequestResponse` invocation. Unlike
    /// the Invoke API, which throttles, it waits for a free environment.
    pub async fn invoke(&self, function: &str, payload: impl Into<Bytes>) -> Result<InvokeOutput> {
        self.switchboard.invoke(function, payload.into(), None, WhenBusy::Wait).await
    }

    /// Queues an `Event` invocation of `function` and returns its request id at once.
    pub fn invoke_in_background(&self, function: &str, payload: impl Into<Bytes>) -> Result<String> {
        self.switchboard.invoke_in_background(function, payload.into(), None)
    }

    /// Every line functions write from now on, labelled with function and request id.
    /// They also go to `tracing` (target `weir_emulator::function`).
    pub fn subscribe_logs(&self) -> broadcast::Receiver<LogLine> {
        self.logs.subscribe()
    }

    /// Stops the triggers and the Invoke API, waits for invocations in flight (up to the
    /// grace period), then kills every process and waits until they are gone.
    pub async fn shutdown(self) {
        let switchboard = &self.switchboard;
        switchboard.stopping.cancel();
        switchboard.background.close();
        if tokio::time::timeout(self.shutdown_grace, switchboard.background.wait()).await.is_err() {
            tracing::warn!(grace = ?self.shutdown_grace, "invocations still running after the grace period: killing them");
            switchboard.killing.cancel();
            switchboard.background.wait().await;
        }
        for function in switchboard.functions() {
            function.stop_idle().await;
        }
        tracing::info!(invoke_url = %self.invoke_url, "Lambda emulator stopped");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.switchboard.stopping.cancel();
        self.switchboard.killing.cancel();
        for function in self.switchboard.functions() {
            function.kill_idle();
        }
    }
}
