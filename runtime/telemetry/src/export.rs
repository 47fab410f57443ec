//! Sending committed spans over OTLP/HTTP, configured by the standard variables.

use std::sync::{Arc, Mutex};

use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio_util::task::TaskTracker;
use weir_engine::{EventTrace, TraceParent, TraceSink};

use crate::invocation::Invocation;
use crate::spans::{Commit, event_spans};

/// Spans held before a send starts without waiting for [`OtlpExport::flush`].
const SPANS_PER_EXPORT: usize = 512;
/// The name of an invocation that nobody began (an export used as a sink alone).
const UNNAMED_INVOCATION: &str = "weir";

/// What can go wrong exporting.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter could not be built from the variables (a malformed endpoint or header).
    #[error("OpenTelemetry export: {0}")]
    Config(String),
    /// The receiver refused the spans or could not be reached.
    #[error("OpenTelemetry export to {endpoint}: {reason}")]
    Export {
        /// Where the spans went.
        endpoint: String,
        reason: String,
    },
}

/// The engine's [`TraceSink`] that sends each committed event's spans over OTLP/HTTP
/// (protobuf): to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT`
/// plus `/v1/traces`, with `OTEL_EXPORTER_OTLP_HEADERS` (or `..._TRACES_HEADERS`), as
/// `OTEL_SERVICE_NAME` (default `weir`) with `OTEL_RESOURCE_ATTRIBUTES`.
///
/// Spans are sent in the background as they gather; [`flush`](Self::flush) sends the rest
/// and must be awaited before a function's invocation returns (Lambda freezes the process
/// after). A send that fails is logged and its spans are dropped: the committed trace in
/// the store stays the record.
///
/// Each commit is a batch span, under a span of its partition, under a span of the
/// invocation that [`begin_invocation`](Self::begin_invocation) starts and
/// [`flush`](Self::flush) ends; an event's spans sit under its batch's.
///
/// ```no_run
/// # async fn demo(storage: weir_engine::Storage, agent: std::sync::Arc<dyn weir_engine::Agent>) -> Result<(), Box<dyn std::error::Error>> {
/// let mut engine = weir_engine::Engine::builder(storage, "review-analysis", agent);
/// let export = weir_telemetry::OtlpExport::from_env()?;
/// if let Some(export) = &export {
///     engine = engine.trace_sink(export.clone());
/// }
/// engine.build()?.drain().await?;
/// if let Some(export) = &export {
///     export.flush().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtlpExport {
    sender: Arc<Sender>,
    capture_content: bool,
    pending: Mutex<Vec<SpanData>>,
    /// Sends started in the background, which a flush waits for.
    sending: TaskTracker,
    /// The invocation the commits belong to.
    invocation: Mutex<Invocation>,
}

/// The exporter, one send at a time (as it asks).
#[derive(Debug)]
struct Sender {
    exporter: tokio::sync::Mutex<SpanExporter>,
    endpoint: String,
}

impl OtlpExport {
    /// An export configured by the standard variables; `None` when no endpoint is set.
    pub fn from_env() -> Result<Option<Arc<Self>>, TelemetryError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let capture_content =
            var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Self::to(&endpoint, capture_content).map(Some)
    }

    /// An export to `endpoint` (the full URL of the traces path); message content goes too
    /// when `capture_content`.
    pub fn to(endpoint: &str, capture_content: bool) -> Result<Arc<Self>, TelemetryError> {
        let mut exporter = SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| TelemetryError::Config(e.to_string()))?;
        let resource = match std::env::var_os("OTEL_SERVICE_NAME") {
            Some(_) => Resource::builder().build(),
            None => Resource::builder().with_service_name("weir").build(),
        };
        exporter.set_resource(&resource);
        let sender = Sender { exporter: tokio::sync::Mutex::new(exporter), endpoint: endpoint.to_string() };
        Ok(Arc::new(OtlpExport {
            sender: Arc::new(sender),
            capture_content,
            pending: Mutex::default(),
            sending: TaskTracker::new(),
            invocation: Mutex::new(Invocation::start(UNNAMED_INVOCATION, None)),
        }))
    }

    /// Starts the spans of an invocation of `function` (`process`, `run`), now: the commits
    /// until the next [`flush`](Self::flush) belong to it. With `parent` (Lambda's X-Ray
    /// context, a parent process's `TRACEPARENT`) it continues that trace; without, it
    /// starts one. An invocation already started and not flushed ends here.
    pub fn begin_invocation(&self, function: &str, parent: Option<TraceParent>) {
        let ended =
            std::mem::replace(&mut *self.invocation.lock().expect("invocation"), Invocation::start(function, parent));
        if !ended.is_empty() {
            self.pending.lock().expect("pending spans").extend(ended.finish());
        }
    }

    /// Ends the invocation (its span and its partitions', if it committed anything), sends
    /// every span gathered so far, and waits for the sends in the background.
    pub async fn flush(&self) -> Result<(), TelemetryError> {
        let ended = std::mem::replace(
            &mut *self.invocation.lock().expect("invocation"),
            Invocation::start(UNNAMED_INVOCATION, None),
        );
        let batch = {
            let mut pending = self.pending.lock().expect("pending spans");
            if !ended.is_empty() {
                pending.extend(ended.finish());
            }
            std::mem::take(&mut *pending)
        };
        let sent = self.sender.send(batch).await;
        self.sending.close();
        self.sending.wait().await;
        self.sending.reopen();
        sent
    }
}

impl Sender {
    async fn send(&self, batch: Vec<SpanData>) -> Result<(), TelemetryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let spans = batch.len();
        let exporter = self.exporter.lock().await;
        exporter
            .export(batch)
            .await
            .map_err(|e| TelemetryError::Export { endpoint: self.endpoint.clone(), reason: e.to_string() })?;
        tracing::debug!(spans, endpoint = %self.endpoint, "spans exported");
        Ok(())
    }
}

impl TraceSink for OtlpExport {
    fn committed(&self, agent: &str, partition: u32, seq: u64, traces: &[EventTrace]) {
        let commit = Commit { agent, partition, seq, capture_content: self.capture_content };
        let (batch_data, batch) = self.invocation.lock().expect("invocation").batch(agent, partition, seq, traces);
        let full = {
            let mut pending = self.pending.lock().expect("pending spans");
            pending.extend(batch_data);
            pending.extend(traces.iter().flat_map(|trace| event_spans(&commit, trace, Some(&batch))));
            match pending.len() >= SPANS_PER_EXPORT {
                true => std::mem::take(&mut *pending),
                false => Vec::new(),
            }
        };
        if full.is_empty() {
            return;
        }
        // Sent apart from the commit path.
        let sender = self.sender.clone();
        self.sending.spawn(async move {
            if let Err(error) = sender.send(full).await {
                tracing::warn!(%error, "spans dropped");
            }
        });
    }
}
