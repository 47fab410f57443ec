//! The one place invocations go through, from the Invoke API, triggers and library callers
//! alike, and that owns the background work and its shutdown.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::function::{Function, WhenBusy};
use crate::invocation::{Invocation, InvokeOutput};

/// The registered functions and the background work running against them.
#[derive(Debug)]
pub(crate) struct Switchboard {
    functions: HashMap<String, Function>,
    /// Cancelled when shutdown begins: triggers stop and the Invoke API takes no new connections.
    pub(crate) stopping: CancellationToken,
    /// Cancelled when shutdown stops waiting: invocations still running are abandoned and
    /// their processes killed.
    pub(crate) killing: CancellationToken,
    /// The Invoke API server, triggers and asynchronous invocations.
    pub(crate) background: TaskTracker,
}

impl Switchboard {
    pub(crate) fn new(functions: HashMap<String, Function>) -> Self {
        Switchboard {
            functions,
            stopping: CancellationToken::new(),
            killing: CancellationToken::new(),
            background: TaskTracker::new(),
        }
    }

    /// Runs `function` and waits for its answer (`RequestResponse`); what it does when
    /// every environment is busy is `when_busy`.
    pub(crate) async fn invoke(
        &self,
        function: &str,
        payload: Bytes,
        client_context: Option<String>,
        when_busy: WhenBusy,
    ) -> Result<InvokeOutput> {
        let function = self.function(function)?;
        let invocation = Invocation::new(payload, client_context);
        self.killing.run_until_cancelled(function.invoke(invocation, when_busy)).await.ok_or(Error::ShuttingDown)?
    }

    /// Queues `function` to run in the background (`Event`) and returns its request id.
    /// Failures are logged: like Lambda's asynchronous invocations, nobody waits for them.
    pub(crate) fn invoke_in_background(
        self: &Arc<Self>,
        function: &str,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Result<String> {
        self.function(function)?;
        let invocation = Invocation::new(payload, client_context);
        let request_id = invocation.request_id.clone();
        let (switchboard, name) = (Arc::clone(self), function.to_owned());
        self.background.spawn(async move {
            let request_id = invocation.request_id.clone();
            let run = switchboard.functions[&name].invoke(invocation, WhenBusy::Wait);
            match switchboard.killing.run_until_cancelled(run).await {
                Some(Ok(InvokeOutput { function_error: Some(error), .. })) => tracing::warn!(
                    function = %name,
                    %request_id,
                    error_type = %error.error_type,
                    "asynchronous invocation failed: {}",
                    error.error_message
                ),
                Some(_) => {}
                None => tracing::warn!(function = %name, %request_id, "asynchronous invocation abandoned at shutdown"),
            }
        });
        Ok(request_id)
    }

    /// Whether `function` exists (`DryRun`).
    pub(crate) fn check(&self, function: &str) -> Result<()> {
        self.function(function).map(drop)
    }

    /// The registered functions.
    pub(crate) fn functions(&self) -> impl Iterator<Item = &Function> {
        self.functions.values()
    }

    fn function(&self, name: &str) -> Result<&Function> {
        self.functions.get(name).ok_or_else(|| Error::UnknownFunction(name.to_owned()))
    }
}
