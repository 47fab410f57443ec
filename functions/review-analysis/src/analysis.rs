//! The workflow: ask the model, check its answer, output the analysis.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_agent::{
    Action, ActionError, AgentError, ChatRequestEvent, ChatResponseEvent, Context, Event, InputEvent, OutputValidator,
    Prompt, WorkflowAgent,
};
use weir_engine::Rejected;
use weir_models::{ChatMessage, ChatModel, ModelConfig, Role};
use weir_tools::Tool;

use crate::notify::{NOTIFY_TOOL, notify_tool_from_env};
use crate::offline_model::OfflineReviewModel;

/// What the model must answer for each review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReviewAnalysis {
    /// The product's id, as in the review.
    pub id: String,
    /// 1 (very unsatisfied) to 5 (very satisfied).
    #[schemars(range(min = 1, max = 5))]
    pub score: u8,
    /// Short reasons for the score, from the review.
    pub reasons: Vec<String>,
}

const SYSTEM: &str = "You analyze product reviews. Score each review from 1 (very unsatisfied) to 5 \
(very satisfied) and give short reasons taken from the review. If the review complains about \
shipping (late delivery, damaged package, lost parcel), call `notify_shipping_manager` with the \
product id and a one-line summary before answering. Answer with only a JSON object \
{{\"id\": string, \"score\": integer 1-5, \"reasons\": [string]}}.";

const MODEL: &str = "reviewer";

/// The agent with the model and notify tool the process environment configures.
pub fn agent_from_env() -> Result<WorkflowAgent, AgentError> {
    agent_with_env(&|name| std::env::var(name).ok())
}

/// The agent with the model the variables of `env` configure (the function reads API keys
/// from a secret through it) and the notify tool of the process environment.
pub fn agent_with_env(env: &dyn Fn(&str) -> Option<String>) -> Result<WorkflowAgent, AgentError> {
    let model = ModelConfig::build_from_environment(env, || Arc::new(OfflineReviewModel)).map_err(model_error)?;
    tracing::info!(model = model.name(), "review analysis model");
    agent(model, notify_tool_from_env()?)
}

fn model_error(source: weir_models::ModelError) -> AgentError {
    AgentError::Model { model: MODEL.into(), source }
}

/// The agent with a given model and notify tool.
pub fn agent(model: Arc<dyn ChatModel>, notify: Arc<dyn Tool>) -> Result<WorkflowAgent, AgentError> {
    let prompt = Prompt::messages([
        (Role::System, SYSTEM.to_string()),
        (Role::User, "Product: {id}\nReview: {review}".to_string()),
    ]);
    WorkflowAgent::builder()
        .model(MODEL, model)
        .tool(notify)
        .prompt("review", prompt)
        .value(VALIDATOR, Arc::new(OutputValidator::of::<ReviewAnalysis>("review_analysis")?))
        .action(Action::new("analyze", analyze).on::<InputEvent>())
        .action(Action::new("report", report).on::<ChatResponseEvent>())
        .build()
}

/// The resource name of the analysis validator, built once with the agent.
const VALIDATOR: &str = "analysis_validator";

/// Asks the model about one review.
async fn analyze(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input = event.view::<InputEvent>()?;
    let messages = ctx.prompt("review")?.render_messages(&input.input)?;
    let schema = ctx.value::<OutputValidator>(VALIDATOR)?.schema().clone();
    ctx.send(ChatRequestEvent {
        model: MODEL.into(),
        messages,
        tools: vec![NOTIFY_TOOL.into()],
        output_schema: Some(schema),
        context: json!({"attempt": 0}),
    })?;
    Ok(())
}

/// Checks the answer: outputs it, asks again once with the problem, or dead-letters it with
/// the raw reply.
async fn report(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response = event.view::<ChatResponseEvent>()?;
    let reply = &response.message.content;
    let notified = response.messages.iter().any(|m| m.tool_calls.iter().any(|c| c.name == NOTIFY_TOOL));
    let validator = ctx.value::<OutputValidator>(VALIDATOR)?;
    match validator.check(reply) {
        Ok(mut analysis) => {
            analysis["shipping_complaint"] = json!(notified);
            ctx.output(&analysis)?;
        }
        Err(problem) if response.context["attempt"] == 0 => {
            let mut messages = response.messages.clone();
            messages
                .push(ChatMessage::user(format!("Your reply is invalid: {problem}. Reply again with only the JSON.")));
            let retry = ChatRequestEvent {
                model: response.model.clone(),
                messages,
                tools: vec![NOTIFY_TOOL.into()],
                output_schema: Some(validator.schema().clone()),
                context: json!({"attempt": 1}),
            };
            ctx.send(retry)?;
        }
        Err(problem) => return Err(Rejected::new(format!("invalid analysis, {problem}; raw reply: {reply}")).into()),
    }
    Ok(())
}
