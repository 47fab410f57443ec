//! `weir cost`: what an agent's committed events cost in model tokens, at the prices its
//! spans recorded or at a price table given here, and apart from it what its functions'
//! object-store requests and time cost at AWS's prices (`docs/observability.md`, "Cost").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_engine::{AwsPrices, Clock, InfrastructureCost, InvocationUsage, SpanKind, SystemClock, read_usage};
use weir_models::Price;

use crate::agents::AgentChoice;
use crate::committed;
use crate::error::{CliError, Result};
use crate::shadow::Shadow;
use crate::store::Store;
use crate::table;

/// Options of `weir cost`.
#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// Only events handled in this last stretch of time: `90s`, `15m`, `24h`, `7d`.
    #[arg(long, value_parser = crate::stats::parse_age)]
    since: Option<u64>,
    /// A price table, JSON or YAML: `{"gpt-4o-mini": {"input_per_million": 0.15,
    /// "output_per_million": 0.6}}`, by the model's name at its provider. It prices every
    /// call of the models it names, whatever price the agent recorded.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// AWS's prices, JSON or YAML, over the defaults (us-east-1, S3 Standard, Lambda on
    /// x86_64): `{"s3": {"put_per_thousand": 0.005, "list_per_thousand": 0.005,
    /// "get_per_thousand": 0.0004, "delete_per_thousand": 0}, "lambda": {"gb_second":
    /// 0.0000166667, "per_million_requests": 0.2, "memory_mb": 1024}}`; `memory_mb` is
    /// assumed for invocations that ran outside Lambda (`weir run`).
    #[arg(long)]
    aws_prices: Option<PathBuf>,
    /// A replay's shadow (`weir replay --shadow`): its cost instead of production's, from
    /// its own committed events and the usage records of the invocations that ran it, kept
    /// in its namespace apart from production's.
    #[arg(long)]
    shadow: Option<String>,
}

/// The functions whose records count the events an agent processed (ingest's count the
/// same events again, as appended).
const PROCESSING: [&str; 2] = ["process", "run"];

/// Tokens and cost of one model.
#[derive(Debug, Default)]
struct ModelCost {
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    /// `None` when no call of it had a price.
    cost: Option<f64>,
}

/// Prints the cost of the chosen events per model, and in all.
pub async fn run(args: CostArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let prices: BTreeMap<String, Price> = match &args.prices {
        Some(path) => read_table(path, "a price table")?,
        None => BTreeMap::new(),
    };
    let aws_prices: AwsPrices = match &args.aws_prices {
        Some(path) => read_table(path, "an AWS price table")?,
        None => AwsPrices::default(),
    };
    let log = store.log().await?;
    let (root, agent, label) = match &args.shadow {
        Some(name) => {
            let shadow = Shadow::open(&store, name)?;
            let agent = shadow.existing_plan().await?.production_agent;
            let label = format!("{agent} (shadow {name})");
            (shadow.storage, agent, label)
        }
        None => {
            let agent = agent.name().await?;
            (log.storage().clone(), agent.clone(), agent)
        }
    };
    let chosen = committed::traces_since_in(&root, log.partitions(), &agent, args.since).await?;
    let mut models: BTreeMap<String, ModelCost> = BTreeMap::new();
    for span in chosen.iter().flat_map(|t| &t.spans).filter(|s| s.kind == SpanKind::Model) {
        let Some(usage) = &span.usage else { continue };
        let model = models.entry(usage.model.clone()).or_default();
        model.calls += 1;
        model.input_tokens += usage.input_tokens;
        model.output_tokens += usage.output_tokens;
        let tokens = weir_models::Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens };
        // A call through the provider's batch API costs the batch price (docs/batch-calls.md).
        let batch = span.attributes.get(weir_agent::BATCH_ATTRIBUTE).is_some_and(|b| b == true);
        let price = |price: &Price| if batch { price.batch() } else { *price };
        let cost = prices.get(&usage.model).map(|p| price(p).cost(tokens)).or(usage.cost);
        if let Some(cost) = cost {
            model.cost = Some(model.cost.unwrap_or(0.0) + cost);
        }
    }
    let unpriced: Vec<&str> = models.iter().filter(|(_, m)| m.cost.is_none()).map(|(name, _)| name.as_str()).collect();
    let total = models.values().filter_map(|m| m.cost).fold(0.0, |total, cost| total + cost);
    let rows: Vec<[String; 5]> = models
        .iter()
        .map(|(name, m)| {
            let cost = m.cost.map_or_else(|| "no price".into(), |c| format!("{c:.6}"));
            [name.clone(), m.calls.to_string(), m.input_tokens.to_string(), m.output_tokens.to_string(), cost]
        })
        .collect();
    let mut text = format!("{label}: {} events\n", chosen.len());
    if !rows.is_empty() {
        text.push_str(&table::render(["model", "calls", "tokens in", "tokens out", "cost"], &rows, &[1, 2, 3, 4]));
    }
    text.push_str(&format!("model cost: {total:.6}"));
    if !unpriced.is_empty() {
        text.push_str(&format!(" (without {}: give their prices with --prices)", unpriced.join(", ")));
    }
    let per_million = match chosen.len() {
        0 => String::new(),
        n => format!("; {:.2} per million events", total / n as f64 * 1e6),
    };
    text.push_str(&per_million);
    let since_ms = args.since.map(|age| SystemClock.now_ms().saturating_sub(age));
    let usage = read_usage(&root, &agent, since_ms).await?;
    text.push_str("\n\n");
    text.push_str(&infrastructure(&usage, &aws_prices));
    say!("{text}");
    Ok(())
}

/// A JSON or YAML table at `path`, refused with its error when it is not `what`.
fn read_table<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::file(path, e))?;
    serde_yaml_ng::from_str(&text).map_err(|e| CliError::Input(format!("{}: not {what}: {e}", path.display())))
}

/// The functions' requests and time per function and in all, and their cost at `prices`.
fn infrastructure(usage: &[InvocationUsage], prices: &AwsPrices) -> String {
    let mut functions: BTreeMap<&str, Vec<&InvocationUsage>> = BTreeMap::new();
    for record in usage {
        functions.entry(record.function.as_str()).or_default().push(record);
    }
    let rows: Vec<[String; 11]> = functions
        .iter()
        .map(|(function, records)| {
            let cost = InfrastructureCost::of(records.iter().copied(), prices);
            let r = cost.requests;
            [
                function.to_string(),
                cost.invocations.to_string(),
                cost.events.to_string(),
                r.put.to_string(),
                r.get.to_string(),
                r.head.to_string(),
                r.list.to_string(),
                r.delete.to_string(),
                format!("{:.3}", cost.gb_seconds),
                format!("{:.8}", cost.total()),
                records.iter().filter(|r| r.cold_start).count().to_string(),
            ]
        })
        .collect();
    let all = InfrastructureCost::of(usage, prices);
    let mut text = String::new();
    if !rows.is_empty() {
        let header = [
            "function",
            "invocations",
            "events",
            "PUT",
            "GET",
            "HEAD",
            "LIST",
            "DELETE",
            "GB-s",
            "cost",
            "cold starts",
        ];
        text.push_str(&table::render(header, &rows, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    }
    text.push_str(&format!(
        "infrastructure cost: {:.8} (S3 requests {:.8}, Lambda time {:.8}, Lambda requests {:.8})",
        all.total(),
        all.s3,
        all.lambda_compute,
        all.lambda_requests
    ));
    let processed: u64 = usage.iter().filter(|u| PROCESSING.contains(&u.function.as_str())).map(|u| u.events).sum();
    if processed > 0 {
        text.push_str(&format!("; {:.2} per million events", all.total() / processed as f64 * 1e6));
    }
    if usage.is_empty() {
        text.push_str(" (no usage records: they are written by the functions and `weir run`)");
    }
    text
}
