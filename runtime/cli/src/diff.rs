//! `weir diff`: a shadow's results beside production's, event by event: outputs changed and
//! the fields that differ, dead letters, tool calls added or dropped, and how numeric
//! fields drifted (`docs/replay.md`, "Diff").

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;
use weir_engine::{EventTrace, SpanKind};

use crate::error::{CliError, Result, write_out};
use crate::shadow::{EventResult, Shadow, production_results};
use crate::store::Store;
use crate::table;

/// Changed events listed in the terminal, at most.
const TABLE_ROWS: usize = 50;

/// Options of `weir diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The shadow to compare with production (made by `weir replay --shadow`).
    #[arg(long)]
    shadow: String,
    /// How to show the comparison.
    #[arg(long, value_enum, default_value = "table")]
    format: DiffFormat,
    /// Also writes a self-contained HTML report, with plots, to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DiffFormat {
    /// Aligned text.
    Table,
    /// One JSON object.
    Json,
}

/// The comparison.
#[derive(Debug, Default, Serialize)]
pub struct Diff {
    /// The shadow compared.
    pub shadow: String,
    /// Events the shadow decided and production did too.
    pub events: usize,
    /// Events whose outputs, dead letter or tool calls are the same.
    pub unchanged: usize,
    /// Events production decided that the shadow has not (yet).
    pub missing: usize,
    /// Events that differ.
    pub changed: Vec<EventChange>,
    /// Per numeric output field, its values before and after.
    pub drift: BTreeMap<String, Drift>,
}

/// How one event's results differ.
#[derive(Debug, Serialize)]
pub struct EventChange {
    /// `PARTITION/SEGMENT:INDEX`.
    pub event: String,
    pub key: String,
    /// Fields whose values differ: path, before, after (`null` where absent).
    pub fields: Vec<FieldChange>,
    /// Outputs before and after, when their number changed.
    pub outputs: Option<(usize, usize)>,
    /// The dead letter's reason before and after, when one side has one.
    pub dead_letter: Option<(Option<String>, Option<String>)>,
    /// Tools called in the shadow and not in production.
    pub tools_added: Vec<String>,
    /// Tools called in production and not in the shadow.
    pub tools_dropped: Vec<String>,
}

/// A field's change.
#[derive(Debug, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Value,
    pub after: Value,
}

/// A numeric field's values over the compared events.
#[derive(Debug, Default, Serialize)]
pub struct Drift {
    pub before: Summary,
    pub after: Summary,
    /// Events whose value changed.
    pub moved: usize,
    #[serde(skip)]
    values: (Vec<f64>, Vec<f64>),
}

/// A distribution, summarised.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Summary::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| crate::stats::nearest_rank(&sorted, q).unwrap_or_default();
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        Summary { count: sorted.len(), mean, p10: rank(0.1), p50: rank(0.5), p90: rank(0.9) }
    }
}

/// Compares and prints; writes the HTML report if asked.
/// The shadow's plan names the agent it replays: `--agent` is not needed.
pub async fn run(args: DiffArgs, store: Store) -> Result<()> {
    let shadow = Shadow::open(&store, &args.shadow)?;
    let plan = shadow.existing_plan().await?;
    let (before, after) = futures::try_join!(production_results(&store, &plan), shadow.results(&plan))?;
    let diff = compare(&args.shadow, &before, &after);
    if let Some(path) = &args.html {
        std::fs::write(path, crate::diff_report::html(&diff)).map_err(|e| CliError::file(path, e))?;
    }
    match args.format {
        DiffFormat::Json => {
            let mut json = serde_json::to_vec_pretty(&diff).expect("the diff serializes");
            json.push(b'\n');
            write_out(&json)
        }
        DiffFormat::Table => write_out(render(&diff).as_bytes()),
    }
}

/// Pairs the two sides' results by event.
pub fn compare(
    shadow: &str,
    before: &BTreeMap<(u32, weir_engine::Position), EventResult>,
    after: &BTreeMap<(u32, weir_engine::Position), EventResult>,
) -> Diff {
    let mut diff = Diff { shadow: shadow.to_string(), ..Default::default() };
    for (at, production) in before {
        let Some(replayed) = after.get(at) else {
            diff.missing += 1;
            continue;
        };
        diff.events += 1;
        let (old, new) = (leaves(&production.outputs), leaves(&replayed.outputs));
        for path in old.keys().chain(new.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (x, y) = (old.get(path).and_then(Value::as_f64), new.get(path).and_then(Value::as_f64));
            if x.is_some() || y.is_some() {
                let drift = diff.drift.entry(path.clone()).or_default();
                drift.values.0.extend(x);
                drift.values.1.extend(y);
                drift.moved += (x != y) as usize;
            }
        }
        let fields: Vec<FieldChange> = old
            .keys()
            .chain(new.keys().filter(|k| !old.contains_key(*k)))
            .filter(|path| old.get(*path) != new.get(*path))
            .map(|path| FieldChange {
                path: path.clone(),
                before: old.get(path).cloned().unwrap_or(Value::Null),
                after: new.get(path).cloned().unwrap_or(Value::Null),
            })
            .collect();
        let counts = (production.outputs.len(), replayed.outputs.len());
        let dead = (production.dead_letter.clone(), replayed.dead_letter.clone());
        let (tools_before, tools_after) = (tools(&production.trace), tools(&replayed.trace));
        let tools_added = multiset_minus(&tools_after, &tools_before);
        let tools_dropped = multiset_minus(&tools_before, &tools_after);
        let changed = !fields.is_empty()
            || counts.0 != counts.1
            || dead.0.is_some() != dead.1.is_some()
            || !tools_added.is_empty()
            || !tools_dropped.is_empty();
        if !changed {
            diff.unchanged += 1;
            continue;
        }
        diff.changed.push(EventChange {
            event: format!("{}/{}", at.0, at.1),
            key: production.key.clone(),
            fields,
            outputs: (counts.0 != counts.1).then_some(counts),
            dead_letter: (dead.0.is_some() || dead.1.is_some()).then_some(dead),
            tools_added,
            tools_dropped,
        });
    }
    for drift in diff.drift.values_mut() {
        drift.before = Summary::of(&drift.values.0);
        drift.after = Summary::of(&drift.values.1);
    }
    diff
}

impl Drift {
    /// The values before and after, for plots.
    pub fn values(&self) -> (&[f64], &[f64]) {
        (&self.values.0, &self.values.1)
    }
}

/// Every leaf of the outputs by its path: `score`, `reasons[0]`, prefixed by the output's
/// index (`[1].score`) when an event has more than one.
fn leaves(outputs: &[Value]) -> BTreeMap<String, Value> {
    let mut leaves = BTreeMap::new();
    for (i, output) in outputs.iter().enumerate() {
        let prefix = if outputs.len() > 1 { format!("[{i}]") } else { String::new() };
        flatten(output, prefix, &mut leaves);
    }
    leaves
}

fn flatten(value: &Value, path: String, leaves: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(fields) if !fields.is_empty() => {
            for (name, inner) in fields {
                let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                flatten(inner, path, leaves);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, inner) in items.iter().enumerate() {
                flatten(inner, format!("{path}[{i}]"), leaves);
            }
        }
        leaf => {
            leaves.insert(if path.is_empty() { "(output)".into() } else { path }, leaf.clone());
        }
    }
}

/// The tools a trace called, sorted.
fn tools(trace: &Option<EventTrace>) -> Vec<String> {
    let spans = trace.iter().flat_map(|t| &t.spans);
    let mut names: Vec<String> = spans.filter(|s| s.kind == SpanKind::Tool).map(|s| s.name.clone()).collect();
    names.sort();
    names
}

/// `a` less `b`, counting repeats; both sorted.
fn multiset_minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: Vec<&String> = b.iter().collect();
    let mut out = Vec::new();
    for name in a {
        match left.iter().position(|x| *x == name) {
            Some(i) => {
                left.remove(i);
            }
            None => out.push(name.clone()),
        }
    }
    out
}

/// The terminal's view.
fn render(diff: &Diff) -> String {
    let mut text = format!(
        "shadow {}: {} events compared, {} unchanged, {} changed{}\n",
        diff.shadow,
        diff.events,
        diff.unchanged,
        diff.changed.len(),
        match diff.missing {
            0 => String::new(),
            n => format!(", {n} not replayed (yet)"),
        }
    );
    let moved: Vec<_> = diff.drift.iter().filter(|(_, d)| d.moved > 0).collect();
    if !moved.is_empty() {
        text.push_str("\nnumeric drift\n");
        let rows: Vec<[String; 6]> = moved
            .iter()
            .map(|(path, d)| {
                let pair = |a: f64, b: f64| format!("{} -> {}", number(a), number(b));
                [
                    (*path).clone(),
                    d.moved.to_string(),
                    pair(d.before.mean, d.after.mean),
                    pair(d.before.p10, d.after.p10),
                    pair(d.before.p50, d.after.p50),
                    pair(d.before.p90, d.after.p90),
                ]
            })
            .collect();
        text.push_str(&table::render(["field", "moved", "mean", "p10", "p50", "p90"], &rows, &[1]));
    }
    if !diff.changed.is_empty() {
        text.push_str("\nchanged events\n");
        let rows: Vec<[String; 3]> =
            diff.changed.iter().take(TABLE_ROWS).map(|c| [c.event.clone(), c.key.clone(), describe(c)]).collect();
        text.push_str(&table::render(["event", "key", "what changed"], &rows, &[]));
        if diff.changed.len() > TABLE_ROWS {
            text.push_str(&format!("… and {} more (--format json lists all)\n", diff.changed.len() - TABLE_ROWS));
        }
    }
    text
}

/// One line on what changed for an event.
pub fn describe(change: &EventChange) -> String {
    let mut parts: Vec<String> = change
        .fields
        .iter()
        .map(|f| {
            format!(
                "{}: {} -> {}",
                f.path,
                table::shorten(&f.before.to_string(), 40),
                table::shorten(&f.after.to_string(), 40)
            )
        })
        .collect();
    if let Some((before, after)) = change.outputs {
        parts.push(format!("outputs: {before} -> {after}"));
    }
    match &change.dead_letter {
        Some((None, Some(reason))) => parts.push(format!("now dead-lettered: {}", table::shorten(reason, 60))),
        Some((Some(_), None)) => parts.push("no longer dead-lettered".into()),
        _ => {}
    }
    if !change.tools_added.is_empty() {
        parts.push(format!("tools added: {}", change.tools_added.join(", ")));
    }
    if !change.tools_dropped.is_empty() {
        parts.push(format!("tools dropped: {}", change.tools_dropped.join(", ")));
    }
    parts.join("; ")
}

/// A number as short as it is exact to three decimals.
pub fn number(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_engine::Position;

    fn result(outputs: Vec<Value>) -> EventResult {
        EventResult { key: "k".into(), outputs, ..Default::default() }
    }

    #[test]
    fn changed_fields_and_drift_are_reported_per_event() {
        let at = |i| (0, Position::new(0, i));
        let before = BTreeMap::from([
            (at(0), result(vec![json!({"score": 4, "reasons": ["fast"]})])),
            (at(1), result(vec![json!({"score": 2, "reasons": ["late"]})])),
            (at(2), result(vec![json!({"score": 5})])),
        ]);
        let after = BTreeMap::from([
            (at(0), result(vec![json!({"score": 4, "reasons": ["fast"]})])),
            (at(1), result(vec![json!({"score": 1, "reasons": ["late"]})])),
        ]);
        let diff = compare("s", &before, &after);
        assert_eq!((diff.events, diff.unchanged, diff.missing), (2, 1, 1));
        assert_eq!(diff.changed.len(), 1);
        assert_eq!(diff.changed[0].event, "0/0:1");
        assert_eq!(describe(&diff.changed[0]), "score: 2 -> 1");
        let score = &diff.drift["score"];
        assert_eq!((score.moved, score.before.mean, score.after.mean), (1, 3.0, 2.5));
    }

    #[test]
    fn tools_added_and_dropped_count_repeats() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(multiset_minus(&names(&["a", "a", "b"]), &names(&["a"])), names(&["a", "b"]));
    }
}
