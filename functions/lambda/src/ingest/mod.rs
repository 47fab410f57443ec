//! The ingest function: appends events from HTTP requests, SQS, Kinesis or S3 notifications
//! to the event log.
//!
//! Each source record is appended with a batch id that the source gives it (an SQS
//! message id, a Kinesis sequence number, an S3 object version, an HTTP idempotency key),
//! so a redelivered record is stored once. Records that cannot be stored are reported the
//! way each source expects: SQS and Kinesis `batchItemFailures`, HTTP 400, and a list of
//! refused lines for S3.

mod approval;
mod http;
mod kinesis;
mod redrive;
mod s3;
mod sqs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;
use weir_engine::{Appended, EventLog, LogEvent, Storage, TraceParent, UsageMeter};

use crate::approval_env::ApprovalEnvironment;
use crate::aws::AwsClients;
use crate::config::{FromVariables, IngestConfig};
use crate::emf::Unit;
use crate::error::{Error, Result};
use crate::invoke::LambdaInvoker;
use crate::metrics::{self, Metrics};
use crate::runtime;
use crate::trigger::Trigger;
use crate::usage;
use weir_engine::records::RecordParser;

/// Record groups appended at once; records of one group are appended in order.
const GROUPS_AT_ONCE: usize = 16;

/// Opens the bucket an S3 notification names. The default opens `s3://<bucket>` with the
/// settings `WEIR_STORE` uses (`AWS_*` variables, `AWS_ENDPOINT_URL`).
pub type BucketOpener = Arc<dyn Fn(&str) -> weir_engine::Result<Storage> + Send + Sync>;

/// The handler of the ingest function.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_functions::config::{FromVariables, IngestConfig};
/// use weir_functions::ingest::IngestFunction;
///
/// let config = IngestConfig::from_lookup(|name| (name == "WEIR_STORE").then(|| "memory://".into())).unwrap();
/// let ingest = IngestFunction::new(config).await.unwrap();
/// let request = serde_json::json!({
///     "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "POST"}},
///     "headers": {"idempotency-key": "order-7"},
///     "body": "{\"key\": \"user-1\", \"clicks\": 3}",
///     "isBase64Encoded": false
/// });
/// let answer = ingest.handle(request).await.unwrap();
/// assert_eq!(answer["statusCode"], 200);
/// # });
/// ```
#[derive(Clone)]
pub struct IngestFunction {
    log: Arc<EventLog>,
    records: RecordParser,
    open_bucket: BucketOpener,
    /// Process, invoked for the partitions an invocation appended to (`WEIR_PROCESS_FUNCTION`).
    trigger: Option<Trigger>,
    /// The partitions appended to since the invocation began.
    touched: Arc<Mutex<BTreeSet<u32>>>,
    /// Events appended and source records refused since the invocation began.
    tally: Arc<Mutex<Tally>>,
    /// The invocation's own X-Ray context (`_X_AMZN_TRACE_ID`), kept with the events whose
    /// source record brought none.
    invocation_parent: Arc<Mutex<Option<TraceParent>>>,
    metrics: Metrics,
    /// What approval links are checked with: the secret, the agent they must name, the time.
    approvals: approval::Approvals,
    /// Whether it takes approval links only: a public URL must not take records.
    approvals_only: bool,
    /// Counts the requests of each invocation, for its usage record, when the log feeds a
    /// named agent (`WEIR_AGENT`): the records live in the agent's directory.
    meter: Option<UsageMeter>,
}

/// What an invocation stored and refused, for its metrics.
#[derive(Debug, Default)]
struct Tally {
    events: usize,
    refused: usize,
}

impl std::fmt::Debug for IngestFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestFunction").field("log", &self.log).field("records", &self.records).finish_non_exhaustive()
    }
}

impl IngestFunction {
    /// Opens the log, creating it with `config.partitions` partitions if it is absent.
    pub async fn new(config: IngestConfig) -> Result<Self> {
        let meter = config.agent.as_deref().map(|agent| usage::meter(&config.storage, agent)).transpose()?;
        let storage = meter.as_ref().map_or(config.storage, |meter| meter.storage().clone());
        let log = EventLog::create(storage, config.partitions).await?;
        Ok(IngestFunction {
            log: Arc::new(log),
            records: RecordParser::new(config.key_field),
            open_bucket: Arc::new(|bucket| Storage::from_url(&format!("s3://{bucket}"))),
            trigger: None,
            touched: Arc::default(),
            tally: Arc::default(),
            invocation_parent: Arc::default(),
            metrics: Metrics::new(config.metrics, "ingest", config.agent.as_deref()),
            approvals: approval::Approvals::new(config.approval_secret, config.agent),
            approvals_only: config.approvals_only,
            meter,
        })
    }

    /// Reads time from `clock` (approval links expire), instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn weir_engine::Clock>) -> Self {
        self.approvals.clock = clock;
        self
    }

    /// Invokes `trigger` (the process function) after each invocation, for the partitions
    /// it appended to.
    pub fn with_trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// Publishes the metrics through `metrics` instead of as the configuration says.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Appends `events` as the batch `batch_id`, noting the partitions for the trigger and
    /// the events for the metrics.
    async fn append(&self, batch_id: &str, events: &[LogEvent]) -> weir_engine::Result<Vec<Appended>> {
        let invocation_parent = self.invocation_parent.lock().expect("not poisoned").clone();
        let appended = match invocation_parent {
            Some(parent) if events.iter().any(|e| e.trace_parent.is_none()) => {
                let events: Vec<LogEvent> = events
                    .iter()
                    .map(|e| match e.trace_parent {
                        Some(_) => e.clone(),
                        None => e.clone().with_trace_parent(Some(parent.clone())),
                    })
                    .collect();
                self.log.append(batch_id, &events).await?
            }
            _ => self.log.append(batch_id, events).await?,
        };
        self.touched.lock().expect("not poisoned").extend(appended.iter().map(|a| a.partition));
        self.tally.lock().expect("not poisoned").events += events.len();
        Ok(appended)
    }

    /// Notes an append made elsewhere (an approval's answer) for the trigger and the metrics.
    fn note_appended(&self, partition: u32, events: usize) {
        self.touched.lock().expect("not poisoned").insert(partition);
        self.tally.lock().expect("not poisoned").events += events;
    }

    /// Notes `records` source records that were not stored, for the metrics.
    fn refused(&self, records: usize) {
        self.tally.lock().expect("not poisoned").refused += records;
    }

    /// Replaces how the buckets of S3 notifications are opened.
    pub fn with_bucket_opener(mut self, open_bucket: BucketOpener) -> Self {
        self.open_bucket = open_bucket;
        self
    }

    /// The log events are appended to.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Handles one invocation, recognising the source by the payload's shape, and returns
    /// the answer that source expects; then triggers process for the partitions it appended
    /// to. What the invocation spent is recorded for `weir cost`.
    pub async fn handle(&self, event: Value) -> Result<Value> {
        let invocation = self.meter.as_ref().map(|meter| meter.start("ingest"));
        // Lambda's runtime sets it for each invocation.
        let xray = std::env::var(XRAY_TRACE_VARIABLE).ok().and_then(|h| TraceParent::from_xray(&h));
        *self.invocation_parent.lock().expect("not poisoned") = xray;
        let answer = self.ingest(event).await;
        let touched = std::mem::take(&mut *self.touched.lock().expect("not poisoned"));
        let tally = std::mem::take(&mut *self.tally.lock().expect("not poisoned"));
        self.metrics.emit([self.metrics.document().metric(metrics::EVENTS, Unit::Count, tally.events).metric(
            metrics::REFUSED_RECORDS,
            Unit::Count,
            tally.refused,
        )]);
        if let Some(trigger) = &self.trigger {
            trigger.fire(touched).await;
        }
        if let Some(invocation) = invocation {
            match invocation.finish(tally.events as u64, usage::memory_mb()).await {
                Ok(usage) => usage::publish(&self.metrics, &usage),
                Err(error) => tracing::warn!(%error, "could not write the invocation's usage record"),
            }
        }
        answer
    }

    async fn ingest(&self, event: Value) -> Result<Value> {
        let source = event.pointer("/Records/0/eventSource").and_then(Value::as_str).map(str::to_string);
        match source.as_deref() {
            _ if event.get("requeue_dead_letters").is_some() => {
                let request = event.get("requeue_dead_letters").cloned().unwrap_or_default();
                redrive::requeue(self, parse("requeue_dead_letters", request)?).await
            }
            _ if event.pointer("/requestContext/http").is_some() => {
                Ok(http::ingest(self, parse("HTTP request", event)?).await)
            }
            _ if self.approvals_only => Err(Error::Event(APPROVALS_ONLY.into())),
            Some("aws:sqs") => Ok(sqs::ingest(self, parse("SQS", event)?).await),
            Some("aws:kinesis") => Ok(kinesis::ingest(self, parse("Kinesis", event)?).await),
            Some("aws:s3") => s3::ingest(self, parse("S3 notification", event)?).await,
            Some(other) => {
                Err(Error::Event(format!("records from `{other}`; expected aws:sqs, aws:kinesis or aws:s3")))
            }
            None => Err(Error::Event(
                "expected an HTTP request (function URL, API Gateway v2), SQS, Kinesis or S3 records, or requeue_dead_letters".into(),
            )),
        }
    }
}

/// Why an ingest that takes approval links only refuses anything else.
const APPROVALS_ONLY: &str =
    "this ingest takes approval links only (WEIR_INGEST_ACCEPT=approvals): follow a link, `GET ?approval=<token>`";

/// Where Lambda's runtime puts the invocation's X-Ray trace header.
const XRAY_TRACE_VARIABLE: &str = "_X_AMZN_TRACE_ID";

/// `events`, each carrying `parent` when there is one.
fn with_trace_parent(events: Vec<LogEvent>, parent: Option<TraceParent>) -> Vec<LogEvent> {
    match parent {
        Some(parent) => events.into_iter().map(|e| e.with_trace_parent(Some(parent.clone()))).collect(),
        None => events,
    }
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, event: Value) -> Result<T> {
    serde_json::from_value(event).map_err(|e| Error::Event(format!("not a valid {what} event: {e}")))
}

/// A source record: what to append under which batch id, or why it cannot be.
#[derive(Debug)]
struct SourceRecord {
    /// How the source names it in a failure report.
    id: String,
    /// Records of one group keep their order (an SQS FIFO group, a Kinesis partition key).
    group: String,
    batch_id: String,
    events: Result<Vec<LogEvent>, String>,
}

/// Appends records, groups concurrently and each group's in order, and returns the ids of
/// those not stored with the reason. After a failure the rest of its group is not
/// appended, so that a redelivery keeps the group's order.
async fn append_records(function: &IngestFunction, records: Vec<SourceRecord>) -> Vec<(String, String)> {
    let mut groups: BTreeMap<String, Vec<SourceRecord>> = BTreeMap::new();
    for record in records {
        groups.entry(record.group.clone()).or_default().push(record);
    }
    let appends = groups.into_values().map(|group| async move {
        let mut failures = Vec::new();
        for record in group {
            let outcome = match (&record.events, failures.is_empty()) {
                (_, false) => Err("an earlier record of its group was not stored".to_string()),
                (Err(reason), true) => Err(format!("refused: {reason}")),
                (Ok(events), true) => {
                    function.append(&record.batch_id, events).await.map(drop).map_err(|e| e.to_string())
                }
            };
            if let Err(reason) = outcome {
                tracing::warn!(record = %record.id, %reason, "record not stored");
                failures.push((record.id, reason));
            }
        }
        failures
    });
    let failures: Vec<(String, String)> =
        futures::stream::iter(appends).buffer_unordered(GROUPS_AT_ONCE).concat().await;
    function.refused(failures.len());
    failures
}

/// Runs the ingest function: reads the configuration, opens or creates the log (failing the
/// init if either is wrong), then serves invocations.
pub async fn serve() -> Result<()> {
    runtime::init_tracing();
    let function = runtime::init(async {
        let approvals = ApprovalEnvironment::load(|name| std::env::var(name).ok(), AwsClients::from_env).await?;
        let config = IngestConfig::from_lookup(|name| approvals.get(name))?;
        let trigger = config.process_function.clone();
        let function = IngestFunction::new(config).await?;
        Ok(match trigger {
            Some(process) => {
                function.with_trigger(Trigger::new(LambdaInvoker::new(&AwsClients::from_env().await), process))
            }
            None => function,
        })
    })
    .await?;
    runtime::serve(|event: Value, _context| function.handle(event)).await
}
