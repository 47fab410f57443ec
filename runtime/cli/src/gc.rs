//! `weir gc`: garbage collection of an agent's partitions and of the log, or of a shadow.

use weir_engine::{EngineSettings, GcReport, SystemClock, collect_log, collect_partition};

use crate::agents::AgentChoice;
use crate::error::Result;
use crate::shadow::Shadow;
use crate::store::Store;

/// Options of `weir gc`: the engine settings it collects by (`gc_grace_ms`,
/// `output_retention_ms`, `log_retention_ms`), in seconds; the defaults are the engine's.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Nothing younger is deleted: the engine's `gc_grace_ms`, at least the longest
    /// invocation (15 minutes) plus 5 minutes.
    #[arg(long, default_value_t = EngineSettings::default().gc_grace_ms / 1000)]
    grace_secs: u64,
    /// Committed outputs, dead letters and their manifests are kept this long.
    #[arg(long, default_value_t = EngineSettings::default().output_retention_ms / 1000)]
    output_retention_secs: u64,
    /// Processed log segments are kept this long; at least an hour.
    #[arg(long, default_value_t = EngineSettings::default().log_retention_ms / 1000)]
    log_retention_secs: u64,
    /// Collects this shadow (`weir replay --shadow`) instead of the agent and the log.
    #[arg(long)]
    shadow: Option<String>,
    /// With --shadow: deletes the whole shadow.
    #[arg(long, requires = "shadow")]
    drop: bool,
}

/// Collects every partition of the agent, then the log segments every agent has processed.
pub async fn run(args: GcArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let settings = EngineSettings {
        gc_grace_ms: args.grace_secs.saturating_mul(1000),
        output_retention_ms: args.output_retention_secs.saturating_mul(1000),
        log_retention_ms: args.log_retention_secs.saturating_mul(1000),
        ..EngineSettings::default()
    };
    settings.validate()?;
    if let Some(name) = &args.shadow {
        return collect_shadow(&store, name, args.drop, &settings).await;
    }
    let log = store.log().await?;
    let agent = agent.name().await?;
    let mut total = GcReport::default();
    for partition in 0..log.partitions() {
        total += collect_partition(log.storage(), &agent, partition, &settings, &SystemClock).await?;
    }
    total += collect_log(&log, &settings, &SystemClock).await?;
    report(&total);
    Ok(())
}

/// Collects a shadow's partitions as its plan names them, or deletes it.
async fn collect_shadow(store: &Store, name: &str, drop: bool, settings: &EngineSettings) -> Result<()> {
    let shadow = Shadow::open(store, name)?;
    let plan = shadow.existing_plan().await?;
    if drop {
        let deleted = weir_engine::delete_shadow(&shadow.storage).await?;
        say!("gc: deleted shadow {name}: {deleted} objects");
        return Ok(());
    }
    let mut total = GcReport::default();
    for &partition in plan.ranges.keys() {
        total += collect_partition(&shadow.storage, &plan.production_agent, partition, settings, &SystemClock).await?;
    }
    report(&total);
    Ok(())
}

fn report(total: &GcReport) {
    say!(
        "gc: deleted {} state runs, {} journal files, {} intents, {} orphaned files, {} expired manifests, {} log segments, {} usage records",
        total.runs,
        total.journal_files,
        total.intents,
        total.orphan_files,
        total.manifests,
        total.segments,
        total.usage_records
    );
}
