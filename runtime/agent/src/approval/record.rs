//! Recording an answer to an approval request in the log, once per request, whoever sends it
//! (an approve or deny link through the HTTP ingest, `weir approvals`).

use weir_engine::{EventLog, LogEvent};

use super::{ApprovalAnswer, Decision};

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It is the request's answer (recorded now, or this same answer earlier).
    Answer(Decision),
    /// Another answer was recorded first; this one is refused.
    AnsweredAlready(Decision),
}

/// Appends `answer` to request `id` as a signal event of `key`, under the batch id
/// `approval:<agent>:<id>`: the log stores one answer per request, so whichever answer is
/// appended first is the request's, and every later one is refused with it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use weir_agent::approval::{ApprovalAnswer, Decision, Recorded, record_answer};
/// use weir_engine::{EventLog, Storage};
///
/// let log = EventLog::create(Storage::from_url("memory://").unwrap(), 4).await.unwrap();
/// let approve = ApprovalAnswer::approve("ana");
/// let deny = ApprovalAnswer::deny("bo", "not tonight");
/// assert_eq!(record_answer(&log, "ops", "job-7", "req-1", &approve).await.unwrap(), Recorded::Answer(Decision::Approve));
/// assert_eq!(record_answer(&log, "ops", "job-7", "req-1", &approve).await.unwrap(), Recorded::Answer(Decision::Approve));
/// assert_eq!(record_answer(&log, "ops", "job-7", "req-1", &deny).await.unwrap(), Recorded::AnsweredAlready(Decision::Approve));
/// # });
/// ```
pub async fn record_answer(
    log: &EventLog,
    agent: &str,
    key: &str,
    id: &str,
    answer: &ApprovalAnswer,
) -> weir_engine::Result<Recorded> {
    let event = LogEvent::json(key, &answer.signal(id).to_payload());
    let appended = log.append(&format!("approval:{agent}:{id}"), std::slice::from_ref(&event)).await?;
    // The batch id keeps the first answer: read back which one the log holds.
    let Some(at) = appended.first() else { return Ok(Recorded::Answer(answer.decision)) };
    let held = log.read_segment(at.partition, at.segment).await?.and_then(|segment| segment.events.into_iter().next());
    let decision = held
        .and_then(|first| serde_json::from_slice::<serde_json::Value>(&first.payload).ok())
        .and_then(|payload| weir_engine::Signal::from_payload(&payload)?.ok())
        .and_then(|signal| ApprovalAnswer::from_signal(&signal.payload).ok())
        .map(|first| first.decision)
        .unwrap_or(answer.decision);
    Ok(match decision == answer.decision {
        true => Recorded::Answer(decision),
        false => Recorded::AnsweredAlready(decision),
    })
}
