//! `engine-bench`: measures the durable engine on each backend.
//!
//! ```text
//! cargo run --release -p weir-bench -- --events 100000 --keys 100 --backend memory,file,s3
//! ```
//!
//! Reports events per second, object-store requests per 1,000 events by kind, batch commit
//! latency p50/p99, engine CPU per event, peak memory, and the requests of one 1,000-event
//! commit as the number of keys that exist grows to a million.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use weir_bench::{counted, cpu_time, peak_memory_mb, per_thousand, percentile};
use weir_engine::store::RequestCountsSnapshot;
use weir_engine::{
    ActionError, Agent, CallMode, Durable, Engine, EngineSettings, EventContext, EventLog, LogEvent, LogInput,
};
use weir_tests::backends::{Backend, fresh_storage};

#[derive(Debug, Parser)]
#[command(about = "Benchmark of weir's durable engine")]
struct Args {
    /// Events to process per backend (S3 on moto is slow: it gets a tenth of them).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Distinct keys the events spread over.
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Events per micro-batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Events per producer append.
    #[arg(long, default_value_t = 1000)]
    append: usize,
    /// Backends, comma separated: memory, file, s3 (moto).
    #[arg(long, value_delimiter = ',', default_value = "memory,file,s3")]
    backend: Vec<String>,
    /// Latency of the agent's journaled call, in milliseconds (a stand-in for a model).
    #[arg(long, default_value_t = 0)]
    call_ms: u64,
    /// Every Nth event also makes an at-most-once call (0: none), to measure what holding
    /// each such call exclusively costs.
    #[arg(long, default_value_t = 0)]
    at_most_once_every: u32,
    /// Group-commit window of the action journal, in milliseconds.
    #[arg(long, default_value_t = 50)]
    journal_window_ms: u64,
    /// Key counts for the scale measurement, comma separated (0 to skip).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000,1000000")]
    scale_keys: Vec<usize>,
}

/// The benchmark's agent: one journaled call (taking `call` to answer), a state update and
/// an output per event, and an instant at-most-once call on every `at_most_once_every`th.
struct BenchAgent {
    call: Duration,
    at_most_once_every: u32,
}

#[async_trait::async_trait]
impl Agent for BenchAgent {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let text_len = event.payload["review"].as_str().map_or(0, str::len) as u64;
        let call = self.call;
        let score: u64 = ctx
            .durable("score", async move {
                if !call.is_zero() {
                    tokio::time::sleep(call).await;
                }
                Ok::<_, std::io::Error>(text_len % 5 + 1)
            })
            .await?;
        if self.at_most_once_every > 0 && event.position.index.is_multiple_of(self.at_most_once_every) {
            ctx.durable_call("notify", CallMode::AtMostOnce, |_| async { Ok::<_, std::io::Error>(()) }).await?;
        }
        let count = ctx.state::<u64>()?.unwrap_or(0) + 1;
        ctx.set_state(&count)?;
        ctx.emit(&serde_json::json!({"score": score, "count": count}))?;
        Ok(())
    }
}

fn events(n: usize, keys: usize, offset: usize) -> Vec<LogEvent> {
    let reviews = weir_tests::review_events(3163, false);
    (0..n)
        .map(|i| {
            let j = offset + i;
            LogEvent::new(format!("key-{:07}", j % keys), reviews[j % reviews.len()].payload.clone())
        })
        .collect()
}

fn settings(batch: usize) -> EngineSettings {
    EngineSettings { max_batch_events: batch, ..Default::default() }
}

fn instant_agent() -> Arc<BenchAgent> {
    Arc::new(BenchAgent { call: Duration::ZERO, at_most_once_every: 0 })
}

async fn throughput(backend: Backend, name: &str, args: &Args) {
    let n = if backend == Backend::S3 { args.events / 10 } else { args.events };
    let (storage, _guard) = fresh_storage(backend);
    let (storage, counts) = counted(&storage);
    let log = EventLog::create(storage.clone(), 1).await.expect("log");
    let all = events(n, args.keys, 0);
    let appended = Instant::now();
    for (i, chunk) in all.chunks(args.append).enumerate() {
        log.append(&format!("bench-{i}"), chunk).await.expect("append");
    }
    let append_secs = appended.elapsed().as_secs_f64();
    let append_requests = counts.snapshot();

    let agent =
        Arc::new(BenchAgent { call: Duration::from_millis(args.call_ms), at_most_once_every: args.at_most_once_every });
    let settings = EngineSettings { journal_flush_window_ms: args.journal_window_ms, ..settings(args.batch) };
    let engine = Engine::builder(storage, "bench", agent).settings(settings).build().expect("engine");
    let cpu_before = cpu_time();
    let started = Instant::now();
    let report = engine.drain().await.expect("drain");
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    let requests: RequestCountsSnapshot = counts.snapshot() - append_requests;
    assert_eq!(report.events, n, "every event processed");
    let mut latencies = report.commit_latencies.clone();
    latencies.sort();
    println!(
        "| {name} | {n} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.3} | {:.0} |",
        args.keys,
        n as f64 / append_secs,
        n as f64 / elapsed.as_secs_f64(),
        per_thousand(requests.put, n),
        per_thousand(requests.get, n),
        per_thousand(requests.head, n),
        per_thousand(requests.list, n),
        per_thousand(requests.delete, n),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        per_thousand(append_requests.put, n),
        cpu.as_secs_f64() * 1000.0 / n as f64,
        peak_memory_mb(),
    );
}

/// Loads state for `keys` keys, then measures one 1,000-event commit over 100 of them, with
/// a cold process (fresh cache) and a warm one.
async fn scale(keys: usize) {
    let (storage, _guard) = fresh_storage(Backend::File);
    let log = EventLog::create(storage.clone(), 1).await.expect("log");
    let load_batch = 20_000.min(keys);
    let engine = Engine::builder(storage.clone(), "bench", instant_agent())
        .settings(settings(load_batch))
        .build()
        .expect("engine");
    let loaded = Instant::now();
    for (i, chunk) in events(keys, keys, 0).chunks(load_batch).enumerate() {
        log.append(&format!("load-{i}"), chunk).await.expect("append");
    }
    engine.drain().await.expect("load");
    let load_secs = loaded.elapsed().as_secs_f64();
    let runs = weir_engine::CommittedReader::new(storage.clone(), "bench", 0)
        .unwrap()
        .head()
        .await
        .unwrap()
        .unwrap()
        .state_runs();

    // 1,000 events over 100 keys spread across the key space.
    let touched: Vec<LogEvent> = (0..1000)
        .map(|i| {
            let key = (i % 100) * (keys / 100).max(1);
            LogEvent::json(format!("key-{key:07}"), &serde_json::json!({"review": "great"}))
        })
        .collect();
    let mut row = Vec::new();
    for (round, warm) in [(0, false), (1, true)] {
        log.append(&format!("probe-{round}"), &touched).await.expect("append");
        let (counted_storage, counts) = counted(&storage);
        let engine = if warm {
            // A warm container: the same cache as a previous invocation in this process.
            let cache = weir_engine::RunCache::new(64 << 20);
            let warmup = Engine::builder(counted_storage.clone(), "bench", instant_agent())
                .settings(settings(1000))
                .run_cache(cache.clone())
                .build()
                .expect("engine");
            let mut processor = warmup.claim(0).await.expect("claim");
            processor.process_batch().await.expect("warm batch");
            log.append("probe-warm", &touched).await.expect("append");
            drop(processor);
            Engine::builder(counted_storage, "bench", instant_agent())
                .settings(settings(1000))
                .run_cache(cache)
                .build()
                .expect("engine")
        } else {
            Engine::builder(counted_storage, "bench", instant_agent()).settings(settings(1000)).build().expect("engine")
        };
        let mut processor = engine.claim(0).await.expect("claim");
        let before = counts.snapshot();
        let batch = processor.process_batch().await.expect("batch");
        let used = counts.snapshot() - before;
        assert_eq!((batch.events, batch.keys), (1000, 100));
        row.push(format!("{} PUT, {} GET, {} LIST", used.put, used.get + used.head, used.list));
    }
    println!("| {keys} | {} | {load_secs:.1} | {} | {} |", runs, row[0], row[1]);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    if let Err(missing) = weir_tests::find_reviews() {
        eprintln!("engine-bench: {missing}");
        std::process::exit(2);
    }
    println!(
        "Throughput ({} events over {} keys, {}-event batches, {}-event appends, 1 partition, {} ms call, {} ms journal window):\n",
        args.events, args.keys, args.batch, args.append, args.call_ms, args.journal_window_ms
    );
    println!(
        "| backend | events | keys | append ev/s | process ev/s | PUT/1k | GET/1k | HEAD/1k | LIST/1k | DELETE/1k | commit p50 ms | commit p99 ms | append PUT/1k | CPU ms/event | peak MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &args.backend {
        let backend = match name.as_str() {
            "memory" => Backend::Memory,
            "file" => Backend::File,
            "s3" => Backend::S3,
            other => panic!("unknown backend `{other}`: use memory, file or s3"),
        };
        throughput(backend, name, &args).await;
    }
    let scale_keys: Vec<usize> = args.scale_keys.iter().copied().filter(|&k| k > 0).collect();
    if !scale_keys.is_empty() {
        println!(
            "\nRequests of one 1,000-event commit over 100 keys, as the keys that exist grow (local directory):\n"
        );
        println!("| keys that exist | live runs | load s | cold process | warm process |");
        println!("|---|---|---|---|---|");
        for keys in scale_keys {
            scale(keys).await;
        }
    }
}
