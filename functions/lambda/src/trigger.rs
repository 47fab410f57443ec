//! Event-driven triggers: a function that moved partitions invokes the next one for them at
//! once (ingest, after appending, invokes process; process, after committing outputs,
//! invokes dispatch), instead of leaving them to the next scheduled invocation. The
//! schedules stay, as the safety net: a failed trigger is logged, never an error of the
//! invocation that moved the data.

use std::collections::BTreeSet;

use crate::invoke::LambdaInvoker;
use crate::work::PartitionRequest;

/// The function to invoke asynchronously, with `{"partitions": [...]}`, for partitions that
/// moved.
///
/// ```no_run
/// # async fn example() {
/// use weir_functions::trigger::Trigger;
/// use weir_functions::{AwsClients, LambdaInvoker};
///
/// let trigger = Trigger::new(LambdaInvoker::new(&AwsClients::from_env().await), "reviews-process");
/// trigger.fire([3, 7].into_iter().collect()).await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Trigger {
    invoker: LambdaInvoker,
    function: String,
}

impl Trigger {
    /// Invokes `function` (a name or ARN) through `invoker`.
    pub fn new(invoker: LambdaInvoker, function: impl Into<String>) -> Self {
        Trigger { invoker, function: function.into() }
    }

    /// Invokes the function for `partitions`, if any; a failure is logged (the function's
    /// schedule will find the work).
    pub async fn fire(&self, partitions: BTreeSet<u32>) {
        if partitions.is_empty() {
            return;
        }
        let request = PartitionRequest { partitions: Some(partitions.into_iter().collect()), shadow: None };
        let payload = serde_json::to_value(&request).expect("a request serializes");
        match self.invoker.invoke_async(&self.function, &payload).await {
            Ok(()) => tracing::debug!(function = %self.function, ?request.partitions, "triggered"),
            Err(e) => {
                tracing::warn!(function = %self.function, error = %e, "trigger failed; the schedule will find the work")
            }
        }
    }
}
