//! Model calls through providers' batch APIs (docs/batch-calls.md): a call waits durably on
//! its key, [`tend`] submits the waiting calls together and polls them, and their results come
//! back as signals that resume the keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_engine::{BatchSubmission, BatchSubmissions, Clock, CommittedReader, Engine, LogEvent, Signal, WaitingKey};
use weir_models::{BatchApi, BatchRequest, BatchStatus, ChatRequest, ChatResponse};

use crate::resources::Resources;

/// The signal type of batch results.
pub const MODEL_BATCH_SIGNAL: &str = "model_batch";

/// The span attribute that marks a model call answered through the provider's batch API, at
/// the batch price ([`Price::batch`](weir_models::Price::batch)).
pub const BATCH_ATTRIBUTE: &str = "weir.batch";

/// The field of a batch call's held request, in its suspension.
const HELD_FIELD: &str = "model_batch_request";

/// How long a batch call waits before it falls back to an ordinary call: the providers'
/// completion window (24 hours), and an hour for the polls that bring its result in.
pub(crate) const BATCH_WAIT: Duration = Duration::from_secs(25 * 3600);

/// A batch call as its suspension holds it, for [`tend`] to submit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeldCall {
    /// The agent's name for the model.
    pub(crate) model: String,
    pub(crate) request: ChatRequest,
}

impl HeldCall {
    pub(crate) fn to_held(&self) -> Value {
        serde_json::json!({ HELD_FIELD: self })
    }

    fn from_waiting(waiting: &WaitingKey) -> Option<(String, HeldCall)> {
        if waiting.signal_type.as_deref() != Some(MODEL_BATCH_SIGNAL) {
            return None;
        }
        let held = serde_json::from_value(waiting.notice.as_ref()?.get(HELD_FIELD)?.clone()).ok()?;
        Some((waiting.correlation_id.clone()?, held))
    }
}

/// A batch call's result: what its signal carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BatchAnswer {
    /// The provider batch that answered.
    pub(crate) batch: String,
    /// The reply; absent when the provider could not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) response: Option<ChatResponse>,
    /// Why there is no reply: the call falls back to an ordinary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

impl BatchAnswer {
    fn signal(&self, id: &str) -> Signal {
        Signal::new(MODEL_BATCH_SIGNAL, id, serde_json::to_value(self).expect("an answer serializes"))
    }

    /// The answer a signal's payload carries, or what is wrong with it.
    pub(crate) fn from_signal(payload: &Value) -> Result<BatchAnswer, String> {
        serde_json::from_value(payload.clone()).map_err(|e| format!("the batch result cannot be read: {e}"))
    }
}

/// What one [`tend`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tended {
    /// Provider batches submitted.
    pub submitted: u64,
    /// Results appended to the log, as signals.
    pub answered: u64,
    /// Provider batches polled that were still at work.
    pub running: u64,
}

/// The requests of `record` whose keys still wait, by call id.
fn still_waiting(
    record: &BatchSubmission,
    waiting: &BTreeMap<String, (String, HeldCall)>,
) -> BTreeMap<String, ChatRequest> {
    record.calls.keys().filter_map(|id| Some((id.clone(), waiting.get(id)?.1.request.clone()))).collect()
}

/// Submits the calls the agent's keys wait on to their providers' batch APIs, and appends the
/// results of ended provider batches to the log, partition by partition
/// (docs/batch-calls.md, "Submitting and polling"). A provider that cannot be reached leaves
/// its calls for the next time; a model that has no batch API any more answers its waiting
/// calls with an error, so that they fall back to ordinary calls.
pub(crate) async fn tend(engine: &Engine, resources: &Resources, clock: &dyn Clock) -> weir_engine::Result<Tended> {
    let log = engine.log().await?;
    let mut tended = Tended::default();
    for partition in 0..log.partitions() {
        let reader = CommittedReader::new(log.storage().clone(), engine.agent_name(), partition)?;
        let waiting: BTreeMap<String, (String, HeldCall)> = reader
            .waits()
            .await?
            .iter()
            .filter_map(|w| HeldCall::from_waiting(w).map(|(id, held)| (id, (w.key.clone(), held))))
            .collect();
        if waiting.is_empty() {
            // Nothing to submit, and no result would find a key to resume: not even listed.
            continue;
        }
        let submissions = BatchSubmissions::new(log.storage().clone(), engine.agent_name(), partition)?;
        let records = submissions.list().await?;
        // Calls an ended record answered already: a duplicate submission's results for them
        // would only reach keys that resumed.
        let mut answered: BTreeSet<String> =
            records.iter().filter(|r| r.ended_ms.is_some()).flat_map(|r| r.calls.keys().cloned()).collect();
        for record in records.iter().filter(|r| r.ended_ms.is_none()) {
            let results = match api(resources, &record.model) {
                Err(why) => BTreeMap::from_iter(record.calls.keys().map(|id| (id.clone(), Err(why.clone())))),
                Ok(api) => match api.poll(&record.provider_batch, &still_waiting(record, &waiting)).await {
                    Ok(BatchStatus::Running(status)) => {
                        tracing::debug!(batch = %record.provider_batch, %status, "provider batch still at work");
                        tended.running += 1;
                        continue;
                    }
                    Ok(BatchStatus::Ended { status, mut results }) => {
                        let unanswered =
                            format!("batch {} ended `{status}` without answering it", record.provider_batch);
                        record
                            .calls
                            .keys()
                            .map(|id| (id.clone(), results.remove(id).unwrap_or(Err(unanswered.clone()))))
                            .collect()
                    }
                    Err(error) => {
                        tracing::warn!(batch = %record.provider_batch, %error, "provider batch not polled; next time");
                        continue;
                    }
                },
            };
            let answers: Vec<LogEvent> = results
                .into_iter()
                .filter(|(id, _)| waiting.contains_key(id) && !answered.contains(id))
                .map(|(id, result)| {
                    let (response, error) = match result {
                        Ok(response) => (Some(response), None),
                        Err(error) => (None, Some(error)),
                    };
                    let answer = BatchAnswer { batch: record.provider_batch.clone(), response, error };
                    LogEvent::json(waiting[&id].0.clone(), &answer.signal(&id).to_payload())
                })
                .collect();
            if !answers.is_empty() {
                // One producer batch per provider batch: a poll again after a crash appends nothing new.
                log.append(&format!("model-batch:{}:{}", engine.agent_name(), record.provider_batch), &answers).await?;
                tended.answered += answers.len() as u64;
            }
            submissions.end(record, clock.now_ms()).await?;
            answered.extend(record.calls.keys().cloned());
        }
        // Ended records none of whose calls waits any more are of no more use.
        for record in records.iter().filter(|r| r.ended_ms.is_some()) {
            if !record.calls.keys().any(|id| waiting.contains_key(id)) {
                submissions.remove(record).await?;
            }
        }
        let submitted: BTreeSet<&String> = records.iter().flat_map(|r| r.calls.keys()).collect();
        let mut by_model: BTreeMap<&str, Vec<(&String, &String, &ChatRequest)>> = BTreeMap::new();
        for (id, (key, held)) in waiting.iter().filter(|(id, _)| !submitted.contains(id)) {
            by_model.entry(held.model.as_str()).or_default().push((id, key, &held.request));
        }
        for (model, calls) in by_model {
            tended.submitted += submit(engine, &submissions, resources, clock, model, calls).await?;
        }
    }
    Ok(tended)
}

/// Submits one model's calls as one provider batch and records it; 1 if it did. A model
/// without a batch API answers them with an error instead, so that they fall back.
async fn submit(
    engine: &Engine,
    submissions: &BatchSubmissions,
    resources: &Resources,
    clock: &dyn Clock,
    model: &str,
    calls: Vec<(&String, &String, &ChatRequest)>,
) -> weir_engine::Result<u64> {
    let api = match api(resources, model) {
        Ok(api) => api,
        Err(why) => {
            let answers: Vec<LogEvent> = calls
                .iter()
                .map(|(id, key, _)| {
                    let answer = BatchAnswer { batch: String::new(), response: None, error: Some(why.clone()) };
                    LogEvent::json(key.to_string(), &answer.signal(id).to_payload())
                })
                .collect();
            let ids: Vec<&str> = calls.iter().map(|(id, _, _)| id.as_str()).collect();
            let batch_id = format!("model-batch:{}:unbatched:{}", engine.agent_name(), ids.join(","));
            engine.log().await?.append(&batch_id, &answers).await?;
            return Ok(0);
        }
    };
    let requests: Vec<BatchRequest> = calls
        .iter()
        .map(|(id, _, request)| BatchRequest { custom_id: id.to_string(), request: (*request).clone() })
        .collect();
    let provider_batch = match api.submit(&requests).await {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(model, calls = requests.len(), %error, "batch not submitted; next time");
            return Ok(0);
        }
    };
    let submission = BatchSubmission {
        model: model.to_string(),
        provider_batch: provider_batch.clone(),
        calls: calls.iter().map(|(id, key, _)| (id.to_string(), key.to_string())).collect(),
        submitted_ms: clock.now_ms(),
        ended_ms: None,
    };
    if !submissions.create(&submission).await? {
        // Another invocation submitted the same calls first: its batch answers them, and
        // this one's results are of no use (docs/batch-calls.md).
        tracing::info!(model, batch = %provider_batch, "the same calls were submitted by another invocation");
        return Ok(0);
    }
    tracing::info!(model, batch = %provider_batch, calls = requests.len(), "batch submitted");
    Ok(1)
}

fn api(resources: &Resources, model: &str) -> Result<Arc<dyn BatchApi>, String> {
    let client = resources.model(model).map_err(|e| e.to_string())?;
    client.batch().ok_or_else(|| format!("model `{model}` is not configured for batch calls any more"))
}
