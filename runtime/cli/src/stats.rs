//! `weir stats`: what an agent did over its committed events: events, latency percentiles,
//! dead letters, and calls, tokens and cost per model, action and tool, from the trace.

use std::collections::BTreeMap;

use serde::Serialize;
use weir_engine::{EventTrace, Span, SpanKind};

use crate::agents::AgentChoice;
use crate::committed;
use crate::error::{Result, write_out};
use crate::store::Store;
use crate::table;
use crate::trace::duration;

/// How the statistics are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// Aligned tables.
    Table,
    /// One JSON object.
    Json,
}

/// Options of `weir stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Only events handled in this last stretch of time: `90s`, `15m`, `24h`, `7d`.
    #[arg(long, value_parser = parse_age)]
    since: Option<u64>,
    /// How to show them.
    #[arg(long, value_enum, default_value = "table")]
    format: StatsFormat,
}

/// What the chosen events did.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub events: u64,
    pub dead_letters: u64,
    /// Events that needed more than one attempt.
    pub retried: u64,
    /// The events' handling times.
    pub latency: Latency,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `None` when no call had a price.
    pub cost: Option<f64>,
    /// Model calls by model, at its provider's name.
    pub models: BTreeMap<String, Calls>,
    pub actions: BTreeMap<String, Calls>,
    pub tools: BTreeMap<String, Calls>,
}

/// Calls of one model, action or tool.
#[derive(Debug, Default, Serialize)]
pub struct Calls {
    pub calls: u64,
    /// Answered from the journal: no time or tokens spent again.
    pub replayed: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Option<f64>,
    /// Times of the calls made (not replayed).
    pub latency: Latency,
    #[serde(skip)]
    durations: Vec<u64>,
}

/// Percentiles of durations, in microseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latency {
    fn of(mut durations: Vec<u64>) -> Latency {
        durations.sort_unstable();
        let at = |q: f64| nearest_rank(&durations, q).unwrap_or(0);
        Latency { p50_us: at(0.5), p90_us: at(0.9), p99_us: at(0.99), max_us: durations.last().copied().unwrap_or(0) }
    }
}

/// The `q` quantile of `sorted` by nearest rank; `None` when it is empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let n = sorted.len();
    (n > 0).then(|| sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1])
}

/// Adds `b` to a cost that may be unknown.
fn add_cost(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

impl Calls {
    fn add(&mut self, span: &Span) {
        self.calls += 1;
        self.errors += u64::from(span.error.is_some());
        match span.attributes.get("weir.replayed").and_then(|v| v.as_bool()).unwrap_or(false) {
            true => self.replayed += 1,
            false => self.durations.push(span.duration_us),
        }
        if let Some(usage) = &span.usage {
            self.input_tokens += usage.input_tokens;
            self.output_tokens += usage.output_tokens;
            self.cost = add_cost(self.cost, usage.cost);
        }
    }

    fn finish(&mut self) {
        self.latency = Latency::of(std::mem::take(&mut self.durations));
    }
}

impl Stats {
    /// The statistics of `traces`.
    pub fn of<'a>(traces: impl IntoIterator<Item = &'a EventTrace>) -> Stats {
        let mut stats = Stats::default();
        let mut latencies = Vec::new();
        for trace in traces {
            let root = &trace.spans[0];
            stats.events += 1;
            stats.dead_letters += u64::from(root.error.is_some());
            stats.retried += u64::from(root.attributes.get("weir.attempts").and_then(|a| a.as_u64()).unwrap_or(1) > 1);
            latencies.push(root.duration_us);
            for span in &trace.spans[1..] {
                let calls = match span.kind {
                    SpanKind::Model => {
                        let usage = span.usage.as_ref();
                        stats.input_tokens += usage.map_or(0, |u| u.input_tokens);
                        stats.output_tokens += usage.map_or(0, |u| u.output_tokens);
                        stats.cost = add_cost(stats.cost, usage.and_then(|u| u.cost));
                        let model = usage.map_or_else(|| span.name.clone(), |u| u.model.clone());
                        stats.models.entry(model).or_default()
                    }
                    SpanKind::Action => stats.actions.entry(span.name.clone()).or_default(),
                    SpanKind::Tool => stats.tools.entry(span.name.clone()).or_default(),
                    SpanKind::Retrieval | SpanKind::Event => continue,
                };
                calls.add(span);
            }
        }
        stats.latency = Latency::of(latencies);
        for calls in stats.models.values_mut().chain(stats.actions.values_mut()).chain(stats.tools.values_mut()) {
            calls.finish();
        }
        stats
    }
}

/// Shows the statistics of the agent's committed events.
pub async fn run(args: StatsArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let log = store.log().await?;
    let agent = agent.name().await?;
    let traces = committed::traces_since(&log, &agent, args.since).await?;
    let stats = Stats::of(&traces);
    let text = match args.format {
        StatsFormat::Json => serde_json::to_string_pretty(&stats).expect("stats serialize") + "\n",
        StatsFormat::Table => render(&agent, &stats),
    };
    write_out(text.as_bytes())
}

fn render(agent: &str, stats: &Stats) -> String {
    let cost = |cost: Option<f64>| cost.map_or_else(|| "-".into(), |c| format!("{c:.6}"));
    let mut text = format!(
        "{agent}: {} events, {} dead letters, {} retried\nevent latency: p50 {}, p90 {}, p99 {}, max {}\ntokens: {} in, {} out; cost {}\n",
        stats.events,
        stats.dead_letters,
        stats.retried,
        duration(stats.latency.p50_us),
        duration(stats.latency.p90_us),
        duration(stats.latency.p99_us),
        duration(stats.latency.max_us),
        stats.input_tokens,
        stats.output_tokens,
        cost(stats.cost),
    );
    for (title, group) in [("model", &stats.models), ("action", &stats.actions), ("tool", &stats.tools)] {
        if group.is_empty() {
            continue;
        }
        let rows: Vec<[String; 9]> = group
            .iter()
            .map(|(name, c)| {
                [
                    name.clone(),
                    c.calls.to_string(),
                    c.replayed.to_string(),
                    c.errors.to_string(),
                    c.input_tokens.to_string(),
                    c.output_tokens.to_string(),
                    cost(c.cost),
                    duration(c.latency.p50_us),
                    duration(c.latency.p99_us),
                ]
            })
            .collect();
        let header = [title, "calls", "replayed", "errors", "tokens in", "tokens out", "cost", "p50", "p99"];
        text.push('\n');
        text.push_str(&table::render(header, &rows, &[1, 2, 3, 4, 5, 6, 7, 8]));
    }
    text
}

/// An age such as `90s`, `15m`, `24h` or `7d`, in milliseconds.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` is not an age: write a number and s, m, h or d (`24h`)")),
    };
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not an age: write a number first (`24h`)"))?;
    Ok(number.saturating_mul(unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_nearest_rank() {
        let latency = Latency::of((1..=100).collect());
        assert_eq!((latency.p50_us, latency.p90_us, latency.p99_us, latency.max_us), (50, 90, 99, 100));
        assert_eq!(Latency::of(vec![]).max_us, 0);
    }

    #[test]
    fn ages_name_their_unit() {
        assert_eq!(parse_age("15m"), Ok(900_000));
        assert!(parse_age("15").unwrap_err().contains("s, m, h or d"));
        assert!(parse_age("h").is_err());
    }
}
