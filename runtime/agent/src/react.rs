//! ReAct agents: a prompt, tools and an optional output schema, looped by the chat action.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use weir_engine::Rejected;
use weir_models::{ChatMessage, ChatModel, OutputSchema, Role};
use weir_tools::Tool;

use crate::action::{Action, ActionError, Handler};
use crate::context::Context;
use crate::error::AgentError;
use crate::event::Event;
use crate::events::{ChatRequestEvent, ChatResponseEvent, InputEvent};
use crate::output::OutputValidator;
use crate::prompt::Prompt;
use crate::tool_binding::ToolBinding;
use crate::workflow::{WorkflowAgent, WorkflowAgentBuilder};

/// Builds a ReAct agent: for each input, the prompt (filled from the input's fields) goes to
/// the model with the tools; the model calls tools until it answers; the answer, checked
/// against the output schema if there is one, is the output.
///
/// A reply that does not parse or does not match the schema is sent back to the model with
/// the validation error, up to `max_output_retries` times; then the input is dead-lettered
/// with the raw reply. It is never dropped.
///
/// ```
/// # fn demo(model: std::sync::Arc<dyn weir_models::ChatModel>) -> Result<(), weir_agent::AgentError> {
/// use weir_agent::{Prompt, ReActAgent};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Score {
///     /// 1 (bad) to 5 (good).
///     score: u8,
///     reasons: Vec<String>,
/// }
///
/// let agent = ReActAgent::builder("gpt", model)
///     .prompt(Prompt::text("Score this review from 1 to 5, with reasons: {review}"))
///     .output_schema::<Score>()
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReActAgent;

impl ReActAgent {
    /// A ReAct agent answering with `model`, registered as `model_name`.
    pub fn builder(model_name: impl Into<String>, model: Arc<dyn ChatModel>) -> ReActAgentBuilder {
        let model_name = model_name.into();
        ReActAgentBuilder {
            workflow: WorkflowAgent::builder().model(model_name.clone(), model),
            model: model_name,
            prompt: None,
            tools: Vec::new(),
            schema: None,
            max_output_retries: 2,
        }
    }
}

/// Builds a ReAct agent; see [`ReActAgent`].
#[derive(Debug)]
pub struct ReActAgentBuilder {
    workflow: WorkflowAgentBuilder,
    model: String,
    prompt: Option<Prompt>,
    tools: Vec<String>,
    schema: Option<OutputSchema>,
    max_output_retries: u32,
}

impl ReActAgentBuilder {
    /// The prompt. Placeholders are filled from the input's fields, `{input}` (the whole
    /// input) and `{key}`. Without a user message the input is sent as one.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompt = Some(prompt);
        self
    }

    /// Allows the model to call `tool`.
    pub fn tool(self, tool: Arc<dyn Tool>) -> Self {
        self.tool_binding(ToolBinding::new(tool))
    }

    /// Allows the model to call a tool with hidden arguments.
    pub fn tool_binding(mut self, binding: ToolBinding) -> Self {
        self.tools.push(binding.spec().name.clone());
        self.workflow = self.workflow.tool_binding(binding);
        self
    }

    /// The answer must be JSON matching `T`'s schema (derived with `schemars`, doc comments
    /// included as descriptions).
    pub fn output_schema<T: schemars::JsonSchema>(self) -> Self {
        let name = T::schema_name().to_string();
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
        self.output_schema_json(name, schema)
    }

    /// The answer must be JSON matching `schema`.
    pub fn output_schema_json(mut self, name: impl Into<String>, schema: Value) -> Self {
        self.schema = Some(OutputSchema { name: name.into(), schema });
        self
    }

    /// How often a reply that does not match the schema is sent back (default 2).
    pub fn max_output_retries(mut self, retries: u32) -> Self {
        self.max_output_retries = retries;
        self
    }

    /// The most model calls per input (tool rounds included).
    pub fn max_steps(mut self, steps: u32) -> Self {
        self.workflow = self.workflow.max_chat_steps(steps);
        self
    }

    /// Changes the underlying workflow: add config, memory TTL, listeners, more actions.
    pub fn workflow(mut self, change: impl FnOnce(WorkflowAgentBuilder) -> WorkflowAgentBuilder) -> Self {
        self.workflow = change(self.workflow);
        self
    }

    /// Checks the prompt and schema and builds the agent.
    pub fn build(self) -> Result<WorkflowAgent, AgentError> {
        let validator = self.schema.as_ref().map(OutputValidator::new).transpose()?;
        let react = Arc::new(ReAct {
            model: self.model,
            prompt: self.prompt,
            tools: self.tools,
            schema: self.schema,
            validator,
            max_output_retries: self.max_output_retries,
        });
        self.workflow
            .action(Action::with_handler("react.ask", Ask(react.clone())).on::<InputEvent>())
            .action(Action::with_handler("react.answer", Answer(react)).on::<ChatResponseEvent>())
            .build()
    }
}

#[derive(Debug)]
struct ReAct {
    model: String,
    prompt: Option<Prompt>,
    tools: Vec<String>,
    schema: Option<OutputSchema>,
    validator: Option<OutputValidator>,
    max_output_retries: u32,
}

/// Sends the input, as the prompt, to the model.
#[derive(Debug)]
struct Ask(Arc<ReAct>);

/// Checks the model's answer and outputs it, or sends it back.
#[derive(Debug)]
struct Answer(Arc<ReAct>);

impl Handler for Ask {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let react = &self.0;
            let input: InputEvent = event.decode()?;
            let mut messages = match &react.prompt {
                Some(prompt) => prompt.render_messages(&prompt_values(&input))?,
                None => Vec::new(),
            };
            if !messages.iter().any(|m| m.role == Role::User) {
                messages.push(ChatMessage::user(as_text(&input.input)));
            }
            if let Some(schema) = &react.schema {
                let instruction =
                    format!("Answer with only a JSON value, no prose, matching this JSON Schema:\n{}", schema.schema);
                messages.insert(0, ChatMessage::system(instruction));
            }
            ctx.send(&ChatRequestEvent {
                model: react.model.clone(),
                messages,
                tools: react.tools.clone(),
                output_schema: react.schema.clone(),
                context: json!({"attempt": 0}),
            })?;
            Ok(())
        })
    }
}

impl Handler for Answer {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let react = &self.0;
            let response: ChatResponseEvent = event.decode()?;
            let reply = response.message.content.clone();
            let Some(validator) = &react.validator else {
                ctx.output(&reply)?;
                return Ok(());
            };
            let problem = match validator.check(&reply) {
                Ok(value) => {
                    ctx.output(&value)?;
                    return Ok(());
                }
                Err(problem) => problem,
            };
            let attempt = response.context["attempt"].as_u64().unwrap_or(0) as u32;
            if attempt >= react.max_output_retries {
                let reason = format!(
                    "the model's reply was invalid after {} attempts, {problem}; raw reply: {reply}",
                    attempt + 1
                );
                return Err(Rejected::new(reason).into());
            }
            tracing::debug!(event = %event.id, attempt, %problem, "asking the model again");
            let mut messages = response.messages;
            messages.push(ChatMessage::user(format!(
                "Your reply is invalid: {problem}. Reply again with only the JSON value."
            )));
            ctx.send(&ChatRequestEvent {
                model: response.model,
                messages,
                tools: react.tools.clone(),
                output_schema: react.schema.clone(),
                context: json!({"attempt": attempt + 1}),
            })?;
            Ok(())
        })
    }
}

/// The input's fields, the whole input as `input` and the key as `key`.
fn prompt_values(input: &InputEvent) -> Value {
    let mut values = match &input.input {
        Value::Object(fields) => fields.clone(),
        _ => serde_json::Map::new(),
    };
    values.insert("input".into(), Value::String(as_text(&input.input)));
    values.insert("key".into(), Value::String(input.key.clone()));
    Value::Object(values)
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
