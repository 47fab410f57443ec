//! ReAct agents: a prompt, tools and an optional output schema, looped by the chat action.

use std::sync::Arc;

use serde_json::Value;
use weir_models::{ChatModel, OutputSchema};
use weir_tools::Tool;

use crate::chain::{Chain, ChainStep};
use crate::error::AgentError;
use crate::output::schema_of;
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
    pub fn output_schema<T: schemars::JsonSchema>(mut self) -> Self {
        self.schema = Some(schema_of::<T>(&T::schema_name()));
        self
    }

    /// The answer must be JSON matching `schema`.
    pub fn output_schema_json(mut self, name: impl Into<String>, schema: Value) -> Self {
        self.schema = Some(OutputSchema::new(name, schema));
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
        let step = ChainStep {
            name: "answer".into(),
            model: self.model,
            prompt: self.prompt,
            tools: self.tools,
            schema: self.schema,
        };
        let chain = Chain::new(vec![step], self.max_output_retries, Vec::new(), Vec::new())?;
        let [start, answer] = chain.actions();
        self.workflow.action(start).action(answer).build()
    }
}
