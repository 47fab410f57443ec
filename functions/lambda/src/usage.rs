//! Each invocation's usage record (`docs/observability.md`, "Cost"): the object-store
//! requests a function made, by kind, and how long it ran with how much memory, written
//! under the agent's directory when the invocation ends, for `weir cost`; and published
//! with the invocation's metrics as `StoreRequests` and `InfrastructureCost`
//! (`docs/metrics.md`).

use std::future::Future;

use weir_engine::{AwsPrices, InfrastructureCost, InvocationUsage, Storage, UsageMeter};

use crate::emf::Unit;
use crate::error::{Error, Result};
use crate::metrics::{self, Metrics};

/// Set by Lambda: the memory the function was given, in MB, which its time is billed by.
const MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// AWS's prices the `InfrastructureCost` metric is taken at, JSON over the defaults
/// (us-east-1).
pub const AWS_PRICES: &str = "WEIR_AWS_PRICES";

/// The function's memory, in MB, when Lambda (or the emulator) says it.
pub(crate) fn memory_mb() -> Option<u32> {
    std::env::var(MEMORY_SIZE).ok()?.trim().parse().ok()
}

/// A meter for `agent`'s invocations on `storage`; the function then works on
/// [`UsageMeter::storage`], so that each of its requests is counted. Refuses a malformed
/// `WEIR_AWS_PRICES` here, at the function's start.
pub(crate) fn meter(storage: &Storage, agent: &str) -> Result<UsageMeter> {
    aws_prices()?;
    Ok(UsageMeter::new(storage, agent)?)
}

/// `WEIR_AWS_PRICES` over the defaults.
fn aws_prices() -> Result<AwsPrices> {
    match std::env::var(AWS_PRICES) {
        Ok(json) if !json.trim().is_empty() => serde_json::from_str(&json).map_err(|e| Error::config(AWS_PRICES, e)),
        _ => Ok(AwsPrices::default()),
    }
}

/// Runs one invocation's `work` of `function`, then records what it spent, with the events
/// `events` says it appended or processed (none when it failed), and publishes it with
/// `metrics`. A record that cannot be written is logged: the work is done, and only the
/// record of its cost is missing.
pub(crate) async fn metered<T>(
    meter: Option<&UsageMeter>,
    metrics: &Metrics,
    function: &str,
    events: impl FnOnce(&T) -> usize,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(meter) = meter else { return work.await };
    let invocation = meter.start(function);
    let result = work.await;
    let counted = result.as_ref().map_or(0, events) as u64;
    match invocation.finish(counted, memory_mb()).await {
        Ok(usage) => publish(metrics, &usage),
        Err(error) => tracing::warn!(%error, function, "could not write the invocation's usage record"),
    }
    result
}

/// Publishes an invocation's requests, by kind and in all, and its cost at `WEIR_AWS_PRICES`.
pub(crate) fn publish(metrics: &Metrics, usage: &InvocationUsage) {
    if !metrics.enabled() {
        return;
    }
    let r = usage.requests;
    let kinds = [("PUT", r.put), ("GET", r.get), ("HEAD", r.head), ("LIST", r.list), ("DELETE", r.delete)];
    let requests = kinds.into_iter().map(|(kind, count)| {
        let document = metrics.document().dimension(metrics::REQUEST, kind);
        document.also_by(&[metrics::AGENT, metrics::FUNCTION]).metric(metrics::STORE_REQUESTS, Unit::Count, count)
    });
    // Checked when the meter was made.
    let prices = aws_prices().unwrap_or_default();
    let cost = InfrastructureCost::of([usage], &prices).total();
    let cost = metrics.document().metric_f64(metrics::INFRASTRUCTURE_COST, Unit::None, cost);
    metrics.emit(requests.chain(std::iter::once(cost)).collect::<Vec<_>>());
}
