//! Actions: async functions subscribed to event types.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::Context;
use crate::event::{Event, EventType};

/// What an action returns on failure: any error. It fails the run, which the engine retries.
pub use weir_engine::ActionError;

/// An action's code. Async functions of `(&Event, &mut Context)` are handlers:
///
/// ```
/// use weir_agent::{ActionError, Context, Event, InputEvent};
///
/// /// Counts the key's visits in short-term memory.
/// async fn count_visits(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
///     let input: InputEvent = event.decode()?;
///     let visits = ctx.memory().get::<u64>("visits")?.unwrap_or(0) + 1;
///     ctx.memory().set("visits", &visits)?;
///     ctx.output(&serde_json::json!({"user": input.key, "visits": visits}))?;
///     Ok(())
/// }
///
/// let action = weir_agent::Action::new("count_visits", count_visits).on::<InputEvent>();
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one event.
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>>;
}

/// An async function usable as a [`Handler`]; implemented for every fitting `async fn`.
pub trait HandlerFn<'a>: Send + Sync + 'static {
    /// The function's future.
    type Future: Future<Output = Result<(), ActionError>> + Send + 'a;

    /// Calls the function.
    fn call(&self, event: &'a Event, ctx: &'a mut Context<'a>) -> Self::Future;
}

impl<'a, F, Fut> HandlerFn<'a> for F
where
    F: Fn(&'a Event, &'a mut Context<'a>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ActionError>> + Send + 'a,
{
    type Future = Fut;

    fn call(&self, event: &'a Event, ctx: &'a mut Context<'a>) -> Fut {
        self(event, ctx)
    }
}

struct FnHandler<F>(F);

impl<F: for<'a> HandlerFn<'a>> Handler for FnHandler<F> {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.0.call(event, ctx))
    }
}

/// A named handler and the event types it subscribes to.
#[derive(Clone)]
pub struct Action {
    pub(crate) name: String,
    pub(crate) subscriptions: Vec<String>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action").field("name", &self.name).field("subscriptions", &self.subscriptions).finish()
    }
}

impl Action {
    /// An action running an async function; subscribe it with [`on`](Self::on).
    pub fn new<F: for<'a> HandlerFn<'a>>(name: impl Into<String>, handler: F) -> Self {
        Self::with_handler(name, FnHandler(handler))
    }

    /// An action running a [`Handler`] value (a struct holding its own configuration).
    pub fn with_handler(name: impl Into<String>, handler: impl Handler) -> Self {
        Action { name: name.into(), subscriptions: Vec::new(), handler: Arc::new(handler) }
    }

    /// Subscribes to events of type `T`.
    pub fn on<T: EventType>(self) -> Self {
        self.on_type(T::TYPE)
    }

    /// Subscribes to events of the type named `kind` (untyped events).
    pub fn on_type(mut self, kind: impl Into<String>) -> Self {
        self.subscriptions.push(kind.into());
        self
    }

    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it subscribes to events of type `kind`.
    pub fn subscribes_to(&self, kind: &str) -> bool {
        self.subscriptions.iter().any(|s| s == kind)
    }
}
