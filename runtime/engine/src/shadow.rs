//! Shadow runs: a version of an agent over a range of the log, into a namespace of its own,
//! with its calls answered from production's record (`docs/replay.md`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::committed::CommittedReader;
use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{CommitKind, Manifest, PartitionDir, Writer};
use crate::position::Position;
use crate::storage::Storage;
use crate::trace::{EventTrace, Span};

/// Commits whose runs are copied at once.
const COPIES_AT_ONCE: usize = 8;

/// The root of shadow `shadow` under the production root `production`: the engine of a
/// shadow run writes there and nowhere else.
///
/// ```
/// use weir_engine::{Storage, shadow_storage};
/// let production = Storage::from_url("memory://").unwrap();
/// let shadow = shadow_storage(&production, "prompt-v2").unwrap();
/// assert_eq!(shadow.root().as_ref(), "shadows/prompt-v2");
/// assert!(shadow_storage(&production, "../agents").is_err());
/// ```
pub fn shadow_storage(production: &Storage, shadow: &str) -> Result<Storage> {
    crate::manifest::validate_name("shadow", shadow)?;
    let root = production.path(&layout::shadow_root(shadow));
    Ok(Storage::new(production.store().clone(), root))
}

/// What part of a partition's log a shadow run replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowRange {
    /// The first position replayed.
    pub start: Position,
    /// The position the run stops before.
    pub until: Position,
    /// The positions replayed within the range; `None`: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<BTreeSet<Position>>,
}

impl ShadowRange {
    /// Whether the run handles the event at `position`.
    pub fn selects(&self, position: Position) -> bool {
        self.start <= position
            && position < self.until
            && self.only.as_ref().is_none_or(|only| only.contains(&position))
    }
}

/// A shadow run's plan: what it replays and how, written once at the shadow's root before
/// any partition is forked, so that the run can be resumed, fanned out, and compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowPlan {
    /// The agent whose log, state and record the shadow replays.
    pub production_agent: String,
    /// Where the shadow's state starts from.
    pub start: ShadowStart,
    /// What answers calls the record lacks.
    pub calls: CallPolicy,
    /// Per partition, what is replayed; a partition not named replays nothing.
    pub ranges: std::collections::BTreeMap<u32, ShadowRange>,
    /// When the plan was made, milliseconds since the epoch.
    pub created_at_ms: u64,
    /// What the tool that made the plan keeps with it (the candidate agent, the filters).
    #[serde(default)]
    pub about: serde_json::Value,
}

impl ShadowPlan {
    /// Writes the plan at the shadow's root, unless a plan is there already: `Ok(false)`
    /// then, and nothing is written (shadows are not reused).
    pub async fn create(&self, shadow: &Storage) -> Result<bool> {
        let body = bytes::Bytes::from(serde_json::to_vec_pretty(self).expect("plan serializes"));
        shadow.create(&shadow.path(layout::SHADOW_PLAN), body).await
    }

    /// The plan at the shadow's root; `None` if the shadow has none.
    pub async fn read(shadow: &Storage) -> Result<Option<Self>> {
        let path = shadow.path(layout::SHADOW_PLAN);
        let Some(bytes) = shadow.get(&path).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::corrupt(&path, e))
    }

    /// The engine setting that runs this plan over the log under `production`.
    pub fn shadow(&self, production: Storage) -> Shadow {
        let ranges = self.ranges.iter().map(|(p, r)| (*p, r.clone())).collect();
        Shadow::new(production, &self.production_agent, ranges).calls(self.calls.clone())
    }
}

/// Deletes everything under a shadow's root ([`shadow_storage`]); returns how many objects.
pub async fn delete_shadow(shadow: &Storage) -> Result<usize> {
    let objects = shadow.list_after(shadow.root(), None).await?;
    let count = objects.len();
    shadow.delete_all(objects.into_iter().map(|o| o.location).collect()).await?;
    Ok(count)
}

/// Where a shadow partition's state starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShadowStart {
    /// Production's state when it reached the range's start: its latest commit at or
    /// before the start, whose position the range is moved back to.
    AsOf,
    /// Production's latest state.
    Head,
    /// No state.
    Empty,
}

/// How an engine runs as a shadow ([`EngineBuilder::shadow`](crate::EngineBuilder::shadow)):
/// it reads the log and the record under the production root, and handles only the events
/// of its ranges.
#[derive(Debug, Clone)]
pub struct Shadow {
    production: Storage,
    production_agent: String,
    ranges: HashMap<u32, ShadowRange>,
    calls: Arc<CallPolicy>,
}

/// What answers a shadow run's calls that production's record cannot answer.
///
/// ```
/// let policy: weir_engine::CallPolicy =
///     serde_json::from_str(r#"{"models": "record", "tools": {"notify": "dry-run", "lookup": {"reply": {"found": false}}}}"#).unwrap();
/// assert_eq!(policy.models, weir_engine::ModelPolicy::Record);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallPolicy {
    /// Model calls.
    pub models: ModelPolicy,
    /// Tool calls, by tool name; a tool not named here is allowed if it is read-only and
    /// denied otherwise.
    pub tools: std::collections::BTreeMap<String, ToolPolicy>,
}

/// How a shadow run's model calls are answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelPolicy {
    /// From the record when it has the call, else made.
    #[default]
    RecordOrLive,
    /// From the record only: a call it does not have fails the event.
    Record,
    /// Always made: the record is not used.
    Live,
}

/// How a shadow run answers a tool call that production's record does not have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolPolicy {
    /// The model is told the tool is not available in a replay.
    Deny,
    /// The model is told what the call would have done, and nothing is done.
    DryRun,
    /// The call is made.
    Allow,
    /// This result, whatever the arguments.
    Reply(serde_json::Value),
}

impl Shadow {
    /// A shadow of `production_agent`, whose log and commits are under `production`. A
    /// partition without a range replays nothing.
    pub fn new(production: Storage, production_agent: &str, ranges: HashMap<u32, ShadowRange>) -> Self {
        Shadow { production, production_agent: production_agent.to_string(), ranges, calls: Arc::default() }
    }

    /// Answers the calls the record cannot answer as `policy` says.
    pub fn calls(mut self, policy: CallPolicy) -> Self {
        self.calls = Arc::new(policy);
        self
    }

    /// The production root: where the log is.
    pub fn production(&self) -> &Storage {
        &self.production
    }

    /// The range replayed on `partition`.
    pub fn range(&self, partition: u32) -> Option<&ShadowRange> {
        self.ranges.get(&partition)
    }

    /// Production's record of `partition` within its range: each event's committed trace.
    pub(crate) async fn records(&self, partition: u32) -> Result<Records> {
        let mut traces = HashMap::new();
        if let Some(range) = self.range(partition) {
            let reader = CommittedReader::new(self.production.clone(), &self.production_agent, partition)?;
            let recorded = reader.traces_between(range.start, range.until).await?;
            traces.extend(recorded.into_iter().filter(|t| range.selects(t.event)).map(|t| (t.event, Arc::new(t))));
        }
        Ok(Records { traces, policy: self.calls.clone() })
    }
}

/// Production's record of a shadow partition's range, and the policy for what it lacks.
#[derive(Debug)]
pub(crate) struct Records {
    traces: HashMap<Position, Arc<EventTrace>>,
    policy: Arc<CallPolicy>,
}

impl Records {
    /// The record of the event at `position`, fresh for one attempt at it.
    pub(crate) fn record(&self, position: Position) -> Record {
        let trace = self.traces.get(&position).cloned();
        let taken = Mutex::new(vec![false; trace.as_ref().map_or(0, |t| t.spans.len())]);
        Record { trace, taken, policy: self.policy.clone() }
    }
}

/// Production's record of one input event, for one attempt of a shadow run at it, and what
/// answers the calls it lacks: each recorded span answers at most one call
/// ([`take`](Self::take)).
#[derive(Debug)]
pub struct Record {
    trace: Option<Arc<EventTrace>>,
    taken: Mutex<Vec<bool>>,
    policy: Arc<CallPolicy>,
}

impl Record {
    /// The recorded trace; `None` if production committed none for the event.
    pub fn trace(&self) -> Option<&EventTrace> {
        self.trace.as_deref()
    }

    /// What answers calls the record lacks.
    pub fn policy(&self) -> &CallPolicy {
        &self.policy
    }

    /// The first recorded span not taken yet that `matches`, now taken.
    pub fn take(&self, matches: impl Fn(&Span) -> bool) -> Option<Span> {
        let spans = self.trace.as_ref()?.spans.as_slice();
        let mut taken = self.taken.lock().expect("record");
        let (i, span) = spans.iter().enumerate().find(|(i, span)| !taken[*i] && matches(span))?;
        taken[i] = true;
        Some(span.clone())
    }
}

/// Where a shadow partition forks from production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkPoint {
    /// The first position replayed.
    pub position: Position,
    /// The state the shadow starts with.
    pub state: ShadowStart,
}

/// Starts `partition` of the shadow under `shadow` with its first commit, a fork of
/// production's `agent` at `at`: from its position or, for [`ShadowStart::AsOf`], the
/// position of production's commit at or before it. Returns the position the shadow starts
/// at. A shadow partition that has a chain already is refused: shadows are not reused.
pub async fn fork_partition(
    production: &Storage,
    shadow: &Storage,
    agent: &str,
    partition: u32,
    at: ForkPoint,
    writer_nonce: &str,
    now_ms: u64,
) -> Result<Position> {
    let ForkPoint { position, state: start } = at;
    let source = PartitionDir::new(production.clone(), agent, partition)?;
    let target = PartitionDir::new(shadow.clone(), agent, partition)?;
    if target.latest().await?.is_some() {
        return Err(Error::InvalidInput(format!("shadow {} already has partition {partition}", shadow.root())));
    }
    let (from, runs) = match start {
        ShadowStart::Empty => (position, Vec::new()),
        ShadowStart::Head => (position, source.latest().await?.map(|m| m.runs).unwrap_or_default()),
        ShadowStart::AsOf => {
            let reader = CommittedReader::new(production.clone(), agent, partition)?;
            let commits = reader.commits().await?;
            match commits.iter().rev().find(|c| c.position() <= position) {
                Some(commit) => (commit.position(), commit.manifest().runs.clone()),
                // Nothing committed at or before the start is retained: only an empty
                // state is as-of a start before the first commit.
                None if commits.is_empty() => (position, Vec::new()),
                None => {
                    return Err(Error::InvalidInput(format!(
                        "production's state as of {position} on partition {partition} is no longer retained (its \
                         oldest retained commit is at {}): start later, or from the `head` or `empty` state",
                        commits[0].position()
                    )));
                }
            }
        }
    };
    let copies = futures::stream::iter(runs.iter().map(Ok::<_, Error>))
        .map_ok(|run| {
            let (from, to) = (source.path(&run.path), target.path(&run.path));
            async move {
                match production.store().copy(&from, &to).await {
                    Ok(()) => Ok(()),
                    Err(object_store::Error::NotFound { .. }) => Err(Error::InvalidInput(format!(
                        "production's state as of {position} on partition {partition} is no longer retained: run \
                         {from} was collected; start later, or from the `head` or `empty` state"
                    ))),
                    Err(e) => Err(Error::from(e)),
                }
            }
        })
        .try_buffer_unordered(COPIES_AT_ONCE);
    copies.try_collect::<Vec<()>>().await?;
    let writer = Writer { epoch: 1, nonce: writer_nonce.to_string() };
    let mut fork = Manifest::genesis().successor(writer, CommitKind::Fork, now_ms);
    fork.position = from;
    fork.runs = runs;
    if !target.commit(&fork).await? {
        return Err(Error::InvalidInput(format!("shadow {} already has partition {partition}", shadow.root())));
    }
    Ok(from)
}
