//! `weir inspect`: the log's partitions, the agent's commit chains, a key's state and
//! journal, and dead letters.

use weir_engine::{Commit, CommittedReader, EventLog};

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
                head.position().to_string(),
                head.seq(),
                head.totals().events,
                head.totals().outputs,
                head.totals().dead_letters
            ),
            None => say!("{partition:>9}  {tail:>8}  {:>10}", "unclaimed"),
        }
    }
    if args.manifests {
        let partitions = args.partition.map_or(0..log.partitions(), |p| p..p + 1);
        for partition in partitions {
            print_commits(partition, &CommittedReader::new(log.storage().clone(), &agent, partition)?.commits().await?);
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

fn print_commits(partition: u32, commits: &[Commit]) {
    say!("\npartition {partition}: {} manifests", commits.len());
    say!("  {:>6}  {:<10}  {:>10}  {:>7}  {:>4}  {:>4}", "seq", "kind", "position", "outputs", "dead", "runs");
    for c in commits {
        say!(
            "  {:>6}  {:<10}  {:>10}  {:>7}  {:>4}  {:>4}",
            c.seq(),
            format!("{:?}", c.kind()).to_lowercase(),
            c.position().to_string(),
            c.outputs(),
            c.dead_letters(),
            c.state_runs()
        );
    }
}

/// The key's state at the head, and the journal entries of its calls that are still kept
/// (those of batches not yet collected).
async fn print_key(log: &EventLog, agent: &str, key: &str) -> Result<()> {
    let partition = log.partition_of(key);
    say!("\nkey {key} (partition {partition})");
    let reader = CommittedReader::new(log.storage().clone(), agent, partition)?;
    let state = reader.state(key).await?;
    match state {
        Some(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(json) => say!("  state: {json}"),
            Err(_) => say!("  state: {} bytes (not JSON)", bytes.len()),
        },
        None => say!("  state: none"),
    }
    let entries = reader.journal(key).await?;
    say!("  journal: {} entries", entries.len());
    for entry in entries {
        let branch =
            if entry.call.branch.is_empty() { String::new() } else { format!(" branch {}", entry.call.branch) };
        let outcome = serde_json::to_string(&entry.outcome).unwrap_or_default();
        say!("    event {}{branch} step {} `{}`: {outcome}", entry.call.event, entry.call.step, entry.name);
    }
    Ok(())
}
