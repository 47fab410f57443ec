//! The agent: screen every transaction against the card's profile; investigate only the
//! unusual ones with the analyst model and its tools.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weir_agent::{
    Action, ActionError, AgentError, ArgumentSource, ChatRequestEvent, Context, Event, InputEvent, MemorySetConfig,
    OutputValidator, ToolBinding, WorkflowAgent,
};
use weir_engine::Rejected;
use weir_models::{ChatMessage, ChatModel, ModelConfig, Role};

use crate::offline_model::OfflineFraudModel;
use crate::profile::CardProfile;
use crate::tools::{CHECK_BLOCKLIST, FraudTools, HOLD_CARD, LOOKUP_MERCHANT, ReferenceData};
use crate::transaction::{Decision, FraudDecision, Transaction, Verdict};

/// The analyst model's registered name.
pub const MODEL: &str = "analyst";
/// The short-term memory entry holding the card's [`CardProfile`].
pub const PROFILE: &str = "profile";
/// How long a card's profile is kept after its last transaction.
pub const PROFILE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// The long-term memory set of the card's past decisions on unusual transactions.
pub const DECISIONS: &str = "decisions";
/// How many past decisions a card keeps; the oldest go first.
const DECISIONS_KEPT: usize = 50;
/// How many past decisions the analyst sees.
const DECISIONS_RECALLED: usize = 5;

const VALIDATOR: &str = "verdict_validator";
/// How often an answer that is not a verdict is sent back before the input is dead-lettered.
const MAX_OUTPUT_RETRIES: u32 = 1;

const SYSTEM: &str = "You are a card-fraud analyst. A transaction was flagged by the screening rules; \
the case lists the anomalies and the card's history. Check the merchant with `check_blocklist` and \
`lookup_merchant`. If the evidence shows fraud (a blocklisted or high-risk merchant together with the \
anomalies), call `hold_card` once with your reason, then decide `hold`. If it is doubtful, decide \
`review`; if the anomalies are explained, `approve`. Answer with only a JSON object \
{\"decision\": \"approve\" | \"review\" | \"hold\", \"reason\": string}.";

/// The agent with the model the process environment configures (else the built-in offline
/// model), the sample reference data, and `hold_card` from `WEIR_HOLD_CARD_URL`.
pub fn agent_from_env() -> Result<WorkflowAgent, AgentError> {
    agent_with_env(&|name| std::env::var(name).ok())
}

/// Like [`agent_from_env`], with the model the variables of `env` configure (the function
/// reads API keys from a secret through it).
pub fn agent_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<WorkflowAgent, AgentError> {
    let model_error = |source| AgentError::Model { model: MODEL.into(), source };
    let model = ModelConfig::build_from_environment(env, || Arc::new(OfflineFraudModel)).map_err(model_error)?;
    tracing::info!(model = model.name(), "fraud analyst model");
    agent(model, FraudTools::from_env(ReferenceData::sample())?)
}

/// The agent with a given analyst model and tools. `hold_card`'s `card_id` and `amount` are
/// hidden from the model and filled from the event's key and transaction; holds wait for
/// approval as `tools.hold_approval` says.
///
/// ```
/// use std::sync::Arc;
/// use weir_fraud_detection::{FraudTools, OfflineFraudModel, ReferenceData, agent};
///
/// let tools = FraudTools::from_env(ReferenceData::sample())?;
/// let agent = agent(Arc::new(OfflineFraudModel), tools)?;
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
pub fn agent(model: Arc<dyn ChatModel>, tools: FraudTools) -> Result<WorkflowAgent, AgentError> {
    let validator = OutputValidator::of::<Verdict>("verdict")?;
    let hold_card = ToolBinding::new(tools.hold_card)
        .hide("card_id", ArgumentSource::Key)
        .hide("amount", ArgumentSource::Context("/transaction/amount".into()));
    let hold_card = match tools.hold_approval {
        Some(approval) => hold_card.require_approval(approval),
        None => hold_card,
    };
    WorkflowAgent::builder()
        .model(MODEL, model)
        .tool(tools.check_blocklist)
        .tool(tools.lookup_merchant)
        .tool_binding(hold_card)
        .value(VALIDATOR, Arc::new(validator))
        .max_chat_steps(8)
        .memory_ttl(PROFILE_TTL)
        .memory_set(
            DECISIONS,
            MemorySetConfig {
                capacity: Some(DECISIONS_KEPT),
                ttl_ms: Some(PROFILE_TTL.as_millis() as u64),
                ..Default::default()
            },
        )
        .action(Action::new("screen", screen).on::<InputEvent>())
        .build()
}

/// Updates the card's profile and decides: a held card stays held, an ordinary transaction
/// is approved without a model call, an unusual one goes to the analyst.
async fn screen(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let transaction: Transaction = serde_json::from_value(input.input)
        .map_err(|e| Rejected::new(format!("not a transaction of key `{}`: {e}", input.key)))?;
    let history = ctx.memory().get::<CardProfile>(PROFILE)?.unwrap_or_default();
    let mut profile = history.clone();
    profile.record(&transaction);
    let anomalies = history.anomalies(&transaction);
    let (decision, reason) = if let Some(since) = &history.held_since {
        (Decision::Hold, format!("the card is held since transaction {since}"))
    } else if anomalies.is_empty() {
        (Decision::Approve, "no anomaly: usual velocity, amount and place".to_string())
    } else {
        // What was decided before about this card, most like this merchant first: a repeat of
        // a reviewed pattern reads differently from a first.
        let past = ctx.recall(DECISIONS, &transaction.merchant, DECISIONS_RECALLED).await?;
        let past: Vec<String> = past.into_iter().map(|memory| memory.text).collect();
        let (verdict, held) = investigate(ctx, &transaction, &history, &anomalies, &past).await?;
        if held {
            profile.held_since = Some(transaction.transaction_id.clone());
        }
        let (decision, reason) = match (held, verdict.decision) {
            (true, _) => (Decision::Hold, verdict.reason),
            (false, Decision::Hold) => (Decision::Review, format!("hold decided but not placed: {}", verdict.reason)),
            (false, decision) => (decision, verdict.reason),
        };
        let text = format!(
            "{} {:?} at {} in {}: {}",
            transaction.transaction_id, decision, transaction.merchant, transaction.city, reason
        )
        .to_lowercase();
        let metadata = BTreeMap::from([("merchant".to_string(), transaction.merchant.clone())]);
        ctx.remember(DECISIONS, text, metadata).await?;
        (decision, reason)
    };
    ctx.memory().set(PROFILE, &profile)?;
    ctx.output(&FraudDecision { card: input.key, transaction_id: transaction.transaction_id, decision, reason })?;
    Ok(())
}

/// Asks the analyst until it answers with a verdict; whether it held the card.
async fn investigate(
    ctx: &Context<'_>,
    transaction: &Transaction,
    history: &CardProfile,
    anomalies: &[String],
    past_decisions: &[String],
) -> Result<(Verdict, bool), ActionError> {
    let case = json!({
        "transaction": transaction,
        "anomalies": anomalies,
        "card_history": {
            "transactions": history.count,
            "average_amount": (history.average_amount * 100.0).round() / 100.0,
            "recent_places": history.places,
            "past_decisions": past_decisions,
        },
    });
    let validator = ctx.value::<OutputValidator>(VALIDATOR)?;
    let mut request = ChatRequestEvent {
        model: MODEL.into(),
        messages: vec![ChatMessage::system(SYSTEM), ChatMessage::user(format!("Case: {case}"))],
        tools: vec![CHECK_BLOCKLIST.into(), LOOKUP_MERCHANT.into(), HOLD_CARD.into()],
        output_schema: Some(validator.schema().clone()),
        // Where `hold_card`'s hidden amount comes from: the model cannot change it.
        context: json!({"transaction": transaction}),
    };
    let mut held = false;
    let mut attempt = 0;
    loop {
        let conversation = ctx.converse(&request).await?;
        held |= card_was_held(&conversation.messages);
        let reply = &conversation.message.content;
        let verdict = validator.check(reply).and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()));
        match verdict {
            Ok(verdict) => return Ok((verdict, held)),
            Err(problem) if attempt < MAX_OUTPUT_RETRIES => {
                attempt += 1;
                request.messages = conversation.messages;
                request.messages.push(ChatMessage::user(format!(
                    "Your reply is invalid: {problem}. Reply again with only the JSON."
                )));
            }
            Err(problem) => {
                let id = &transaction.transaction_id;
                return Err(Rejected::new(format!("invalid verdict on {id}, {problem}; raw reply: {reply}")).into());
            }
        }
    }
}

/// Whether a `hold_card` call in the conversation succeeded.
fn card_was_held(messages: &[ChatMessage]) -> bool {
    let holds = messages.iter().flat_map(|m| &m.tool_calls).filter(|c| c.name == HOLD_CARD);
    holds.into_iter().any(|call| {
        messages.iter().any(|m| m.role == Role::Tool && m.tool_call_id.as_ref() == Some(&call.id) && !m.is_error)
    })
}
