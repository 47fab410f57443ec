//! `weir trace`: what an agent did for an input event, as the tree of its committed spans
//! with timings, tokens and cost (`docs/observability.md`).

use serde_json::{Value, json};
use weir_engine::{CommittedReader, EventTrace, Position, Span, SpanId, SpanKind};

use crate::agents::AgentChoice;
use crate::dead_letters::parse_position;
use crate::error::{CliError, Result, write_out};
use crate::store::Store;

/// How traces are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// A tree per event.
    Tree,
    /// One JSON object per event: partition, key, event and its spans.
    Jsonl,
}

/// Options of `weir trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The key whose latest events to show.
    #[arg(long, required_unless_present_any = ["event", "export"])]
    key: Option<String>,
    /// Writes every committed trace still retained to this Parquet file, in the schema of
    /// the committed trace files, for DuckDB or Athena. Unlike a glob over the store's
    /// `trace/` folders, it holds no file of a commit that never happened.
    #[arg(long, conflicts_with_all = ["key", "event", "partition"])]
    export: Option<std::path::PathBuf>,
    /// One event, by its log position (`SEGMENT:INDEX`); its partition comes from --key or
    /// --partition.
    #[arg(long, value_parser = parse_position)]
    event: Option<Position>,
    /// The event's partition.
    #[arg(long)]
    partition: Option<u32>,
    /// How many of the key's latest events to show.
    #[arg(long, default_value_t = 1)]
    last: usize,
    /// How to show them.
    #[arg(long, value_enum, default_value = "tree")]
    format: TraceFormat,
}

/// Shows the chosen events' traces.
pub async fn run(args: TraceArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let log = store.log().await?;
    let agent = agent.name().await?;
    if let Some(path) = &args.export {
        let traces = crate::committed::traces(&log, &agent).await?;
        std::fs::write(path, weir_engine::traces_parquet(&traces)).map_err(|e| CliError::file(path, e))?;
        say!("{agent}: {} events' traces written to {}", traces.len(), path.display());
        return Ok(());
    }
    let partition = match (args.partition, &args.key) {
        (Some(partition), _) if partition < log.partitions() => partition,
        (Some(partition), _) => {
            return Err(CliError::Input(format!(
                "--partition {partition}: the log has {} partitions",
                log.partitions()
            )));
        }
        (None, Some(key)) => log.partition_of(key),
        (None, None) => return Err(CliError::Input("--event needs --key or --partition to find it".into())),
    };
    let reader = CommittedReader::new(log.storage().clone(), &agent, partition)?;
    let traces: Vec<EventTrace> = match (args.event, &args.key) {
        (Some(event), _) => {
            let trace = reader.trace(event).await?;
            vec![trace.ok_or_else(|| {
                CliError::Input(format!(
                    "{agent} has no committed trace of event {event} on partition {partition} (not processed yet, or past retention)"
                ))
            })?]
        }
        (None, Some(key)) => {
            let mut traces: Vec<EventTrace> = reader.traces().await?.into_iter().filter(|t| &t.key == key).collect();
            if traces.is_empty() {
                return Err(CliError::Input(format!("{agent} has no committed trace of key `{key}`")));
            }
            traces.drain(..traces.len().saturating_sub(args.last.max(1)));
            traces
        }
        (None, None) => unreachable!("clap requires --key, --event or --export"),
    };
    let text: String = match args.format {
        TraceFormat::Tree => traces.iter().map(|t| tree(partition, t)).collect::<Vec<_>>().join("\n"),
        TraceFormat::Jsonl => traces.iter().map(|t| format!("{}\n", jsonl(partition, t))).collect(),
    };
    write_out(text.as_bytes())
}

fn jsonl(partition: u32, trace: &EventTrace) -> Value {
    let spans: Vec<Value> = trace
        .spans
        .iter()
        .map(|s| {
            json!({
                "id": s.id.0,
                "parent": s.parent.map(|p| p.0),
                "kind": s.kind.as_str(),
                "name": s.name,
                "start_ms": s.start_ms,
                "duration_us": s.duration_us,
                "error": s.error,
                "usage": s.usage,
                "attributes": s.attributes,
            })
        })
        .collect();
    json!({"partition": partition, "key": trace.key, "event": trace.event.to_string(), "spans": spans})
}

/// The event's spans as a tree, children in the order they started.
pub fn tree(partition: u32, trace: &EventTrace) -> String {
    let root = &trace.spans[0];
    let tokens: (u64, u64) = trace
        .spans
        .iter()
        .filter_map(|s| s.usage.as_ref())
        .fold((0, 0), |(i, o), u| (i + u.input_tokens, o + u.output_tokens));
    let cost: Option<f64> = trace.spans.iter().filter_map(|s| s.usage.as_ref()?.cost).reduce(|a, b| a + b);
    let mut head = format!(
        "event {} of key {} (partition {partition})  {}  {}",
        trace.event,
        trace.key,
        outcome(root),
        duration(root.duration_us)
    );
    if let Some(attempts) = root.attributes.get("weir.attempts").and_then(Value::as_u64).filter(|&a| a > 1) {
        head.push_str(&format!("  {attempts} attempts"));
    }
    if tokens != (0, 0) {
        head.push_str(&format!("  tokens {} in / {} out", tokens.0, tokens.1));
    }
    if let Some(cost) = cost {
        head.push_str(&format!("  cost {cost:.6}"));
    }
    let mut text = head + "\n";
    if let Some(retries) = root.attributes.get("weir.retries").and_then(Value::as_array) {
        for (n, error) in retries.iter().enumerate() {
            text.push_str(&format!("  attempt {} failed: {}\n", n + 1, error.as_str().unwrap_or_default()));
        }
    }
    branch(&trace.spans, SpanId::ROOT, "", &mut text);
    text
}

fn branch(spans: &[Span], parent: SpanId, indent: &str, text: &mut String) {
    let children: Vec<&Span> = spans.iter().filter(|s| s.parent == Some(parent)).collect();
    for (n, span) in children.iter().enumerate() {
        let last = n + 1 == children.len();
        text.push_str(&format!("{indent}{}{}\n", if last { "└── " } else { "├── " }, line(span)));
        branch(spans, span.id, &format!("{indent}{}", if last { "    " } else { "│   " }), text);
    }
}

fn line(span: &Span) -> String {
    let mut line = format!("{} {}  {}", span.kind.as_str(), span.name, duration(span.duration_us));
    if let Some(usage) = &span.usage {
        line.push_str(&format!("  {} in / {} out", usage.input_tokens, usage.output_tokens));
        if let Some(cost) = usage.cost {
            line.push_str(&format!("  cost {cost:.6}"));
        }
    }
    if span.attributes.get("weir.replayed") == Some(&Value::Bool(true)) {
        line.push_str("  replayed");
    }
    if span.kind == SpanKind::Action
        && let Some(event_type) = span.attributes.get("weir.event.type").and_then(Value::as_str)
    {
        line.push_str(&format!("  on {event_type}"));
    }
    if let Some(error) = &span.error {
        line.push_str(&format!("  error: {}", crate::table::shorten(error, 100)));
    }
    line
}

fn outcome(root: &Span) -> String {
    match &root.error {
        None => "ok".into(),
        Some(error) => format!("dead-lettered: {}", crate::table::shorten(error, 100)),
    }
}

/// Microseconds as a person reads them.
pub fn duration(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}
