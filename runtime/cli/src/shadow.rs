//! A shadow as the commands see it: its root in the store, its plan, and what it and
//! production committed for the events it replayed (`docs/replay.md`).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use weir_engine::{CommittedReader, EventTrace, Position, ShadowPlan, Storage};

use crate::error::{CliError, Result};
use crate::store::Store;

/// Partitions read at once.
const PARTITIONS_AT_ONCE: usize = 8;

/// A named shadow of the store.
#[derive(Debug, Clone)]
pub struct Shadow {
    /// Its name.
    pub name: String,
    /// Its root.
    pub storage: Storage,
}

/// What one side (production or the shadow) committed for one input event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventResult {
    /// The event's key.
    pub key: String,
    /// Its outputs, in order.
    pub outputs: Vec<Value>,
    /// Why it was dead-lettered, if it was.
    pub dead_letter: Option<String>,
    /// Its trace, if one is retained.
    pub trace: Option<EventTrace>,
}

/// Each replayed event's results, by partition and position.
pub type Results = BTreeMap<(u32, Position), EventResult>;

impl Shadow {
    /// The shadow `name` of `store` (which need not exist yet).
    pub fn open(store: &Store, name: &str) -> Result<Self> {
        let storage = weir_engine::shadow_storage(&store.storage, name).map_err(|e| CliError::Input(e.to_string()))?;
        Ok(Shadow { name: name.to_string(), storage })
    }

    /// Its plan; `None` if there is no such shadow.
    pub async fn plan(&self) -> Result<Option<ShadowPlan>> {
        Ok(ShadowPlan::read(&self.storage).await?)
    }

    /// Its plan, which must exist.
    pub async fn existing_plan(&self) -> Result<ShadowPlan> {
        self.plan().await?.ok_or_else(|| {
            CliError::Input(format!(
                "no shadow named `{}` in the store: make one with `weir replay --shadow`",
                self.name
            ))
        })
    }

    /// What the shadow committed for each event it decided.
    pub async fn results(&self, plan: &ShadowPlan) -> Result<Results> {
        results(&self.storage, plan).await
    }
}

/// What production committed for each event of the plan's ranges that it selects.
pub async fn production_results(store: &Store, plan: &ShadowPlan) -> Result<Results> {
    results(&store.storage, plan).await
}

/// What the agent under `root` committed for the events of `plan` (by its ranges).
async fn results(root: &Storage, plan: &ShadowPlan) -> Result<Results> {
    let reads = plan.ranges.iter().map(|(&partition, range)| async move {
        let reader = CommittedReader::new(root.clone(), &plan.production_agent, partition)?;
        let outputs = reader.outputs();
        let dead = reader.dead_letters();
        let traces = reader.traces_between(range.start, range.until);
        let (outputs, dead, traces) = futures::try_join!(outputs, dead, traces)?;
        let mut results = Results::new();
        let selected = |position: &Position| range.selects(*position);
        for trace in traces.into_iter().filter(|t| selected(&t.event)) {
            let result = entry(&mut results, partition, trace.event, &trace.key);
            result.trace = Some(trace);
        }
        for output in outputs.into_iter().filter(|o| selected(&o.event)) {
            entry(&mut results, partition, output.event, &output.key).outputs.push(output.payload);
        }
        for dead in dead.into_iter().filter(|d| selected(&d.event)) {
            entry(&mut results, partition, dead.event, &dead.key).dead_letter = Some(dead.reason);
        }
        Ok::<_, weir_engine::Error>(results)
    });
    let partitions: Vec<Results> = futures::stream::iter(reads).buffered(PARTITIONS_AT_ONCE).try_collect().await?;
    Ok(partitions.into_iter().flatten().collect())
}

fn entry<'r>(results: &'r mut Results, partition: u32, position: Position, key: &str) -> &'r mut EventResult {
    let result = results.entry((partition, position)).or_default();
    if result.key.is_empty() {
        result.key = key.to_string();
    }
    result
}
