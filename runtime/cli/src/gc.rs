//! `weir gc`: garbage collection of an agent's partitions and of the log.

use weir_engine::{GcReport, GcSettings, PartitionDir, SystemClock, collect_log, collect_partition};

use crate::agents::AgentChoice;
use crate::error::Result;
use crate::store::Store;

/// Options of `weir gc`; the defaults are those of the engine.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Nothing younger is deleted: longer than any invocation may run.
    #[arg(long, default_value_t = GcSettings::default().grace_ms / 1000)]
    grace_secs: u64,
    /// Committed outputs, dead letters and their manifests are kept this long.
    #[arg(long, default_value_t = GcSettings::default().output_retention_ms / 1000)]
    output_retention_secs: u64,
    /// Processed log segments are kept this long.
    #[arg(long, default_value_t = GcSettings::default().log_retention_ms / 1000)]
    log_retention_secs: u64,
}

/// Collects every partition of the agent, then the log segments every agent has processed.
pub async fn run(args: GcArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let settings = GcSettings {
        grace_ms: args.grace_secs * 1000,
        output_retention_ms: args.output_retention_secs * 1000,
        log_retention_ms: args.log_retention_secs * 1000,
    };
    let log = store.log().await?;
    let agent = agent.name().await?;
    let mut total = GcReport::default();
    for partition in 0..log.partitions() {
        let dir = PartitionDir::new(log.storage().clone(), &agent, partition)?;
        add(&mut total, collect_partition(&dir, &settings, &SystemClock).await?);
    }
    add(&mut total, collect_log(&log, &settings, &SystemClock).await?);
    say!(
        "gc: deleted {} state runs, {} journal files, {} orphaned files, {} expired manifests, {} log segments",
        total.runs,
        total.journal_files,
        total.orphan_files,
        total.manifests,
        total.segments
    );
    Ok(())
}

fn add(total: &mut GcReport, report: GcReport) {
    total.runs += report.runs;
    total.journal_files += report.journal_files;
    total.orphan_files += report.orphan_files;
    total.manifests += report.manifests;
    total.segments += report.segments;
}
