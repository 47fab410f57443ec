//! `weir inspect`: the log's partitions, the agent's commit chains, a key's state and
//! journal, and dead letters.

use std::collections::BTreeSet;

use weir_engine::{CommittedReader, EventLog, Manifest, PartitionDir, Position};

use crate::agents::AgentChoice;
use crate::committed::Committed;
use crate::error::Result;
use crate::store::Store;

/// Options of `weir inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Also list every valid manifest of each partition (or of `--partition`).
    #[arg(long)]
    manifests: bool,
    /// Only this partition, for `--manifests`.
    #[arg(long)]
    partition: Option<u32>,
    /// Show this key's state and the journal entries of its calls.
    #[arg(long)]
    key: Option<String>,
}

/// Prints the store's overview, then what the flags ask for.
pub async fn run(args: InspectArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let log = store.log().await?;
    let agent = agent.name().await?;
    say!("store  {}\nagent  {agent}\nlog    {} partitions\n", store.url, log.partitions());
    say!(
        "{:>9}  {:>8}  {:>10}  {:>6}  {:>7}  {:>7}  {:>12}",
        "partition",
        "log tail",
        "position",
        "head",
        "events",
        "outputs",
        "dead letters"
    );
    for partition in 0..log.partitions() {
        let tail = log.tail(partition).await?;
        match CommittedReader::new(log.storage().clone(), &agent, partition)?.head().await? {
            Some(head) => say!(
                "{partition:>9}  {tail:>8}  {:>10}  {:>6}  {:>7}  {:>7}  {:>12}",
                head.position.to_string(),
                head.seq,
                head.totals.events,
                head.totals.outputs,
                head.totals.dead_letters
            ),
            None => say!("{partition:>9}  {tail:>8}  {:>10}", "unclaimed"),
        }
    }
    if args.manifests {
        let partitions = args.partition.map_or(0..log.partitions(), |p| p..p + 1);
        for partition in partitions {
            print_manifests(
                partition,
                &CommittedReader::new(log.storage().clone(), &agent, partition)?.manifests().await?,
            );
        }
    }
    if let Some(key) = &args.key {
        print_key(&log, &agent, key).await?;
    }
    let dead_letters = Committed::read(&log, &agent).await?.dead_letters;
    say!("\ndead letters: {}", dead_letters.len());
    for (partition, letter) in &dead_letters {
        say!(
            "  partition {partition}, event {}, key {}, {} attempts: {}",
            letter.event,
            letter.key,
            letter.attempts,
            letter.reason
        );
    }
    Ok(())
}

fn print_manifests(partition: u32, manifests: &[Manifest]) {
    say!("\npartition {partition}: {} manifests", manifests.len());
    say!("  {:>6}  {:<10}  {:>10}  {:>7}  {:>4}  {:>4}", "seq", "kind", "position", "outputs", "dead", "runs");
    for m in manifests {
        let rows = |file: &Option<weir_engine::FileRef>| file.as_ref().map_or(0, |f| f.rows);
        say!(
            "  {:>6}  {:<10}  {:>10}  {:>7}  {:>4}  {:>4}",
            m.seq,
            format!("{:?}", m.kind).to_lowercase(),
            m.position.to_string(),
            rows(&m.outputs),
            rows(&m.dead_letters),
            m.runs.len()
        );
    }
}

/// The key's state at the head, and the journal entries of its calls that are still kept
/// (those of batches not yet collected).
async fn print_key(log: &EventLog, agent: &str, key: &str) -> Result<()> {
    let partition = log.partition_of(key);
    say!("\nkey {key} (partition {partition})");
    let state = CommittedReader::new(log.storage().clone(), agent, partition)?.state(key).await?;
    match state {
        Some(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(json) => say!("  state: {json}"),
            Err(_) => say!("  state: {} bytes (not JSON)", bytes.len()),
        },
        None => say!("  state: none"),
    }
    let dir = PartitionDir::new(log.storage().clone(), agent, partition)?;
    let mut entries = Vec::new();
    for batch in journal_batches(&dir).await? {
        entries.extend(weir_engine::journal_entries(&dir, batch).await?.into_iter().filter(|e| e.call.key == key));
    }
    entries.sort_by(|a, b| a.call.cmp(&b.call));
    say!("  journal: {} entries", entries.len());
    for entry in entries {
        let branch =
            if entry.call.branch.is_empty() { String::new() } else { format!(" branch {}", entry.call.branch) };
        let outcome = serde_json::to_string(&entry.outcome).unwrap_or_default();
        say!("    event {}{branch} step {} `{}`: {outcome}", entry.call.event, entry.call.step, entry.name);
    }
    Ok(())
}

/// The batches (by their first position) that have journal files.
async fn journal_batches(dir: &PartitionDir) -> Result<BTreeSet<Position>> {
    let journal = dir.path("journal");
    let files = dir.storage().list_after(&journal, None).await?;
    let batch_names =
        files.iter().filter_map(|f| Some(f.location.prefix_match(&journal)?.next()?.as_ref().to_string()));
    Ok(batch_names.filter_map(|name| parse_position(&name)).collect())
}

/// A batch's journal folder name, `<segment:020>-<index:06>`.
fn parse_position(name: &str) -> Option<Position> {
    let (segment, index) = name.split_once('-')?;
    Some(Position::new(segment.parse().ok()?, index.parse().ok()?))
}
