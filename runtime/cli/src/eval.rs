//! `weir eval`: runs versions of an agent over a dataset of cases with expectations, scores
//! each case, compares the candidate with a baseline, and fails when it regresses
//! (`docs/replay.md`, "Eval").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_engine::{CommittedReader, Engine, EventLog, LogEvent, SpanKind, Storage};

use crate::agents::{AgentChoice, LoadedAgent};
use crate::error::{CliError, Result, write_out};
use crate::judge::{self, Grade, Grading};
use crate::table;

/// Options of `weir eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The dataset: JSON lines of cases, `{"id", "key", "input", "expect"}`.
    dataset: PathBuf,
    /// A version to compare the --agent (the candidate) with: a built-in agent's name or a
    /// declarative agent file.
    #[arg(long)]
    baseline: Option<String>,
    /// A rubric the judge grades every case's output against; a case's own `expect.judge`
    /// takes its place. The judge is the model the environment configures.
    #[arg(long)]
    rubric: Option<String>,
    /// The lowest judge score that passes, from 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    judge_pass: f64,
    /// The candidate fails below this pass rate, from 0 to 1 [default: 1 without a
    /// baseline, 0 with one].
    #[arg(long)]
    min_pass: Option<f64>,
    /// With a baseline, the candidate fails when its pass rate is below the baseline's by
    /// more than this.
    #[arg(long, default_value_t = 0.0)]
    max_regression: f64,
    /// How to show the report.
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum EvalFormat {
    /// Aligned text.
    Table,
    /// One JSON object.
    Json,
}

/// One line of the dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseLine {
    id: Option<String>,
    key: Option<String>,
    input: Value,
    #[serde(default)]
    expect: Expect,
}

/// What a case's output must be.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Expect {
    /// Fields (dot paths, `a.b[0]`) equal to these values.
    equals: BTreeMap<String, Value>,
    /// Numeric fields within a tolerance: path to `[value, tolerance]`.
    within: BTreeMap<String, (f64, f64)>,
    /// A JSON Schema the output is valid against.
    schema: Option<Value>,
    /// A rubric the judge grades the output against.
    judge: Option<String>,
}

/// A case, checked.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    key: String,
    input: Value,
    expect: Expect,
    schema: Option<Arc<jsonschema::Validator>>,
}

/// How one version did on one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub passed: bool,
    /// Why it failed: one line a check.
    pub failures: Vec<String>,
    /// The judge's grade, when the case was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<Grade>,
    pub output: Value,
    pub latency_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: f64,
}

/// How one version did over the dataset.
#[derive(Debug, Serialize)]
pub struct VersionReport {
    /// The version as `--agent` or `--baseline` named it.
    pub agent: String,
    pub passed: usize,
    pub cases: usize,
    pub pass_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge_mean: Option<f64>,
    pub latency_p50_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: f64,
    pub results: Vec<CaseResult>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub candidate: VersionReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<VersionReport>,
    /// Why the candidate fails the gate; `None`: it passes.
    pub verdict: Option<String>,
}

/// Runs the versions, prints the report, and fails when the candidate does.
pub async fn run(args: EvalArgs, agent: AgentChoice) -> Result<()> {
    for (flag, value) in [
        ("--judge-pass", Some(args.judge_pass)),
        ("--min-pass", args.min_pass),
        ("--max-regression", Some(args.max_regression)),
    ] {
        if let Some(value) = value.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(CliError::Input(format!("{flag} {value}: give a fraction from 0 to 1")));
        }
    }
    let cases = read_dataset(&args.dataset)?;
    let judge = match cases.iter().any(|c| c.expect.judge.is_some()) || args.rubric.is_some() {
        true => Some(judge_model()?),
        false => None,
    };
    let baseline = match &args.baseline {
        Some(baseline) => {
            let choice = AgentChoice::parse(baseline)?;
            Some((choice.label(), choice.load().await?))
        }
        None => None,
    };
    let candidate = (agent.label(), agent.load().await?);
    let run = |(label, version): (String, LoadedAgent)| {
        evaluate(label, version, &cases, args.rubric.as_deref(), args.judge_pass, judge.clone())
    };
    let candidate = run(candidate).await?;
    let baseline = match baseline {
        Some(baseline) => Some(run(baseline).await?),
        None => None,
    };
    let min_pass = args.min_pass.unwrap_or(if baseline.is_some() { 0.0 } else { 1.0 });
    let verdict = verdict(&candidate, baseline.as_ref(), min_pass, args.max_regression);
    let report = EvalReport { candidate, baseline, verdict };
    match args.format {
        EvalFormat::Json => {
            let mut json = serde_json::to_vec_pretty(&report).expect("the report serializes");
            json.push(b'\n');
            write_out(&json)?;
        }
        EvalFormat::Table => write_out(render(&report).as_bytes())?,
    }
    match report.verdict {
        Some(why) => Err(CliError::Regressed(why)),
        None => Ok(()),
    }
}

/// The dataset's cases; a line that is not a case is an error naming it.
fn read_dataset(path: &Path) -> Result<Vec<Case>> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::file(path, e))?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |why: String| CliError::Input(format!("{}: line {}: {why}", path.display(), i + 1));
        let line: CaseLine = serde_json::from_str(line).map_err(|e| bad(format!("not a case: {e}")))?;
        let id = line.id.unwrap_or_else(|| format!("case-{}", i + 1));
        let schema = match &line.expect.schema {
            Some(schema) => Some(Arc::new(
                jsonschema::validator_for(schema)
                    .map_err(|e| bad(format!("`expect.schema` is not a JSON Schema: {e}")))?,
            )),
            None => None,
        };
        let key = line.key.unwrap_or_else(|| id.clone());
        cases.push(Case { id, key, input: line.input, expect: line.expect, schema });
    }
    if cases.is_empty() {
        return Err(CliError::Input(format!("{}: no cases", path.display())));
    }
    Ok(cases)
}

/// The judge's model: the one the environment configures.
fn judge_model() -> Result<Arc<dyn weir_models::ChatModel>> {
    let env = |name: &str| std::env::var(name).ok();
    let config = weir_models::ModelConfig::from_environment(&env).map_err(|e| CliError::Input(e.to_string()))?;
    let config = config.ok_or_else(|| {
        CliError::Input(
            "the cases need a judge, and no model is configured for it: set WEIR_MODEL_PROVIDER (openai, anthropic, ollama) and its key"
                .into(),
        )
    })?;
    config.build_with_env(&env).map_err(|e| CliError::Input(format!("the judge's model: {e}")))
}

/// What an agent committed for each of a list of inputs, run through the engine in a store
/// of their own: outputs, dead letter, and the trace's latency, tokens and cost.
#[derive(Debug, Default, Clone)]
struct Handled {
    outputs: Vec<Value>,
    dead_letter: Option<String>,
    latency_ms: f64,
    input_tokens: u64,
    output_tokens: u64,
    cost: f64,
}

/// Runs `agent` over `inputs` (key and payload each), in order per key, in a store in
/// memory: the ordinary engine, so every call is journaled.
async fn handle(name: &str, agent: Arc<dyn weir_engine::Agent>, inputs: &[(String, Value)]) -> Result<Vec<Handled>> {
    let storage = Storage::from_url("memory://")?;
    // One partition: the i-th input is the i-th event.
    let log = EventLog::create(storage.clone(), 1).await?;
    let events: Vec<LogEvent> = inputs.iter().map(|(key, input)| LogEvent::json(key, input)).collect();
    log.append("eval", &events).await?;
    Engine::builder(storage.clone(), name, agent).build()?.drain().await?;
    let reader = CommittedReader::new(storage, name, 0)?;
    let (outputs, dead, traces) = futures::try_join!(reader.outputs(), reader.dead_letters(), reader.traces())?;
    let mut handled = vec![Handled::default(); inputs.len()];
    let slot = |position: weir_engine::Position| position.index as usize;
    for output in outputs {
        handled[slot(output.event)].outputs.push(output.payload);
    }
    for dead in dead {
        handled[slot(dead.event)].dead_letter = Some(dead.reason);
    }
    for trace in traces {
        let case = &mut handled[slot(trace.event)];
        case.latency_ms = trace.spans[0].duration_us as f64 / 1000.0;
        for usage in trace.spans.iter().filter(|s| s.kind == SpanKind::Model).filter_map(|s| s.usage.as_ref()) {
            case.input_tokens += usage.input_tokens;
            case.output_tokens += usage.output_tokens;
            case.cost += usage.cost.unwrap_or(0.0);
        }
    }
    Ok(handled)
}

/// Runs one version over the cases and scores them.
async fn evaluate(
    label: String,
    version: LoadedAgent,
    cases: &[Case],
    rubric: Option<&str>,
    judge_pass: f64,
    judge: Option<Arc<dyn weir_models::ChatModel>>,
) -> Result<VersionReport> {
    let inputs: Vec<(String, Value)> = cases.iter().map(|c| (c.key.clone(), c.input.clone())).collect();
    let handled = handle(&version.name, version.agent, &inputs).await?;
    let mut results: Vec<CaseResult> = cases.iter().zip(&handled).map(|(case, handled)| check(case, handled)).collect();

    // The judge grades every case that has a rubric and an output, in one run of its own.
    let judged: Vec<(usize, String)> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c.expect.judge.clone().or(rubric.map(str::to_string))?)))
        .collect();
    if let Some(model) = judge.filter(|_| !judged.is_empty()) {
        let gradings: Vec<(String, Value)> = judged
            .iter()
            .map(|(i, rubric)| {
                let grading = Grading {
                    rubric: rubric.clone(),
                    input: cases[*i].input.clone(),
                    output: results[*i].output.clone(),
                };
                (cases[*i].key.clone(), serde_json::to_value(grading).expect("a grading serializes"))
            })
            .collect();
        let judge = judge::agent(model).map_err(|e| CliError::Input(format!("the judge: {e}")))?;
        let grades = handle("judge", Arc::new(judge), &gradings).await?;
        for ((i, _), graded) in judged.iter().zip(grades) {
            let result = &mut results[*i];
            let grade = graded.outputs.first().and_then(|g| serde_json::from_value::<Grade>(g.clone()).ok());
            match grade {
                Some(grade) if grade.score < judge_pass => {
                    result.failures.push(format!("judge: {} < {judge_pass}: {}", grade.score, grade.reason));
                    result.judge = Some(grade);
                }
                Some(grade) => result.judge = Some(grade),
                None => result.failures.push(format!(
                    "judge: no grade ({})",
                    graded.dead_letter.as_deref().unwrap_or("the judge answered nothing")
                )),
            }
            result.passed = result.failures.is_empty();
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let grades: Vec<f64> = results.iter().filter_map(|r| r.judge.as_ref().map(|g| g.score)).collect();
    let mut latencies: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    Ok(VersionReport {
        agent: label,
        passed,
        cases: results.len(),
        pass_rate: passed as f64 / results.len() as f64,
        judge_mean: (!grades.is_empty()).then(|| grades.iter().sum::<f64>() / grades.len() as f64),
        latency_p50_ms: crate::stats::nearest_rank(&latencies, 0.5).unwrap_or_default(),
        input_tokens: results.iter().map(|r| r.input_tokens).sum(),
        output_tokens: results.iter().map(|r| r.output_tokens).sum(),
        cost: results.iter().map(|r| r.cost).sum(),
        results,
    })
}

/// A case's result from what the version committed, all checks but the judge.
fn check(case: &Case, handled: &Handled) -> CaseResult {
    let output = match handled.outputs.as_slice() {
        [] => Value::Null,
        [one] => one.clone(),
        many => Value::Array(many.to_vec()),
    };
    let mut failures = Vec::new();
    if let Some(reason) = &handled.dead_letter {
        failures.push(format!("dead-lettered: {reason}"));
    } else if handled.outputs.is_empty() {
        failures.push("no output".into());
    }
    if failures.is_empty() {
        for (path, expected) in &case.expect.equals {
            match lookup(&output, path) {
                Some(actual) if actual == expected => {}
                actual => failures.push(format!("{path}: expected {expected}, got {}", shown(actual))),
            }
        }
        for (path, (expected, tolerance)) in &case.expect.within {
            let actual = lookup(&output, path);
            match actual.and_then(Value::as_f64) {
                Some(x) if (x - expected).abs() <= *tolerance => {}
                _ => failures.push(format!("{path}: expected {expected} ± {tolerance}, got {}", shown(actual))),
            }
        }
        if let Some(schema) = &case.schema {
            failures.extend(schema.iter_errors(&output).map(|e| format!("schema: {e} at `{}`", e.instance_path())));
        }
    }
    CaseResult {
        id: case.id.clone(),
        passed: failures.is_empty(),
        failures,
        judge: None,
        output,
        latency_ms: handled.latency_ms,
        input_tokens: handled.input_tokens,
        output_tokens: handled.output_tokens,
        cost: handled.cost,
    }
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".into(), Value::to_string)
}

/// The value at a dot path (`a.b[0].c`) in `value`.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut at = value;
    for part in path.split('.') {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            at = at.get(name)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            at = at.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(at)
}

/// Why the candidate fails the gate, if it does.
fn verdict(
    candidate: &VersionReport,
    baseline: Option<&VersionReport>,
    min_pass: f64,
    max_regression: f64,
) -> Option<String> {
    let failing = || {
        let ids: Vec<&str> = candidate.results.iter().filter(|r| !r.passed).map(|r| r.id.as_str()).collect();
        table::shorten(&ids.join(", "), 200)
    };
    if candidate.pass_rate < min_pass {
        return Some(format!(
            "{} passed {} of {} cases ({:.0}%), below --min-pass {:.0}%; failing: {}",
            candidate.agent,
            candidate.passed,
            candidate.cases,
            candidate.pass_rate * 100.0,
            min_pass * 100.0,
            failing()
        ));
    }
    let baseline = baseline?;
    let regressed: Vec<&str> = candidate
        .results
        .iter()
        .zip(&baseline.results)
        .filter(|(c, b)| b.passed && !c.passed)
        .map(|(c, _)| c.id.as_str())
        .collect();
    (candidate.pass_rate < baseline.pass_rate - max_regression).then(|| {
        format!(
            "{} passed {:.0}% of the cases against the baseline's {:.0}% (--max-regression {:.0}%); it fails {} that the baseline passes: {}",
            candidate.agent,
            candidate.pass_rate * 100.0,
            baseline.pass_rate * 100.0,
            max_regression * 100.0,
            regressed.len(),
            table::shorten(&regressed.join(", "), 200)
        )
    })
}

/// The terminal's view: per case, each version's verdict and the candidate's failures; then
/// per version, the totals.
fn render(report: &EvalReport) -> String {
    let candidate = &report.candidate;
    let mut text = String::new();
    let rows: Vec<[String; 4]> = candidate
        .results
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mark = |r: &CaseResult| match (&r.judge, r.passed) {
                (Some(grade), passed) => {
                    format!("{} ({})", if passed { "pass" } else { "FAIL" }, crate::diff::number(grade.score))
                }
                (None, true) => "pass".into(),
                (None, false) => "FAIL".into(),
            };
            let baseline = report.baseline.as_ref().map_or_else(|| "-".into(), |b| mark(&b.results[i]));
            [c.id.clone(), baseline, mark(c), table::shorten(&c.failures.join("; "), 100)]
        })
        .collect();
    text.push_str(&table::render(["case", "baseline", "candidate", "why"], &rows, &[]));
    text.push('\n');
    let versions = report.baseline.iter().map(|b| ("baseline", b)).chain([("candidate", candidate)]);
    let totals: Vec<[String; 7]> = versions
        .map(|(role, v)| {
            [
                format!("{role} {}", v.agent),
                format!("{}/{} ({:.0}%)", v.passed, v.cases, v.pass_rate * 100.0),
                v.judge_mean.map_or_else(|| "-".into(), crate::diff::number),
                format!("{:.1}", v.latency_p50_ms),
                v.input_tokens.to_string(),
                v.output_tokens.to_string(),
                format!("{:.6}", v.cost),
            ]
        })
        .collect();
    text.push_str(&table::render(
        ["version", "passed", "judge", "p50 ms", "tokens in", "tokens out", "cost"],
        &totals,
        &[3, 4, 5, 6],
    ));
    text.push_str(&match &report.verdict {
        Some(why) => format!("\nFAILED: {why}\n"),
        None => "\npassed\n".into(),
    });
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let value = json!({"a": {"b": [1, {"c": "x"}]}, "score": 3});
        assert_eq!(lookup(&value, "score"), Some(&json!(3)));
        assert_eq!(lookup(&value, "a.b[1].c"), Some(&json!("x")));
        assert_eq!(lookup(&value, "a.b[2]"), None);
        assert_eq!(lookup(&value, "missing"), None);
    }
}
