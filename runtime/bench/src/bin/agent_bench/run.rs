//! One measured run: ingest the reviews, then build the agent and the engine and process
//! every partition until the log is drained, timing each commit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_bench::{
    FakeModelServer, FakeModelStats, counted, cpu_time, peak_memory_mb, per_thousand, reset_peak_memory,
    resident_memory_mb,
};
use weir_engine::store::RequestCountsSnapshot;
use weir_engine::{CommittedReader, Engine, EngineSettings, EventLog, InvocationUsage, SpanKind};
use weir_models::{ApiKey, ChatModel, HttpSettings, OpenAiChat, OpenAiConfig};
use weir_tests::backends::{Backend, fresh_storage};

use crate::workload::{KeyBy, reviews};

/// What a run may vary.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub reviews: usize,
    pub products: usize,
    pub key_by: KeyBy,
    pub model_concurrency: usize,
    pub concurrent_keys: usize,
    pub batch: usize,
    pub first_batch: usize,
    pub batches_in_flight: usize,
    pub journal_window_ms: u64,
    pub partitions: u32,
}

/// What a run measured. Times count from the start of building the agent and the engine.
#[derive(Debug)]
pub struct Measurement {
    pub events: usize,
    pub keys: usize,
    /// Time to the first commit: agent and engine built, partition claimed, first batch
    /// pulled, run and committed.
    pub first_commit: Duration,
    /// Each commit's time and the events committed so far, in order.
    commits: Vec<(Duration, usize)>,
    /// This process's CPU time while processing (the fake model server is another process).
    cpu: Duration,
    pub peak_mb: f64,
    /// Resident memory when processing started: the harness, and what ingesting the
    /// reviews left in the allocator.
    pub resident_before_mb: f64,
    pub model: FakeModelStats,
    /// The mean model call as the client saw it, in milliseconds: the server's time plus
    /// HTTP on loopback and waiting for a worker thread to read the reply.
    pub model_seen_ms: f64,
    /// Store requests while processing (ingestion excluded).
    pub requests: RequestCountsSnapshot,
    /// What the run would have spent as Lambda invocations: one ingest per appended batch
    /// of 1,000 reviews and one process for the whole drain, each with its requests and
    /// wall time, and the memory the module gives each function by default.
    pub usage: Vec<InvocationUsage>,
    /// Model calls, prompt tokens and reply tokens, as the committed trace holds them.
    pub model_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Measurement {
    /// Events over the time from the start to the last commit.
    pub fn end_to_end_rate(&self) -> f64 {
        let last = self.commits.last().map_or(Duration::ZERO, |c| c.0);
        self.events as f64 / last.as_secs_f64()
    }

    /// Events per second between the commits that pass 10 % and 90 % of the events: start-up
    /// and the last batches' tail left out.
    pub fn steady_rate(&self) -> f64 {
        let passing = |share: f64| self.commits.iter().find(|c| c.1 as f64 >= share * self.events as f64).copied();
        match (passing(0.1), passing(0.9)) {
            (Some(from), Some(to)) if to.0 > from.0 => (to.1 - from.1) as f64 / (to.0 - from.0).as_secs_f64(),
            _ => self.end_to_end_rate(),
        }
    }

    pub fn cpu_ms_per_event(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / self.events as f64
    }

    pub fn per_thousand(&self, count: u64) -> f64 {
        per_thousand(count, self.events)
    }
}

/// Runs the review-analysis agent over `knobs.reviews` reviews on a fresh store of `backend`.
pub async fn measure(backend: Backend, fake: &FakeModelServer, knobs: &Knobs) -> Measurement {
    let (storage, _guard) = fresh_storage(backend);
    let (storage, counts) = counted(&storage);
    let log = EventLog::create(storage.clone(), knobs.partitions).await.expect("log");
    let events = reviews(knobs.reviews, knobs.products, knobs.key_by);
    let keys = events.iter().map(|e| e.key.as_str()).collect::<std::collections::HashSet<_>>().len();
    let mut usage = Vec::new();
    for (i, chunk) in events.chunks(1000).enumerate() {
        let (before, started) = (counts.snapshot(), Instant::now());
        log.append(&format!("reviews-{i}"), chunk).await.expect("append");
        usage.push(invocation("ingest", INGEST_MEMORY_MB, started.elapsed(), chunk.len(), counts.snapshot() - before));
    }
    drop(events);
    fake.reset().await.expect("fake model server stats");
    let ingested = counts.snapshot();

    reset_peak_memory();
    let resident_before_mb = resident_memory_mb();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let config = OpenAiConfig {
        base_url: Some(fake.base_url()),
        http: HttpSettings { max_concurrency: knobs.model_concurrency, ..HttpSettings::default() },
        ..OpenAiConfig::chat("fake")
    };
    let model = Arc::new(OpenAiChat::new(&config, ApiKey::new("benchmark")).expect("model client"));
    let notify = weir_review_analysis::notify_tool_from_env().expect("notify tool");
    let agent = weir_review_analysis::agent(model.clone(), notify).expect("agent");
    let settings = EngineSettings {
        max_batch_events: knobs.batch,
        first_batch_events: knobs.first_batch,
        max_concurrent_keys: knobs.concurrent_keys,
        max_batches_in_flight: knobs.batches_in_flight,
        journal_flush_window_ms: knobs.journal_window_ms,
        ..EngineSettings::default()
    };
    let engine =
        Engine::builder(storage, "review-analysis", Arc::new(agent)).settings(settings).build().expect("engine");
    let commits = Arc::new(Mutex::new(Vec::new()));
    let partitions = (0..knobs.partitions).map(|partition| {
        let (engine, commits) = (engine.clone(), commits.clone());
        tokio::spawn(async move {
            let mut processor = engine.claim(partition).await.expect("claim");
            loop {
                let batch = processor.process_batch().await.expect("batch");
                if batch.events == 0 {
                    return;
                }
                assert_eq!(batch.dead_letters, 0, "the fake model's answers are valid");
                let mut commits = commits.lock().unwrap();
                let total = commits.last().map_or(0, |c: &(Duration, usize)| c.1) + batch.events;
                commits.push((started.elapsed(), total));
            }
        })
    });
    for partition in futures::future::join_all(partitions).await {
        partition.expect("partition task");
    }
    let cpu = cpu_time() - cpu_before;
    let commits = std::mem::take(&mut *commits.lock().unwrap());
    let committed = commits.last().map_or(0, |c| c.1);
    assert_eq!(committed, knobs.reviews, "every review processed");
    let requests = counts.snapshot() - ingested;
    // Taken before the traces are read back below, which are not part of processing.
    let peak_mb = peak_memory_mb();
    let drained = commits.last().map_or(Duration::ZERO, |c| c.0);
    usage.push(invocation("process", PROCESS_MEMORY_MB, drained, committed, requests));
    let (mut model_calls, mut input_tokens, mut output_tokens) = (0, 0, 0);
    for partition in 0..knobs.partitions {
        let reader = CommittedReader::new(log.storage().clone(), "review-analysis", partition).expect("reader");
        for trace in reader.traces().await.expect("committed traces") {
            for usage in trace.spans.iter().filter(|s| s.kind == SpanKind::Model).filter_map(|s| s.usage.as_ref()) {
                model_calls += 1;
                input_tokens += usage.input_tokens;
                output_tokens += usage.output_tokens;
            }
        }
    }
    Measurement {
        events: committed,
        keys,
        first_commit: commits.first().map_or(Duration::ZERO, |c| c.0),
        commits,
        cpu,
        peak_mb,
        resident_before_mb,
        model: fake.stats().await.expect("fake model server stats"),
        model_seen_ms: {
            let stats = model.stats();
            stats.total_latency_us as f64 / 1000.0 / stats.calls.max(1) as f64
        },
        requests,
        usage,
        model_calls,
        input_tokens,
        output_tokens,
    }
}

/// The module's default memory of the ingest function, in MB.
const INGEST_MEMORY_MB: u32 = 256;
/// The module's default memory of the process function, in MB.
const PROCESS_MEMORY_MB: u32 = 1024;

/// What a Lambda invocation of `function` that did this work would record.
fn invocation(
    function: &str,
    memory_mb: u32,
    took: Duration,
    events: usize,
    requests: RequestCountsSnapshot,
) -> InvocationUsage {
    InvocationUsage {
        function: function.into(),
        started_ms: 0,
        duration_ms: took.as_millis() as u64,
        memory_mb: Some(memory_mb),
        events: events as u64,
        requests,
        cold_start: false,
        init_ms: None,
    }
}
