//! Every object name weir writes under its root, formatted and parsed here and nowhere else
//! (docs/storage-format.md, "Object layout"). Names are relative to the root, except those
//! below a partition's directory (`PartitionDir::path` joins them to it), as each function
//! says. Public are only the names another crate keeps (the dispatcher's cursor).
//!
//! Zero-padded numbers make lexical order the numeric order, so a LIST with a start-after
//! offset returns what follows a known point.
//!
//! ```
//! use weir_engine::layout;
//! assert_eq!(layout::dispatch_dir("reviews", "webhook-1", 3), "agents/reviews/dispatch/webhook-1/p00003");
//! assert_eq!(layout::dispatch_cursor_number(&layout::dispatch_cursor(7)["cursor/".len()..]), Some(7));
//! ```

use crate::position::Position;

/// The log's configuration.
pub(crate) const LOG_CONFIG: &str = "log/config.json";
/// Appenders' create-if-absent probe.
pub(crate) const LOG_PROBE: &str = "log/create-if-absent.probe";

/// A partition of the log.
pub(crate) fn log_partition(partition: u32) -> String {
    format!("log/p{partition:05}")
}

/// The folder of a log partition's segments.
pub(crate) fn segments(partition: u32) -> String {
    format!("{}/seg", log_partition(partition))
}

/// Segment `seq` of a log partition.
pub(crate) fn segment(partition: u32, seq: u64) -> String {
    format!("{}/{seq:020}.parquet", segments(partition))
}

/// The sequence number of a segment, from its file name.
pub(crate) fn segment_seq(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".parquet")?.parse().ok()
}

/// The claims of one producer batch (`hash`: of its id and the partition).
pub(crate) fn batch_claims(partition: u32, hash: u64) -> String {
    format!("{}/batch/{hash:016x}", log_partition(partition))
}

/// A producer batch's claim for its `attempt`-th segment.
pub(crate) fn batch_claim(partition: u32, hash: u64, attempt: u32) -> String {
    format!("{}/{attempt:04}.json", batch_claims(partition, hash))
}

/// A recent segment number of a log partition.
pub(crate) fn tail_hint(partition: u32) -> String {
    format!("{}/tail-hint.json", log_partition(partition))
}

/// The folder of every agent's directory.
pub(crate) const AGENTS: &str = "agents";

/// Everything of one agent.
pub(crate) fn agent_dir(agent: &str) -> String {
    format!("{AGENTS}/{agent}")
}

/// The folder of every shadow's namespace (`docs/replay.md`).
pub(crate) const SHADOWS: &str = "shadows";

/// The root of shadow `shadow`: below it, the layout of the production root but the log.
pub(crate) fn shadow_root(shadow: &str) -> String {
    format!("{SHADOWS}/{shadow}")
}

/// Below a shadow's root: its plan.
pub(crate) const SHADOW_PLAN: &str = "replay.json";

/// An engine's create-if-absent probe, in its agent's directory.
pub(crate) fn agent_probe(agent: &str) -> String {
    format!("{}/create-if-absent.probe", agent_dir(agent))
}

/// One agent's processing of one partition: the directory the names below are relative to.
pub(crate) fn partition_dir(agent: &str, partition: u32) -> String {
    format!("{}/p{partition:05}", agent_dir(agent))
}

/// The agent budget's ledger for one period: a chain of grants (docs/observability.md,
/// "Budgets per agent").
pub(crate) fn budget_ledger(agent: &str, period: u64) -> String {
    format!("{}/budget/{period:020}", agent_dir(agent))
}

/// Link `seq` of a period's budget ledger.
pub(crate) fn budget_grant(agent: &str, period: u64, seq: u64) -> String {
    format!("{}/{seq:020}.json", budget_ledger(agent, period))
}

/// The number of a budget ledger's link, from its file name.
pub(crate) fn budget_grant_seq(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".json")?.parse().ok()
}

/// The folder of an agent's usage records: what each invocation of its functions spent.
pub(crate) fn usage_dir(agent: &str) -> String {
    format!("{}/usage", agent_dir(agent))
}

/// The usage record of one invocation, started at `started_ms` (so that records list in
/// time order and a LIST from a time reads only what follows it), by `nonce`.
pub(crate) fn usage_record(agent: &str, started_ms: u64, nonce: &str) -> String {
    format!("{}/{}", usage_dir(agent), usage_record_name(started_ms, nonce))
}

/// A usage record's file name, without its folder: `<started_ms:020>-<nonce>.json`.
pub(crate) fn usage_record_name(started_ms: u64, nonce: &str) -> String {
    format!("{started_ms:020}-{nonce}.json")
}

/// When a usage record's invocation started, from its file name.
pub(crate) fn usage_record_started_ms(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".json")?.split('-').next()?.parse().ok()
}

/// A dispatcher's cursor directory for one sink and partition.
pub fn dispatch_dir(agent: &str, sink_id: &str, partition: u32) -> String {
    format!("{}/dispatch/{sink_id}/p{partition:05}", agent_dir(agent))
}

/// Relative to a [`dispatch_dir`]: the folder of the cursor chain.
pub const DISPATCH_CURSORS: &str = "cursor";

/// Link `n` of a dispatcher's cursor chain, relative to its [`dispatch_dir`].
pub fn dispatch_cursor(n: u64) -> String {
    format!("{DISPATCH_CURSORS}/{n:020}.json")
}

/// The number of a dispatcher's cursor link, from its file name.
pub fn dispatch_cursor_number(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".json")?.parse().ok()
}

/// Relative to a [`dispatch_dir`]: a recent link of the cursor chain.
pub const DISPATCH_CURSOR_HINT: &str = "cursor-hint.json";

/// Below a partition's directory: the commit chain's folder.
pub(crate) const MANIFESTS: &str = "manifest";
/// Below a partition's directory: the state runs' folder.
pub(crate) const STATE: &str = "state";
/// Below a partition's directory: the committed outputs' folder.
pub(crate) const OUTPUTS: &str = "out";
/// Below a partition's directory: the dead letters' folder.
pub(crate) const DEAD_LETTERS: &str = "dead";
/// Below a partition's directory: the committed traces' folder.
pub(crate) const TRACES: &str = "trace";
/// Below a partition's directory: the waits objects' folder (docs/waits.md).
pub(crate) const WAITS: &str = "waits";
/// Below a partition's directory: the records of calls submitted to providers' batch APIs
/// (docs/batch-calls.md).
pub(crate) const BATCH_SUBMISSIONS: &str = "model-batches";
/// Below a partition's directory: the action journal's folder.
pub(crate) const JOURNAL: &str = "journal";
/// Below a partition's directory: the at-most-once intents' folder.
pub(crate) const INTENTS: &str = "intent";
/// Below a partition's directory: a recent head of the chain.
pub(crate) const HEAD_HINT: &str = "head-hint.json";
/// Below a partition's directory: the lowest manifest still valid.
pub(crate) const GC_BOUNDARY: &str = "gc-boundary.json";

/// Below a partition's directory: manifest `seq`.
pub(crate) fn manifest(seq: u64) -> String {
    format!("{MANIFESTS}/{seq:020}.json")
}

/// The sequence number of a manifest, from its file name.
pub(crate) fn manifest_seq(file_name: &str) -> Option<u64> {
    file_name.strip_suffix(".json")?.parse().ok()
}

/// Below a partition's directory: the state run a commit (`seq`, by `nonce`) writes.
pub(crate) fn state_run(seq: u64, nonce: &str) -> String {
    format!("{STATE}/{seq:020}-{nonce}.run")
}

/// Below a partition's directory: a commit's outputs.
pub(crate) fn outputs(seq: u64, nonce: &str) -> String {
    format!("{OUTPUTS}/{seq:020}-{nonce}.parquet")
}

/// Below a partition's directory: a commit's dead letters.
pub(crate) fn dead_letters(seq: u64, nonce: &str) -> String {
    format!("{DEAD_LETTERS}/{seq:020}-{nonce}.parquet")
}

/// Below a partition's directory: a commit's trace.
pub(crate) fn trace(seq: u64, nonce: &str) -> String {
    format!("{TRACES}/{seq:020}-{nonce}.parquet")
}

/// Below a partition's directory: the waits object a commit writes.
pub(crate) fn waits(seq: u64, nonce: &str) -> String {
    format!("{WAITS}/{seq:020}-{nonce}.json")
}

/// Below a partition's directory: the record of the batch submission whose model and calls
/// hash to `hash`.
pub(crate) fn batch_submission(hash: u128) -> String {
    format!("{BATCH_SUBMISSIONS}/{hash:032x}.json")
}

/// The manifest sequence number a commit's file (run, outputs, dead letters) is named after.
pub(crate) fn commit_file_seq(file_name: &str) -> Option<u64> {
    file_name.split('-').next()?.parse().ok()
}

/// A position as a path segment whose lexical order is the log order.
pub(crate) fn position_name(position: Position) -> String {
    format!("{:020}-{:06}", position.segment, position.index)
}

/// The position a path segment names.
pub(crate) fn parse_position(name: &str) -> Option<Position> {
    let (segment, index) = name.split_once('-')?;
    Some(Position::new(segment.parse().ok()?, index.parse().ok()?))
}

/// Below a partition's directory: the journal of the batch that starts at `position`.
pub(crate) fn journal_dir(position: Position) -> String {
    format!("{JOURNAL}/{}", position_name(position))
}

/// The `n`-th group commit of an invocation's journal for the batch at `position`.
pub(crate) fn journal_file(position: Position, nonce: &str, n: u32) -> String {
    format!("{}/{nonce}-{n:06}.jnl", journal_dir(position))
}

/// The entries a commit (`seq`) carries on for events beyond its batch, under the position
/// it moved to.
pub(crate) fn journal_carry(position: Position, nonce: &str, seq: u64) -> String {
    format!("{}/{nonce}-carry-{seq:020}.jnl", journal_dir(position))
}

/// Below a partition's directory: the intents of calls made for events at `position`.
pub(crate) fn intent_dir(position: Position) -> String {
    format!("{INTENTS}/{}", position_name(position))
}

/// The intent object of one at-most-once call.
pub(crate) fn intent(position: Position, idempotency_key: &str) -> String {
    format!("{}/{idempotency_key}.json", intent_dir(position))
}

/// The position of a journal or intent file, from its name relative to the partition's
/// directory (`journal/<position>/…`).
pub(crate) fn prefix_position(relative: &str) -> Option<Position> {
    parse_position(relative.split('/').nth(1)?)
}
