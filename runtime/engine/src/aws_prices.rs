//! What the infrastructure under an agent costs on AWS: the object-store requests and the
//! function time its invocations' usage records count, at a price table
//! (`docs/observability.md`, "Cost").

use serde::{Deserialize, Serialize};

use crate::store::RequestCountsSnapshot;
use crate::usage::InvocationUsage;

/// AWS's prices for what weir's functions use. The defaults are AWS's published on-demand
/// prices in us-east-1 for S3 Standard and Lambda on x86_64 (the module's default
/// architecture); give the region's and architecture's own in a table of the same shape.
///
/// ```
/// use weir_engine::AwsPrices;
///
/// let arm: AwsPrices = serde_json::from_str(r#"{"lambda": {"gb_second": 0.0000133334}}"#).unwrap();
/// assert_eq!(arm.s3, AwsPrices::default().s3, "what the table does not name keeps its default");
/// assert!(serde_json::from_str::<AwsPrices>(r#"{"s3": {"puts": 1}}"#).unwrap_err().to_string().contains("puts"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsPrices {
    /// S3 request prices.
    pub s3: S3Prices,
    /// Lambda prices.
    pub lambda: LambdaPrices,
}

/// S3 prices per 1,000 requests, by the kinds S3 bills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Prices {
    /// PUT, COPY, POST and the parts of a multipart upload.
    pub put_per_thousand: f64,
    /// LIST (one per page of up to 1,000 keys).
    pub list_per_thousand: f64,
    /// GET, HEAD and every other request.
    pub get_per_thousand: f64,
    /// DELETE (S3 does not charge for it).
    pub delete_per_thousand: f64,
}

impl Default for S3Prices {
    fn default() -> Self {
        S3Prices {
            put_per_thousand: 0.005,
            list_per_thousand: 0.005,
            get_per_thousand: 0.0004,
            delete_per_thousand: 0.0,
        }
    }
}

/// Lambda prices: compute by the GB-second and a price per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LambdaPrices {
    /// A second of a function with 1 GB of memory (x86_64, first pricing tier).
    pub gb_second: f64,
    /// A million invocations.
    pub per_million_requests: f64,
    /// The memory assumed, in MB, for an invocation that did not run on Lambda and so
    /// recorded none (`weir run`): the module's default for the process function.
    pub memory_mb: u32,
}

impl Default for LambdaPrices {
    fn default() -> Self {
        LambdaPrices { gb_second: 0.000_016_666_7, per_million_requests: 0.20, memory_mb: 1024 }
    }
}

/// What a set of invocations used, and what it cost at a price table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfrastructureCost {
    /// Invocations (usage records) counted.
    pub invocations: u64,
    /// Events they appended or processed.
    pub events: u64,
    /// Their object-store requests, by kind.
    pub requests: RequestCountsSnapshot,
    /// Their function time, in GB-seconds: each duration, rounded up to the millisecond as
    /// Lambda bills it, times its memory.
    pub gb_seconds: f64,
    /// The S3 requests' cost.
    pub s3: f64,
    /// The Lambda compute's cost.
    pub lambda_compute: f64,
    /// The Lambda requests' cost.
    pub lambda_requests: f64,
}

impl InfrastructureCost {
    /// Sums `usages` and prices them at `prices`.
    ///
    /// ```
    /// use weir_engine::store::RequestCountsSnapshot;
    /// use weir_engine::{AwsPrices, InfrastructureCost, InvocationUsage};
    ///
    /// let requests = RequestCountsSnapshot { put: 1000, get: 1000, ..Default::default() };
    /// let usage = InvocationUsage {
    ///     function: "process".into(),
    ///     started_ms: 0,
    ///     duration_ms: 2000,
    ///     memory_mb: Some(512),
    ///     events: 10,
    ///     requests,
    ///     cold_start: false,
    ///     init_ms: None,
    /// };
    /// let cost = InfrastructureCost::of([&usage], &AwsPrices::default());
    /// assert_eq!(cost.gb_seconds, 1.0);
    /// assert!((cost.s3 - 0.0054).abs() < 1e-12);
    /// assert!((cost.total() - (0.0054 + 0.0000166667 + 0.0000002)).abs() < 1e-12);
    /// ```
    pub fn of<'a>(usages: impl IntoIterator<Item = &'a InvocationUsage>, prices: &AwsPrices) -> Self {
        let mut cost = InfrastructureCost::default();
        for usage in usages {
            cost.invocations += 1;
            cost.events += usage.events;
            let r = &usage.requests;
            cost.requests = RequestCountsSnapshot {
                put: cost.requests.put + r.put,
                get: cost.requests.get + r.get,
                head: cost.requests.head + r.head,
                list: cost.requests.list + r.list,
                delete: cost.requests.delete + r.delete,
            };
            let memory_gb = f64::from(usage.memory_mb.unwrap_or(prices.lambda.memory_mb)) / 1024.0;
            cost.gb_seconds += usage.duration_ms.max(1) as f64 / 1000.0 * memory_gb;
        }
        let (s3, r) = (&prices.s3, &cost.requests);
        cost.s3 = (r.put as f64 * s3.put_per_thousand
            + r.list as f64 * s3.list_per_thousand
            + (r.get + r.head) as f64 * s3.get_per_thousand
            + r.delete as f64 * s3.delete_per_thousand)
            / 1000.0;
        cost.lambda_compute = cost.gb_seconds * prices.lambda.gb_second;
        cost.lambda_requests = cost.invocations as f64 * prices.lambda.per_million_requests / 1e6;
        cost
    }

    /// S3 and Lambda together.
    pub fn total(&self) -> f64 {
        self.s3 + self.lambda_compute + self.lambda_requests
    }
}
