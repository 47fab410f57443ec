//! The product-suggestions agent: the second agent of Flink Agents' multi-agent quickstart.
//! It reads the review-analysis agent's outputs, keeps each product's rolling summary, and
//! now and then asks a model for improvement suggestions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_agent::{
    Action, ActionError, AgentError, ChatRequestEvent, ChatResponseEvent, Context, Event, InputEvent, OutputValidator,
    WorkflowAgent,
};
use weir_engine::Rejected;
use weir_models::{ChatMessage, ChatModel, ModelConfig};

use crate::offline_suggestions_model::OfflineSuggestionsModel;
use crate::product_summary::{AnalyzedReview, ProductSummary};

/// The advisor model's registered name.
pub const SUGGESTIONS_MODEL: &str = "advisor";
/// The short-term memory entry holding the product's [`ProductSummary`].
pub const SUMMARY: &str = "summary";
/// Suggestions are asked for every this many analyses of a product, unless configured.
pub const DEFAULT_SUGGEST_EVERY: u64 = 3;

const EVERY: &str = "suggest_every";
const VALIDATOR: &str = "suggestions_validator";

const SYSTEM: &str = "You advise a product team. From the rolling summary of a product's review \
analyses (score histogram, shipping complaints, recent reasons), suggest two to four concrete \
improvements, each one sentence. Answer with only a JSON object {\"suggestions\": [string]}.";

/// What the model must answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Suggestions {
    /// Concrete improvements, one sentence each.
    #[schemars(length(min = 1))]
    pub suggestions: Vec<String>,
}

/// The agent with the model the process environment configures (else the built-in offline
/// model), asking every `WEIR_SUGGEST_EVERY` analyses (default 3).
pub fn suggestions_agent_from_env() -> Result<WorkflowAgent, AgentError> {
    suggestions_agent_with_env(&|name| std::env::var(name).ok())
}

/// Like [`suggestions_agent_from_env`], with the variables of `env` (the function reads API
/// keys from a secret through it).
pub fn suggestions_agent_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<WorkflowAgent, AgentError> {
    let model_error = |source| AgentError::Model { model: SUGGESTIONS_MODEL.into(), source };
    let model = ModelConfig::build_from_environment(env, || Arc::new(OfflineSuggestionsModel)).map_err(model_error)?;
    let every = match env("WEIR_SUGGEST_EVERY") {
        Some(value) => value.trim().parse().map_err(|_| {
            AgentError::Other(format!("WEIR_SUGGEST_EVERY: `{value}` is not a whole number of analyses"))
        })?,
        None => DEFAULT_SUGGEST_EVERY,
    };
    tracing::info!(model = model.name(), every, "product suggestions model");
    suggestions_agent(model, every)
}

/// The agent with a given model, asking for suggestions every `every` analyses of a product
/// and whenever its average score fell by half a point since the last ones.
///
/// ```
/// use std::sync::Arc;
/// use weir_review_analysis::{OfflineSuggestionsModel, suggestions_agent};
///
/// let agent = suggestions_agent(Arc::new(OfflineSuggestionsModel), 3)?;
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
pub fn suggestions_agent(model: Arc<dyn ChatModel>, every: u64) -> Result<WorkflowAgent, AgentError> {
    WorkflowAgent::builder()
        .model(SUGGESTIONS_MODEL, model)
        .config(EVERY, every)
        .value(VALIDATOR, Arc::new(OutputValidator::of::<Suggestions>("suggestions")?))
        .action(Action::new("summarize", summarize).on::<InputEvent>())
        .action(Action::new("suggest", suggest).on::<ChatResponseEvent>())
        .build()
}

/// Adds the analysis to the product's summary; asks for suggestions when they are due.
async fn summarize(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let review: AnalyzedReview = serde_json::from_value(input.input)
        .map_err(|e| Rejected::new(format!("not a review analysis of key `{}`: {e}", input.key)))?;
    if !(1..=5).contains(&review.score) {
        return Err(Rejected::new(format!("score {} of `{}` is not 1 to 5", review.score, review.id)).into());
    }
    let mut summary = ctx.memory().get::<ProductSummary>(SUMMARY)?.unwrap_or_default();
    summary.record(&review);
    let every = ctx.config::<u64>(EVERY)?.unwrap_or(DEFAULT_SUGGEST_EVERY);
    if summary.suggestions_due(every) {
        summary.average_at_last_suggestions = Some(summary.average());
        let report = summary.report();
        let schema = ctx.value::<OutputValidator>(VALIDATOR)?.schema().clone();
        ctx.send(ChatRequestEvent {
            model: SUGGESTIONS_MODEL.into(),
            messages: vec![
                ChatMessage::system(SYSTEM),
                ChatMessage::user(format!("Product: {}\nSummary: {report}", review.id)),
            ],
            tools: Vec::new(),
            output_schema: Some(schema),
            context: json!({"id": review.id, "summary": report}),
        })?;
    }
    ctx.memory().set(SUMMARY, &summary)?;
    Ok(())
}

/// Outputs the suggestions with the summary they answer; a reply that is not suggestions
/// dead-letters the analysis with the raw reply.
async fn suggest(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: ChatResponseEvent = event.decode()?;
    let reply = &response.message.content;
    let validator = ctx.value::<OutputValidator>(VALIDATOR)?;
    let id = response.context["id"].as_str().unwrap_or_default();
    let suggestions = validator
        .check(reply)
        .map_err(|problem| Rejected::new(format!("invalid suggestions for `{id}`, {problem}; raw reply: {reply}")))?;
    let output = json!({
        "id": id,
        "summary": response.context["summary"],
        "suggestions": suggestions["suggestions"],
    });
    ctx.output(&output)?;
    Ok(())
}

/// The product id and summary of the user message the agent sends, for offline models.
pub(crate) fn parse_request(content: &str) -> Option<(String, Value)> {
    let (product, summary) = content.strip_prefix("Product: ")?.split_once("\nSummary: ")?;
    Some((product.to_string(), serde_json::from_str(summary).ok()?))
}
