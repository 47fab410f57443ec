//! `weir demo`: the review-analysis agent over the sample reviews, through the local
//! Lambda emulator, exactly as on AWS: each review goes to the ingest function through
//! the Invoke API, the log-segment trigger invokes the process function, and the summary is
//! read from what was committed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use weir_emulator::Emulator;
use weir_engine::{CommittedReader, EventLog};

use crate::agents::AgentChoice;
use crate::binaries::BinaryArgs;
use crate::committed::Committed;
use crate::dev::print_logs;
use crate::error::{CliError, Result};
use crate::functions::{DISPATCH, FunctionsSetup, INGEST};
use crate::store::Store;

/// The sample reviews, one JSON object per line; one line is malformed on purpose.
const SAMPLE: &str = include_str!("../../../functions/review-analysis/data/reviews.jsonl");
/// The agent the demo runs.
const DEMO_AGENT: &str = "review-analysis";
/// Partitions of the demo's log.
const PARTITIONS: u32 = 4;
/// How often the demo looks whether everything was processed.
const POLL: Duration = Duration::from_millis(250);

/// Options of `weir demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Also print every line the functions write, labelled `[function request-id]`.
    #[arg(long)]
    logs: bool,
    /// Give up if the reviews are not all processed after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Also deliver the analyses with the dispatch function, exactly once in effect: a webhook
    /// (`https://…`), `sqs:<queue-url>`, `sns:<topic-arn>` or `weir:<store-url>`.
    #[arg(long)]
    sink: Option<String>,
    #[command(flatten)]
    binaries: BinaryArgs,
}

/// Sends every sample review to the ingest function, waits until the process function has
/// committed them all, and prints a summary. Running it again adds nothing.
pub async fn run(args: DemoArgs, store: Store) -> Result<()> {
    let agent = AgentChoice::parse(DEMO_AGENT)?;
    let (process_binary, process_env) = agent.process_function();
    let setup = FunctionsSetup {
        binaries: args.binaries.locate_or_build(process_binary)?,
        agent: DEMO_AGENT.into(),
        store,
        process_env,
        key_field: weir_review_analysis::KEY_FIELD.into(),
        partitions: PARTITIONS,
        sink: args.sink.clone(),
        schedule: Duration::from_secs(10),
        ingest_url: None,
    };
    let emulator = setup.emulator().start().await?;
    if args.logs {
        tokio::spawn(print_logs(emulator.subscribe_logs()));
    }
    let result = demo(&emulator, &setup, Duration::from_secs(args.timeout_secs)).await;
    emulator.shutdown().await;
    result
}

async fn demo(emulator: &Emulator, setup: &FunctionsSetup, timeout: Duration) -> Result<()> {
    say!("weir demo: the review-analysis agent on the local Lambda emulator, store {}", setup.store.url);
    say!("model: {}\n", model_label()?);
    let mut refused = Vec::new();
    for (n, line) in SAMPLE.lines().enumerate() {
        if let Err(reason) = ingest(emulator, n + 1, line).await? {
            refused.push(format!("line {}: {reason}", n + 1));
        }
    }
    let log = setup.store.log().await?;
    wait_until_processed(&log, &setup.agent, timeout).await?;
    let committed = Committed::read(&log, &setup.agent).await?;
    print_summary(&committed);
    if let Some(sink) = &setup.sink {
        dispatch(emulator, sink).await?;
    }
    say!("\nrefused by ingest: {}", refused.len());
    for line in &refused {
        say!("  {line}");
    }
    say!("dead letters: {}", committed.dead_letters.len());
    for (_, letter) in &committed.dead_letters {
        say!("  {} at {}: {}", letter.key, letter.event, letter.reason);
    }
    say!(
        "\nRun it again: each review is ingested under its own Idempotency-Key and committed once, so nothing changes."
    );
    Ok(())
}

/// Sends one review to the ingest function as a function-URL request; `Err` is why ingest
/// refused it.
async fn ingest(emulator: &Emulator, line_number: usize, line: &str) -> Result<Result<(), String>> {
    let request = json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json", "idempotency-key": format!("weir-demo-review-{line_number}")},
        "requestContext": {"requestId": format!("weir-demo-{line_number}"), "timeEpoch": 0, "http": {"method": "POST", "path": "/"}},
        "body": line,
        "isBase64Encoded": false,
    });
    let output = emulator.invoke(INGEST, request.to_string()).await?;
    if let Some(error) = output.function_error {
        return Err(CliError::Function(format!("the ingest function failed: {}", error.error_message)));
    }
    let answer: Value = serde_json::from_slice(&output.payload).unwrap_or_default();
    let body: Value = answer["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    match answer["statusCode"].as_u64() {
        Some(200) => Ok(Ok(())),
        Some(400) => Ok(Err(body["reason"].as_str().or(body["error"].as_str()).unwrap_or("refused").to_string())),
        _ => Err(CliError::Function(format!("the ingest function answered {answer}"))),
    }
}

/// Invokes the dispatch function once, so that every committed analysis is delivered.
async fn dispatch(emulator: &Emulator, sink: &str) -> Result<()> {
    let output = emulator.invoke(DISPATCH, "{}").await?;
    if let Some(error) = output.function_error {
        return Err(CliError::Function(format!("the dispatch function failed: {}", error.error_message)));
    }
    say!("dispatched to {sink}: every analysis delivered once, under a stable Idempotency-Key");
    Ok(())
}

/// Waits until every partition's commits have caught up with the log.
async fn wait_until_processed(log: &EventLog, agent: &str, timeout: Duration) -> Result<()> {
    let waiting = async {
        loop {
            if backlog(log, agent).await?.is_empty() {
                return Ok::<_, CliError>(());
            }
            tokio::time::sleep(POLL).await;
        }
    };
    match tokio::time::timeout(timeout, waiting).await {
        Ok(done) => done,
        Err(_) => Err(CliError::Function(format!(
            "the reviews were not all processed within {} s (partitions {:?} still have backlog); rerun with --logs \
             to see the functions' output",
            timeout.as_secs(),
            backlog(log, agent).await?
        ))),
    }
}

/// The partitions whose committed position is behind the log's tail.
async fn backlog(log: &EventLog, agent: &str) -> Result<Vec<u32>> {
    let mut behind = Vec::new();
    for partition in 0..log.partitions() {
        let head = CommittedReader::new(log.storage().clone(), agent, partition)?.head().await?;
        if log.has_events_from(partition, head.map_or_else(Default::default, |h| h.position())).await? {
            behind.push(partition);
        }
    }
    Ok(behind)
}

/// The model the process function uses: the one its environment configures, else the
/// built-in offline one.
fn model_label() -> Result<String> {
    let env = |name: &str| std::env::var(name).ok();
    let unusable = |e: weir_models::ModelError| CliError::Agent { name: DEMO_AGENT.into(), reason: e.to_string() };
    Ok(match weir_models::ModelConfig::from_environment(&env).map_err(unusable)? {
        Some(config) => config.build().map_err(unusable)?.name().to_string(),
        None => format!(
            "{} - keyword rules, not an LLM; set OPENAI_API_KEY, ANTHROPIC_API_KEY or OLLAMA_HOST for a real one",
            weir_review_analysis::OFFLINE_MODEL_NAME
        ),
    })
}

/// Per product: reviews, average score, shipping complaints notified.
fn print_summary(committed: &Committed) {
    #[derive(Default)]
    struct Product {
        reviews: u64,
        score_total: u64,
        shipping_complaints: u64,
    }
    let mut products: BTreeMap<&str, Product> = BTreeMap::new();
    for (_, output) in committed.outputs() {
        let product = products.entry(output.key.as_str()).or_default();
        product.reviews += 1;
        product.score_total += output.payload["score"].as_u64().unwrap_or(0);
        product.shipping_complaints += u64::from(output.payload["shipping_complaint"] == true);
    }
    say!("{:<12} {:>7} {:>9} {:>20}", "product", "reviews", "avg score", "shipping complaints");
    for (name, p) in &products {
        let average = p.score_total as f64 / p.reviews as f64;
        say!("{name:<12} {:>7} {average:>9.1} {:>20}", p.reviews, p.shipping_complaints);
    }
    say!("{} reviews analysed", committed.outputs().len());
}
