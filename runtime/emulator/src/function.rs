//! A function's execution environments: started on demand up to its concurrency, reused
//! while warm, replaced when one dies.

use std::sync::Mutex;

use tokio::sync::Semaphore;

use crate::environment::{Environment, Host};
use crate::error::{Error, Result};
use crate::invocation::{FunctionError, Invocation, InvokeOutput};
use crate::spec::FunctionSpec;

/// What an invocation does when every environment of its function is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenBusy {
    /// Waits for one: Lambda's event queue, and the emulator's own callers.
    Wait,
    /// Is refused with [`Error::Throttled`]: Lambda's answer to a synchronous invocation.
    Throttle,
}

/// One registered function and its pool of environments.
#[derive(Debug)]
pub(crate) struct Function {
    spec: FunctionSpec,
    arn: String,
    host: Host,
    /// Environments waiting for an invocation, the most recently used last.
    idle: Mutex<Vec<Environment>>,
    /// One permit per environment that may run at once.
    slots: Semaphore,
}

impl Function {
    pub(crate) fn new(spec: FunctionSpec, host: Host) -> Self {
        let arn = format!("arn:aws:lambda:{}:000000000000:function:{}", host.region, spec.name);
        let slots = Semaphore::new(spec.concurrency);
        Function { spec, arn, host, idle: Mutex::new(Vec::new()), slots }
    }

    /// Runs `invocation` in a warm environment, or a new one, once the concurrency allows;
    /// with [`WhenBusy::Throttle`], only if an environment is free now.
    pub(crate) async fn invoke(&self, invocation: Invocation, when_busy: WhenBusy) -> Result<InvokeOutput> {
        let throttled = || Error::Throttled { function: self.spec.name.clone(), concurrency: self.spec.concurrency };
        let _slot = match when_busy {
            WhenBusy::Wait => self.slots.acquire().await.expect("the slots are never closed"),
            WhenBusy::Throttle => self.slots.try_acquire().map_err(|_| throttled())?,
        };
        Ok(self.run(invocation).await)
    }

    async fn run(&self, invocation: Invocation) -> InvokeOutput {
        let mut environment = match self.warm_environment() {
            Some(environment) => environment,
            None => match Environment::start(&self.spec, &self.host).await {
                Ok(environment) => environment,
                Err(e) => {
                    let message = format!("cannot start `{}`: {e}", self.spec.command.display());
                    tracing::error!(function = %self.spec.name, "{message}");
                    let error = FunctionError::new("Runtime.InvalidEntrypoint", message);
                    return InvokeOutput::failure(&invocation.request_id, error);
                }
            },
        };
        let output = environment.invoke(invocation, &self.arn, self.spec.timeout).await;
        // The most recently used is reused first, as on Lambda, so spare ones stay idle.
        if environment.is_alive() {
            self.idle.lock().expect("idle environments").push(environment);
        }
        output
    }

    /// The most recently used idle environment whose process still runs.
    fn warm_environment(&self) -> Option<Environment> {
        let mut idle = self.idle.lock().expect("idle environments");
        // Dead ones are dropped on the way: their processes are already gone.
        std::iter::from_fn(|| idle.pop()).find_map(|mut environment| environment.is_alive().then_some(environment))
    }

    /// Stops the idle environments and waits for their processes to be gone. Environments
    /// serving an invocation are killed when it is dropped.
    pub(crate) async fn stop_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().expect("idle environments"));
        for environment in idle {
            environment.stop().await;
        }
    }

    /// Kills the idle environments without waiting, for `Drop`.
    pub(crate) fn kill_idle(&self) {
        // Dropping a process kills it: `kill_on_drop`.
        self.idle.lock().expect("idle environments").clear();
    }
}
