//! `weir replay`: runs a range of the log through a version of the agent into a shadow,
//! whose calls the production record answers, and which never writes production
//! (`docs/replay.md`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use weir_engine::{
    CallPolicy, Clock, CommittedReader, Engine, EngineSettings, EventLog, EventTrace, LogReader, ModelPolicy, Position,
    ShadowPlan, ShadowRange, ShadowStart, SpanKind, SystemClock, ToolPolicy, TraceSink,
};

use crate::agents::AgentChoice;
use crate::error::{CliError, Result};
use crate::shadow::Shadow;
use crate::store::Store;

/// Partitions planned at once.
const PARTITIONS_AT_ONCE: usize = 8;
/// How often the progress of a replay on a function is read.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// Events read from the log at once while choosing them.
const READ_CHUNK: usize = 10_000;

/// Options of `weir replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The shadow to replay into: its commits go under `shadows/<NAME>/` in the store.
    #[arg(long)]
    shadow: String,
    /// The version of the agent to run: a built-in agent's name or a declarative agent
    /// file [default: the --agent itself].
    #[arg(long = "with", value_name = "AGENT")]
    candidate: Option<String>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// The first position replayed, SEGMENT:INDEX, on every partition replayed.
    #[arg(long)]
    from: Option<Position>,
    /// The position replay stops before, SEGMENT:INDEX [default: what production has processed].
    #[arg(long)]
    to: Option<Position>,
    /// Only events appended in this last stretch of time: `90m`, `24h`, `7d`.
    #[arg(long, value_parser = crate::stats::parse_age)]
    since: Option<u64>,
    /// Only the events of these keys (comma-separated).
    #[arg(long, value_delimiter = ',')]
    keys: Vec<String>,
    /// Only this fraction of the keys (0 to 1), chosen by a hash of the key: a chosen key's
    /// events all replay, in order.
    #[arg(long)]
    sample: Option<f64>,
    /// Only the events production dead-lettered.
    #[arg(long)]
    dead_letters: bool,
    /// At most this many events (the first of each partition, in proportion).
    #[arg(long)]
    limit: Option<usize>,
    /// Where the shadow's state starts: production's as of the range's start, its latest,
    /// or none.
    #[arg(long, value_enum, default_value = "as-of")]
    state: StateArg,
    /// Model calls: from the record, else made (`record-or-live`); from the record only
    /// (`record`); always made (`live`).
    #[arg(long, value_enum, default_value = "record-or-live")]
    models: ModelsArg,
    /// What answers a tool's calls the record lacks, `NAME=deny|dry-run|allow|reply:JSON`
    /// (repeatable). Read-only tools are allowed and every other tool denied unless named.
    #[arg(long = "tool-policy", value_name = "NAME=POLICY")]
    tool_policies: Vec<String>,
    /// Runs the replay on this process function (a name or ARN) instead of in this
    /// process: one invocation per partition, through the Lambda API the `AWS_*` variables
    /// configure; waits for them with the progress bar.
    #[arg(long, value_name = "FUNCTION")]
    function: Option<String>,
    /// With --function: how long the shadow may make no progress before the replay is
    /// given up as stalled (the invocations may still finish it), e.g. `10m`.
    #[arg(long, value_parser = crate::stats::parse_age, default_value = "10m")]
    stall_after: u64,
    /// Prints what the replay would run and cost, and stops.
    #[arg(long)]
    estimate: bool,
    /// Deletes a shadow of that name first.
    #[arg(long)]
    replace: bool,
    /// Engine settings over the defaults, a JSON object, as `WEIR_ENGINE_SETTINGS`.
    #[arg(long, env = "WEIR_ENGINE_SETTINGS")]
    engine_settings: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StateArg {
    AsOf,
    Head,
    Empty,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModelsArg {
    RecordOrLive,
    Record,
    Live,
}

/// What production's record says of the chosen events.
#[derive(Debug, Default)]
struct Estimate {
    events: usize,
    /// Events production's trace is retained for.
    recorded_events: usize,
    model_calls: usize,
    recorded_content: usize,
    input_tokens: u64,
    output_tokens: u64,
    cost: f64,
    tool_calls: usize,
}

/// Plans the replay, prints its estimate, then runs it.
pub async fn run(args: ReplayArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let settings = match &args.engine_settings {
        Some(json) => serde_json::from_str::<EngineSettings>(json)
            .map_err(|e| CliError::Input(format!("--engine-settings: {e}")))?,
        None => EngineSettings::default(),
    };
    let calls = call_policy(&args)?;
    if let Some(sample) = args.sample.filter(|s| !(0.0..=1.0).contains(s)) {
        return Err(CliError::Input(format!("--sample {sample}: give a fraction from 0 to 1")));
    }
    let log = store.log().await?;
    let production = agent.name().await?;
    let candidate = match &args.candidate {
        Some(candidate) => AgentChoice::parse(candidate)?,
        None => agent.clone(),
    };
    // On a function, the function is the version that runs.
    let loaded = match &args.function {
        Some(function) if args.candidate.is_some() => {
            return Err(CliError::Input(format!(
                "--with and --function {function}: the function is the version replayed; give one of them"
            )));
        }
        Some(_) => None,
        None => Some(candidate.load().await?),
    };
    let shadow = Shadow::open(&store, &args.shadow)?;
    if args.replace {
        let deleted = weir_engine::delete_shadow(&shadow.storage).await?;
        tracing::info!(shadow = %args.shadow, deleted, "replaced shadow");
    } else if shadow.plan().await?.is_some() {
        return Err(CliError::Input(format!(
            "shadow `{}` exists: choose another name, or give --replace to delete it first",
            args.shadow
        )));
    }

    let start = match args.state {
        StateArg::AsOf => ShadowStart::AsOf,
        StateArg::Head => ShadowStart::Head,
        StateArg::Empty => ShadowStart::Empty,
    };
    let ranges = plan_ranges(&args, &log, &store, &production, start).await?;
    let chosen: usize = ranges.values().map(|(_, events)| *events).sum();
    if chosen == 0 {
        return Err(CliError::Input(
            "the range holds no events production has processed: nothing to replay (check --from, --to, --since, --keys and --dead-letters)"
                .into(),
        ));
    }
    let estimate = estimate(&store, &production, &ranges).await?;
    say!("{}", describe(&args.shadow, &production, &estimate, ranges.len()));
    if args.estimate {
        return Ok(());
    }
    if matches!(args.models, ModelsArg::Record) && estimate.recorded_events < estimate.events {
        return Err(CliError::Input(format!(
            "--models record: production's record of {} of the {} events is gone (collected with its commits past output_retention_ms): the record cannot answer their calls",
            estimate.events - estimate.recorded_events,
            estimate.events
        )));
    }
    if matches!(args.models, ModelsArg::Record) && estimate.recorded_content < estimate.model_calls {
        return Err(CliError::Input(format!(
            "--models record: production recorded the content of {} of its {} model calls in this range (trace content off or redacted): the record cannot answer the rest",
            estimate.recorded_content, estimate.model_calls
        )));
    }

    let plan = ShadowPlan {
        production_agent: production.clone(),
        start,
        calls,
        ranges: ranges.iter().map(|(p, (range, _))| (*p, range.clone())).collect(),
        created_at_ms: SystemClock.now_ms(),
        about: json!({"candidate": args.candidate.clone().unwrap_or_else(|| production.clone())}),
    };
    if !plan.create(&shadow.storage).await? {
        return Err(CliError::Input(format!("shadow `{}` exists: another replay made it just now", args.shadow)));
    }
    let nonce = format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{}-{}", std::process::id(), plan.created_at_ms).as_bytes())
    );
    let forks = plan.ranges.iter().map(|(&partition, range)| {
        let at = weir_engine::ForkPoint { position: range.start, state: start };
        let (production, shadow) = (&store.storage, &shadow.storage);
        weir_engine::fork_partition(
            production,
            shadow,
            &plan.production_agent,
            partition,
            at,
            &nonce,
            plan.created_at_ms,
        )
    });
    futures::future::try_join_all(forks).await?;
    let progress = Arc::new(Progress(indicatif::ProgressBar::new(chosen as u64).with_message("replaying")));
    let ran = match &args.function {
        Some(function) => on_function(function, &shadow, &plan, &progress, args.stall_after).await,
        None => {
            let agent = loaded.as_ref().expect("loaded when not on a function").agent.clone();
            let engine = Engine::builder(shadow.storage.clone(), &production, agent)
                .settings(settings)
                .shadow(plan.shadow(store.storage.clone()))
                .trace_sink(progress.clone())
                .build()?;
            let drains = plan.ranges.keys().map(|&partition| {
                let engine = engine.clone();
                async move { engine.drain_partition(partition).await }
            });
            futures::future::try_join_all(drains).await.map(drop).map_err(CliError::from)
        }
    };
    progress.0.finish_and_clear();
    ran?;
    let results = shadow.results(&plan).await?;
    let outputs: usize = results.values().map(|r| r.outputs.len()).sum();
    let dead_letters = results.values().filter(|r| r.dead_letter.is_some()).count();
    let traces: Vec<EventTrace> = results.into_values().filter_map(|r| r.trace).collect();
    let version = match (&args.function, &loaded) {
        (Some(function), _) => function.clone(),
        (None, Some(loaded)) => loaded.name.clone(),
        (None, None) => production.clone(),
    };
    say!(
        "shadow {}: {} events replayed with {version}, {outputs} outputs, {dead_letters} dead letters",
        args.shadow,
        traces.len(),
    );
    say!("{}", answered(&traces));
    say!("compare with production: weir diff --shadow {}", args.shadow);
    Ok(())
}

/// Runs the plan on the process function `function`, one invocation per partition, and
/// waits until every partition's shadow chain reaches the end of its range.
async fn on_function(
    function: &str,
    shadow: &Shadow,
    plan: &ShadowPlan,
    progress: &Progress,
    stall_after_ms: u64,
) -> Result<()> {
    let invoker = weir_functions::LambdaInvoker::new(&weir_functions::AwsClients::from_env().await);
    for &partition in plan.ranges.keys() {
        let request = json!({"shadow": shadow.name, "partitions": [partition]});
        invoker.invoke_async(function, &request).await.map_err(|e| CliError::Function(e.to_string()))?;
    }
    let (mut done, mut last_progress) = (0, SystemClock.now_ms());
    loop {
        let mut events = 0;
        let mut behind = Vec::new();
        for (&partition, range) in &plan.ranges {
            let reader = CommittedReader::new(shadow.storage.clone(), &plan.production_agent, partition)?;
            let head = reader.head().await?;
            events += head.as_ref().map_or(0, |h| h.totals().events);
            if head.is_none_or(|h| h.position() < range.until) {
                behind.push(partition);
            }
        }
        if events > done {
            progress.0.inc(events - done);
            (done, last_progress) = (events, SystemClock.now_ms());
        }
        if behind.is_empty() {
            return Ok(());
        }
        if SystemClock.now_ms().saturating_sub(last_progress) > stall_after_ms {
            return Err(CliError::Function(format!(
                "the shadow made no progress for {} s on partitions {behind:?}: see {function}'s logs; the invocations may still finish it",
                stall_after_ms / 1000
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The policy `--models` and `--tool-policy` give.
fn call_policy(args: &ReplayArgs) -> Result<CallPolicy> {
    let models = match args.models {
        ModelsArg::RecordOrLive => ModelPolicy::RecordOrLive,
        ModelsArg::Record => ModelPolicy::Record,
        ModelsArg::Live => ModelPolicy::Live,
    };
    let mut tools = BTreeMap::new();
    for given in &args.tool_policies {
        let bad = |why: &str| CliError::Input(format!("--tool-policy `{given}`: {why}"));
        let (name, policy) = given.split_once('=').ok_or_else(|| bad("write NAME=deny|dry-run|allow|reply:JSON"))?;
        let policy = match policy {
            "deny" => ToolPolicy::Deny,
            "dry-run" => ToolPolicy::DryRun,
            "allow" => ToolPolicy::Allow,
            other => match other.strip_prefix("reply:") {
                Some(reply) => ToolPolicy::Reply(
                    serde_json::from_str(reply).map_err(|e| bad(&format!("the reply is not JSON: {e}")))?,
                ),
                None => return Err(bad("the policy is one of deny, dry-run, allow, reply:JSON")),
            },
        };
        tools.insert(name.to_string(), policy);
    }
    Ok(CallPolicy { models, tools })
}

/// Per partition, the range to replay and how many events it selects.
async fn plan_ranges(
    args: &ReplayArgs,
    log: &EventLog,
    store: &Store,
    production: &str,
    start: ShadowStart,
) -> Result<BTreeMap<u32, (ShadowRange, usize)>> {
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p >= log.partitions() => {
            return Err(CliError::Input(format!("--partition {p}: the log has {} partitions", log.partitions())));
        }
        Some(p) => vec![p],
        None => (0..log.partitions()).collect(),
    };
    let since_ms = args.since.map(|age| SystemClock.now_ms().saturating_sub(age));
    let plans = partitions
        .into_iter()
        .map(|partition| async move { plan_partition(args, log, store, production, start, partition, since_ms).await });
    let planned: Vec<_> = futures::stream::iter(plans).buffered(PARTITIONS_AT_ONCE).try_collect().await?;
    let mut ranges: BTreeMap<u32, (ShadowRange, Vec<Position>)> = planned.into_iter().flatten().collect();
    if let Some(limit) = args.limit {
        limit_events(&mut ranges, limit);
    }
    let filtered = !args.keys.is_empty() || args.sample.is_some() || args.dead_letters || args.limit.is_some();
    Ok(ranges
        .into_iter()
        .filter(|(_, (_, events))| !events.is_empty())
        .map(|(p, (mut range, events))| {
            let count = events.len();
            if filtered {
                range.only = Some(events.into_iter().collect());
            }
            (p, (range, count))
        })
        .collect())
}

/// One partition's range and its chosen events, in log order; `None` if it has nothing to
/// replay.
async fn plan_partition(
    args: &ReplayArgs,
    log: &EventLog,
    store: &Store,
    production: &str,
    start: ShadowStart,
    partition: u32,
    since_ms: Option<u64>,
) -> Result<Option<(u32, (ShadowRange, Vec<Position>))>> {
    let reader = CommittedReader::new(store.storage.clone(), production, partition)?;
    let Some(head) = reader.head().await? else { return Ok(None) };
    let until = args.to.map_or(head.position(), |to| to.min(head.position()));
    let segments = log.segment_times(partition).await?;
    let retained = segments.first().map_or(until, |(seq, _)| Position::new(*seq, 0));
    let mut from = args.from.unwrap_or(retained).max(retained);
    if let Some(since) = since_ms {
        let first = segments.iter().find(|(_, appended)| *appended >= since);
        from = from.max(first.map_or(until, |(seq, _)| Position::new(*seq, 0)));
    }
    if from >= until {
        return Ok(None);
    }
    // As of the start: from production's commit at or before it, so that no event between
    // that state and the start is skipped.
    if start == ShadowStart::AsOf {
        let commits = reader.commits().await?;
        let as_of = commits.iter().rev().find(|c| c.position() <= from);
        if as_of.is_none() && !commits.is_empty() {
            return Err(CliError::Input(format!(
                "partition {partition}: production's state as of {from} is no longer retained (its oldest retained commit is at {}): start later, or give --state head or empty",
                commits[0].position()
            )));
        }
        if let Some(commit) = as_of {
            if commit.position() < retained {
                return Err(CliError::Input(format!(
                    "partition {partition}: production's state as of {from} is from its commit at {}, but the log before {retained} is collected: start later, or give --state head or empty",
                    commit.position()
                )));
            }
            from = commit.position();
        }
    }
    let dead: Option<HashSet<Position>> = match args.dead_letters {
        true => Some(reader.dead_letters().await?.into_iter().map(|d| d.event).collect()),
        false => None,
    };
    let keys: HashSet<&str> = args.keys.iter().map(String::as_str).collect();
    let mut chosen = Vec::new();
    let mut log_reader = LogReader::new(partition);
    let mut position = from;
    while position < until {
        let (events, next) = log_reader.read(log, position, READ_CHUNK).await?;
        if events.is_empty() {
            break;
        }
        for (at, event) in events.into_iter().filter(|(at, _)| *at < until) {
            let by_key = keys.is_empty() || keys.contains(event.key.as_str());
            let sampled = args.sample.is_none_or(|fraction| sampled(&event.key, fraction));
            let dead_lettered = dead.as_ref().is_none_or(|dead| dead.contains(&at));
            if by_key && sampled && dead_lettered {
                chosen.push(at);
            }
        }
        position = next;
    }
    Ok(Some((partition, (ShadowRange { start: from, until, only: None }, chosen))))
}

/// Whether `key` is among a `fraction` of keys: by its hash, the same in every run.
fn sampled(key: &str, fraction: f64) -> bool {
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) as f64 / u64::MAX as f64) < fraction
}

/// Keeps the first `limit` events over all partitions, each partition's share in proportion
/// to its events.
fn limit_events(ranges: &mut BTreeMap<u32, (ShadowRange, Vec<Position>)>, limit: usize) {
    let total: usize = ranges.values().map(|(_, events)| events.len()).sum();
    if total <= limit {
        return;
    }
    let mut left = limit;
    for (_, events) in ranges.values_mut() {
        let share = (events.len() * limit).div_ceil(total).min(left);
        events.truncate(share);
        left -= share;
    }
}

/// What production's record says the chosen events took.
async fn estimate(store: &Store, production: &str, ranges: &BTreeMap<u32, (ShadowRange, usize)>) -> Result<Estimate> {
    let mut estimate = Estimate { events: ranges.values().map(|(_, n)| n).sum(), ..Default::default() };
    for (partition, (range, _)) in ranges {
        let reader = CommittedReader::new(store.storage.clone(), production, *partition)?;
        for trace in reader.traces_between(range.start, range.until).await? {
            if !range.selects(trace.event) {
                continue;
            }
            estimate.recorded_events += 1;
            for span in &trace.spans {
                match span.kind {
                    SpanKind::Model => {
                        estimate.model_calls += 1;
                        estimate.recorded_content += span.attributes.contains_key("gen_ai.input.messages") as usize;
                        if let Some(usage) = &span.usage {
                            estimate.input_tokens += usage.input_tokens;
                            estimate.output_tokens += usage.output_tokens;
                            estimate.cost += usage.cost.unwrap_or(0.0);
                        }
                    }
                    SpanKind::Tool => estimate.tool_calls += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(estimate)
}

fn describe(shadow: &str, production: &str, estimate: &Estimate, partitions: usize) -> String {
    let gone = match estimate.events - estimate.recorded_events {
        0 => String::new(),
        n => format!(
            "\n{n} of the events have no record (collected with their commits): their calls are made, or denied, as new ones"
        ),
    };
    format!(
        "replay of {} events of {production} on {partitions} partitions into shadow {shadow}\n\
         production's record of them: {} model calls ({} with content the record can answer from), \
         {} input and {} output tokens, cost {:.6}; {} tool calls\n\
         a replay with the agent unchanged makes none of those calls; with every model call made, it costs about as much{gone}",
        estimate.events,
        estimate.model_calls,
        estimate.recorded_content,
        estimate.input_tokens,
        estimate.output_tokens,
        estimate.cost,
        estimate.tool_calls,
    )
}

/// What answered the shadow's calls, from its trace.
fn answered(traces: &[EventTrace]) -> String {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for span in traces.iter().flat_map(|t| &t.spans) {
        let kind = match span.kind {
            SpanKind::Model => "model",
            SpanKind::Tool => "tool",
            _ => continue,
        };
        let answer = if span.attributes.get("weir.from_record") == Some(&Value::Bool(true)) {
            "from the record"
        } else if let Some(policy) = span.attributes.get("weir.replay_policy").and_then(Value::as_str) {
            match policy {
                "deny" => "denied",
                "dry-run" => "dry runs",
                _ => "fixed replies",
            }
        } else {
            "made"
        };
        *counts.entry((kind, answer)).or_default() += 1;
    }
    let of = |kind: &str| {
        let parts: Vec<String> =
            counts.iter().filter(|((k, _), _)| *k == kind).map(|((_, answer), n)| format!("{n} {answer}")).collect();
        if parts.is_empty() { "none".to_string() } else { parts.join(", ") }
    };
    format!("model calls: {}; tool calls: {}", of("model"), of("tool"))
}

/// The progress bar, moved on by each commit of the shadow.
#[derive(Debug)]
struct Progress(indicatif::ProgressBar);

impl TraceSink for Progress {
    fn committed(&self, _agent: &str, _partition: u32, _seq: u64, traces: &[EventTrace]) {
        self.0.inc(traces.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_keeps_each_partitions_first_events_in_proportion() {
        let range = ShadowRange { start: Position::default(), until: Position::new(9, 0), only: None };
        let events = |n: u32| (0..n).map(|i| Position::new(0, i)).collect::<Vec<_>>();
        let mut ranges = BTreeMap::from([(0, (range.clone(), events(30))), (1, (range, events(10)))]);
        limit_events(&mut ranges, 8);
        assert_eq!(ranges[&0].1, events(6));
        assert_eq!(ranges[&1].1, events(2));
    }

    /// xxh3-64 of `key-0`, as the reference implementation (Python's `xxhash`) computes it.
    const STABLE_KEY_0_HASH: u64 = 9_340_302_149_712_544_120;

    #[test]
    fn sampling_is_by_key_and_stable() {
        let keys: Vec<String> = (0..1000).map(|i| format!("key-{i}")).collect();
        let chosen: Vec<&String> = keys.iter().filter(|k| sampled(k, 0.25)).collect();
        assert!((200..300).contains(&chosen.len()), "{}", chosen.len());
        // The hash is unseeded: the same keys in every process, on every machine.
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b"key-0"), STABLE_KEY_0_HASH);
        // A larger sample keeps the smaller one's keys: growing it only adds events.
        assert!(chosen.iter().all(|k| sampled(k, 0.5)));
        assert!(keys.iter().all(|k| sampled(k, 1.0)));
    }
}
