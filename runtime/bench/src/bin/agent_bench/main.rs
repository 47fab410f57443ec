//! `agent-bench`: the review-analysis agent over synthetic reviews, against `fake-openai` (a
//! fake model server in its own process), through the engine on a local directory and on
//! moto's S3.
//!
//! ```text
//! cargo build --release -p weir-bench
//! target/release/agent-bench --reviews 10000 --products 100 --store file,s3
//! target/release/agent-bench --reviews 10000 --key review --model-concurrency 256 --store file
//! ```
//!
//! Reports events per second (end to end and steady state), peak concurrent model requests,
//! CPU per event, peak memory, time to the first commit and object-store requests per 1,000
//! events; then what a million such events would cost on AWS, model and infrastructure
//! apart. `BENCHMARKS.md` says exactly what each column counts.

mod run;
mod workload;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use weir_bench::FakeModelServer;
use weir_engine::{AwsPrices, InfrastructureCost};
use weir_tests::backends::Backend;

use crate::run::{Knobs, measure};
use crate::workload::KeyBy;

/// The function binaries' allocator (see `weir_functions`), which this binary does not link.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Benchmark of the review-analysis agent against a fake model server")]
struct Args {
    /// Reviews to process per store.
    #[arg(long, default_value_t = 10_000)]
    reviews: usize,
    /// Products the reviews spread over.
    #[arg(long, default_value_t = 100)]
    products: usize,
    /// What the events are keyed by: the product (one key per product) or the review.
    #[arg(long, value_enum, default_value_t = KeyBy::Product)]
    key: KeyBy,
    /// The fake model's delay before each reply, in milliseconds.
    #[arg(long, default_value_t = 20)]
    model_delay_ms: u64,
    /// One first-turn model reply in this many calls the notify tool first (0: none).
    #[arg(long, default_value_t = 10)]
    tool_every: u64,
    /// Most model requests in flight (the client's `http.max_concurrency`).
    #[arg(long, default_value_t = 256)]
    model_concurrency: usize,
    /// Most keys running at once per batch (the engine's `max_concurrent_keys`).
    #[arg(long, default_value_t = 256)]
    concurrent_keys: usize,
    /// Events per micro-batch (the engine's `max_batch_events`).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Events in the first batch after a claim (the engine's `first_batch_events`).
    #[arg(long, default_value_t = weir_engine::EngineSettings::default().first_batch_events)]
    first_batch: usize,
    /// Most batches running at once (the engine's `max_batches_in_flight`; 1: one at a time).
    #[arg(long, default_value_t = 3)]
    batches_in_flight: usize,
    /// Group-commit window of the action journal, in milliseconds.
    #[arg(long, default_value_t = 50)]
    journal_window_ms: u64,
    /// Log partitions (each processed concurrently by the one process).
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Stores, comma separated: file (a local directory), s3 (moto, from `.ci/venv`), memory.
    #[arg(long, value_delimiter = ',', default_value = "file,s3")]
    store: Vec<StoreKind>,
    /// The model's price of a million prompt tokens (default: OpenAI's gpt-4o-mini).
    #[arg(long, default_value_t = 0.15)]
    input_per_million: f64,
    /// The model's price of a million reply tokens (default: OpenAI's gpt-4o-mini).
    #[arg(long, default_value_t = 0.60)]
    output_per_million: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StoreKind {
    Memory,
    File,
    S3,
}

impl StoreKind {
    fn backend(self) -> Backend {
        match self {
            StoreKind::Memory => Backend::Memory,
            StoreKind::File => Backend::File,
            StoreKind::S3 => Backend::S3,
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    if let Err(missing) = weir_tests::find_reviews() {
        eprintln!("agent-bench: {missing}");
        std::process::exit(2);
    }
    let delay = Duration::from_millis(args.model_delay_ms);
    let fake = FakeModelServer::start(delay, args.tool_every).unwrap_or_else(|e| panic!("fake model server: {e}"));
    let knobs = Knobs {
        reviews: args.reviews,
        products: args.products,
        key_by: args.key,
        model_concurrency: args.model_concurrency,
        concurrent_keys: args.concurrent_keys,
        batch: args.batch,
        first_batch: args.first_batch,
        batches_in_flight: args.batches_in_flight,
        journal_window_ms: args.journal_window_ms,
        partitions: args.partitions,
    };
    println!(
        "{} reviews over {} products keyed by {:?}, {} ms model (1 first turn in {} calls the tool), \
         {} model requests and {} keys at most in flight, {}-event batches (the first {}; {} in flight), {} ms journal window, \
         {} partition(s)\n",
        args.reviews,
        args.products,
        args.key,
        args.model_delay_ms,
        args.tool_every,
        args.model_concurrency,
        args.concurrent_keys,
        args.batch,
        args.first_batch,
        args.batches_in_flight,
        args.journal_window_ms,
        args.partitions,
    );
    println!(
        "| store | events | keys | ev/s end to end | ev/s steady | peak model requests | model requests | model ms served | model ms read late | model ms seen | CPU ms/event | model server CPU ms/request | MB at start | peak MB | first commit ms | PUT/1k | GET/1k | LIST/1k | requests/1k |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut measured = Vec::new();
    for store in &args.store {
        let m = measure(store.backend(), &fake, &knobs).await;
        println!(
            "| {store:?} | {} | {} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.2} | {:.1} |",
            m.events,
            m.keys,
            m.end_to_end_rate(),
            m.steady_rate(),
            m.model.peak_in_flight,
            m.model.requests,
            m.model.mean_served_ms(),
            m.model.mean_read_late_ms(),
            m.model_seen_ms,
            m.cpu_ms_per_event(),
            m.model.cpu_ms_per_request(),
            m.resident_before_mb,
            m.peak_mb,
            m.first_commit.as_secs_f64() * 1000.0,
            m.per_thousand(m.requests.put),
            m.per_thousand(m.requests.get + m.requests.head),
            m.per_thousand(m.requests.list),
            m.per_thousand(m.requests.total()),
        );
        measured.push((store, m));
    }
    print_costs(&args, &measured);
}

/// What a million events cost on AWS at the default price table (`AwsPrices`: us-east-1),
/// the model apart from the infrastructure.
fn print_costs(args: &Args, measured: &[(&StoreKind, run::Measurement)]) {
    println!(
        "\nCost per million events (model at {} / {} per million tokens in / out; S3 and Lambda at us-east-1 prices):\n",
        args.input_per_million, args.output_per_million
    );
    println!(
        "| store | model calls/event | tokens in/event | tokens out/event | model | S3 ingest | S3 process | Lambda time | Lambda requests | infrastructure | GB-s/event |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let prices = AwsPrices::default();
    for (store, m) in measured {
        let per_million = |cost: f64| cost / m.events as f64 * 1e6;
        let of = |function: &str| InfrastructureCost::of(m.usage.iter().filter(|u| u.function == function), &prices);
        let all = InfrastructureCost::of(&m.usage, &prices);
        let model =
            (m.input_tokens as f64 * args.input_per_million + m.output_tokens as f64 * args.output_per_million) / 1e6;
        println!(
            "| {store:?} | {:.2} | {:.0} | {:.0} | {:.2} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.6} |",
            m.model_calls as f64 / m.events as f64,
            m.input_tokens as f64 / m.events as f64,
            m.output_tokens as f64 / m.events as f64,
            per_million(model),
            per_million(of("ingest").s3),
            per_million(of("process").s3),
            per_million(all.lambda_compute),
            per_million(all.lambda_requests),
            per_million(all.total()),
            all.gb_seconds / m.events as f64,
        );
    }
}
