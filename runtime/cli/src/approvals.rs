//! `weir approvals`: lists the agent's tool calls that wait for approval, and approves or
//! denies one (docs/waits.md, "Approvals"). An answer is recorded in the log once per
//! request, as a link's would be; `weir run` (or the process function) then resumes the call.

use serde_json::{Value, json};
use weir_agent::approval::{ApprovalAnswer, Recorded, record_answer};
use weir_engine::{CommittedReader, WaitingKey};
use weir_functions::dispatch::ApprovalLinks;

use crate::agents::AgentChoice;
use crate::error::{CliError, Result, write_out};
use crate::store::Store;
use crate::table;

/// Options of `weir approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    action: ApprovalsAction,
}

#[derive(Debug, clap::Subcommand)]
enum ApprovalsAction {
    /// Lists the calls waiting for approval: request id, key, tool, arguments, why, expiry.
    List {
        /// One JSON object per request instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approves request ID: the held call runs once.
    Approve {
        /// The request's id, as `list` shows it.
        id: String,
        /// Who approves [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// Denies request ID: the call does not run, and the model hears why.
    Deny {
        /// The request's id, as `list` shows it.
        id: String,
        /// Why, for the model and the record.
        #[arg(long)]
        reason: String,
        /// Who denies [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
}

/// A waiting approval request, with its partition.
pub(crate) struct Pending {
    partition: u32,
    wait: WaitingKey,
}

impl Pending {
    fn request(&self) -> &Value {
        self.wait.notice.as_ref().and_then(|n| n.get("approval_request")).unwrap_or(&Value::Null)
    }

    pub(crate) fn id(&self) -> &str {
        self.wait.correlation_id.as_deref().unwrap_or_default()
    }

    /// One line: id, key, tool, arguments and why.
    pub(crate) fn describe(&self) -> String {
        let request = self.request();
        format!(
            "{} (key {}): {} {} ({})",
            self.id(),
            self.wait.key,
            request["tool"].as_str().unwrap_or_default(),
            request["arguments"],
            request["reason"].as_str().unwrap_or_default()
        )
    }

    /// Its approve and deny links; they expire with the wait.
    pub(crate) fn links(&self, links: &ApprovalLinks, agent: &str) -> (String, String) {
        links.links(agent, &self.wait.key, self.id(), self.wait.due_ms.unwrap_or(u64::MAX))
    }
}

/// Runs `weir approvals`.
pub async fn run(args: ApprovalsArgs, store: Store, agent: AgentChoice) -> Result<()> {
    let log = store.log().await?;
    let agent = agent.name().await?;
    let pending = pending(&store, &agent, log.partitions()).await?;
    let user = || std::env::var("USER").unwrap_or_else(|_| "weir approvals".into());
    let (id, answer) = match args.action {
        ApprovalsAction::List { json } => {
            let text = if json { jsonl(&pending) } else { listing(&pending) };
            return write_out(text.as_bytes());
        }
        ApprovalsAction::Approve { id, by } => (id, ApprovalAnswer::approve(by.unwrap_or_else(user))),
        ApprovalsAction::Deny { id, reason, by } => (id, ApprovalAnswer::deny(by.unwrap_or_else(user), reason)),
    };
    let Some(request) = pending.iter().find(|p| p.id() == id) else {
        return Err(CliError::Input(format!(
            "no call of {agent} waits for approval `{id}`: it was answered, timed out or never asked (`weir approvals list`)"
        )));
    };
    match record_answer(&log, &agent, &request.wait.key, &id, &answer).await? {
        Recorded::Answer(decision) => {
            say!("{id}: {} recorded for key {}; `weir run` resumes the call", json!(decision), request.wait.key);
            Ok(())
        }
        Recorded::AnsweredAlready(earlier) => {
            Err(CliError::Input(format!("{id} was answered already ({}); this answer is refused", json!(earlier))))
        }
    }
}

/// Every call of `agent` waiting for approval, partition by partition.
pub(crate) async fn pending(store: &Store, agent: &str, partitions: u32) -> Result<Vec<Pending>> {
    let mut pending = Vec::new();
    for partition in 0..partitions {
        let reader = CommittedReader::new(store.storage.clone(), agent, partition)?;
        let approvals = reader.waits().await?.into_iter().filter(|w| w.signal_type.as_deref() == Some("approval"));
        pending.extend(approvals.map(|wait| Pending { partition, wait }));
    }
    Ok(pending)
}

fn jsonl(pending: &[Pending]) -> String {
    let mut text = String::new();
    for p in pending {
        let line = json!({
            "id": p.id(),
            "partition": p.partition,
            "key": p.wait.key,
            "tool": p.request()["tool"],
            "arguments": p.request()["arguments"],
            "reason": p.request()["reason"],
            "since_ms": p.wait.since_ms,
            "expires_at_ms": p.wait.due_ms,
            "queued": p.wait.queued,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// The widest arguments or a reason are shown in a table.
const TABLE_CELL_WIDTH: usize = 40;

fn listing(pending: &[Pending]) -> String {
    let rows: Vec<[String; 6]> = pending
        .iter()
        .map(|p| {
            [
                p.id().to_string(),
                p.wait.key.clone(),
                p.request()["tool"].as_str().unwrap_or_default().to_string(),
                table::shorten(&p.request()["arguments"].to_string(), TABLE_CELL_WIDTH),
                table::shorten(p.request()["reason"].as_str().unwrap_or_default(), TABLE_CELL_WIDTH),
                p.wait.due_ms.map(|ms| ms.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    table::render(["id", "key", "tool", "arguments", "reason", "expires_at_ms"], &rows, &[5])
}
