//! `weir cost`: what an agent's committed events cost in model tokens, at the prices its
//! spans recorded or at a price table given here (`docs/observability.md`, "Cost").

use std::collections::BTreeMap;
use std::path::PathBuf;

use weir_engine::SpanKind;
use weir_models::Price;

use crate::agents::AgentChoice;
use crate::committed;
use crate::error::{CliError, Result};
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
}

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
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| CliError::file(path, e))?;
            serde_yaml_ng::from_str(&text)
                .map_err(|e| CliError::Input(format!("{}: not a price table: {e}", path.display())))?
        }
        None => BTreeMap::new(),
    };
    let log = store.log().await?;
    let agent = agent.name().await?;
    let chosen = committed::traces_since(&log, &agent, args.since).await?;
    let mut models: BTreeMap<String, ModelCost> = BTreeMap::new();
    for span in chosen.iter().flat_map(|t| &t.spans).filter(|s| s.kind == SpanKind::Model) {
        let Some(usage) = &span.usage else { continue };
        let model = models.entry(usage.model.clone()).or_default();
        model.calls += 1;
        model.input_tokens += usage.input_tokens;
        model.output_tokens += usage.output_tokens;
        let tokens = weir_models::Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens };
        let cost = prices.get(&usage.model).map(|price| price.cost(tokens)).or(usage.cost);
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
    let mut text = format!("{agent}: {} events\n", chosen.len());
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
    say!("{text}{per_million}");
    Ok(())
}
