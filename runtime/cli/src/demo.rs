//! `weir demo`: a built-in agent over the bundled sample, on a local directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_engine::{
    ActionError, Agent, CommittedReader, Engine, EngineSettings, EventContext, EventLog, InputEvent, LogEvent, Storage,
};

/// Prints a line; a closed stdout (`weir demo | head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const SAMPLE: &str = include_str!("../data/sample-reviews.jsonl");

/// Options of `weir demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to keep the log, state and outputs: a store URL (file:///dir, s3://bucket/prefix, memory://).
    /// Default: the directory `weir-data` under the current directory.
    #[arg(long)]
    store: Option<String>,
    /// Log partitions.
    #[arg(long, default_value_t = 2)]
    partitions: u32,
}

/// A stand-in for a model, clearly offline: scores a review from words it contains.
fn offline_model_score(review: &str) -> (u64, Vec<&'static str>) {
    const POSITIVE: [&str; 9] =
        ["great", "love", "excellent", "perfect", "comfortable", "nice", "good", "reliably", "would buy again"];
    const NEGATIVE: [&str; 10] =
        ["broke", "broken", "poor", "leaks", "terrible", "peeling", "damaged", "late", "returned", "too hot"];
    let text = review.to_lowercase();
    let good: Vec<_> = POSITIVE.iter().copied().filter(|w| text.contains(w)).collect();
    let bad: Vec<_> = NEGATIVE.iter().copied().filter(|w| text.contains(w)).collect();
    let score = (3 + good.len() as i64 - 2 * bad.len() as i64).clamp(1, 5) as u64;
    (score, good.into_iter().chain(bad).collect())
}

/// Scores each review through a journaled call, keeps per-product counts in state.
struct ReviewScorer;

#[async_trait::async_trait]
impl Agent for ReviewScorer {
    async fn on_event(&self, event: &InputEvent, ctx: &mut EventContext) -> Result<(), ActionError> {
        let review = event.payload["review"].as_str().ok_or("event has no `review` text")?.to_string();
        let (score, reasons): (u64, Vec<String>) = ctx
            .durable("offline-model", async move {
                let (score, reasons) = offline_model_score(&review);
                Ok::<_, std::io::Error>((score, reasons.into_iter().map(String::from).collect()))
            })
            .await?;
        let (count, total) = ctx.state::<(u64, u64)>()?.unwrap_or((0, 0));
        ctx.set_state(&(count + 1, total + score))?;
        ctx.emit(&serde_json::json!({
            "product": event.key,
            "score": score,
            "reasons": reasons,
            "reviews_so_far": count + 1,
        }))?;
        Ok(())
    }
}

pub async fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let url = match args.store {
        Some(url) => url,
        None => format!("file://{}", std::env::current_dir()?.join("weir-data").display()),
    };
    let storage = Storage::from_url(&url)?;
    let log = EventLog::create(storage.clone(), args.partitions).await?;
    let events: Vec<LogEvent> = SAMPLE
        .lines()
        .map(|line| {
            let key = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["product"].as_str().map(String::from))
                .unwrap_or_else(|| "unknown".into());
            LogEvent { key, payload: line.as_bytes().to_vec().into() }
        })
        .collect();
    // The batch id makes the append idempotent: running the demo again adds nothing.
    log.append("demo-sample-reviews", &events).await?;
    say!("weir demo: {} sample reviews in the log at {url}", events.len());
    say!("model: built-in offline keyword scorer (no network; not a real LLM)\n");

    let engine = Engine::builder(storage.clone(), "review-demo", Arc::new(ReviewScorer))
        .settings(EngineSettings { journal_flush_window_ms: 5, ..Default::default() })
        .build()
        .await?;
    let report = engine.drain().await?;
    say!("this run: {} events processed in {} batches", report.events, report.batches);

    let mut per_product: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let (mut outputs, mut dead) = (0, Vec::new());
    for partition in 0..log.partitions() {
        let reader = CommittedReader::new(storage.clone(), "review-demo", partition)?;
        for output in reader.outputs().await? {
            outputs += 1;
            per_product.entry(output.key).or_default().push(output.payload["score"].as_u64().unwrap_or(0));
        }
        dead.extend(reader.dead_letters().await?);
    }
    say!("committed: {outputs} scored reviews, {} dead letters\n", dead.len());
    say!("{:<12} {:>7} {:>9}", "product", "reviews", "avg score");
    for (product, scores) in &per_product {
        let average = scores.iter().sum::<u64>() as f64 / scores.len() as f64;
        say!("{product:<12} {:>7} {average:>9.1}", scores.len());
    }
    for letter in &dead {
        say!("\ndead letter at {} (key {}): {}", letter.event, letter.key, letter.reason);
    }
    say!("\nRun it again: the append is idempotent and every review was committed once, so nothing changes.");
    Ok(())
}
