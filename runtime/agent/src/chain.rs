//! Chat steps in order: what a ReAct agent (one step) and a declarative workflow (several)
//! are made of.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use weir_engine::Rejected;
use weir_models::{ChatMessage, OutputSchema, Role, ToolCall};

use crate::action::{Action, ActionError, Handler};
use crate::context::Context;
use crate::error::AgentError;
use crate::event::Event;
use crate::event::builtin::{ChatRequestEvent, ChatResponseEvent, InputEvent};
use crate::output::OutputValidator;
use crate::prompt::Prompt;

/// One step: a prompt to a model, with tools, and the schema its answer must match.
#[derive(Debug)]
pub(crate) struct ChainStep {
    pub(crate) name: String,
    pub(crate) model: String,
    pub(crate) prompt: Option<Prompt>,
    pub(crate) tools: Vec<String>,
    pub(crate) schema: Option<OutputSchema>,
}

/// A long-term memory set the steps use as context: recalled into the prompts as
/// `{memories.<set>}` before the first step, the output remembered after the last.
#[derive(Debug)]
pub(crate) struct ChainMemory {
    pub(crate) set: String,
    /// How many memories to recall, the input the query.
    pub(crate) recall: usize,
    /// What to remember of an answered input.
    pub(crate) remember: Option<Prompt>,
}

/// A knowledge base the steps use as context: searched by the input before the first step
/// (a journaled call of its tool), its passages filled into the prompts as
/// `{knowledge.<name>}`.
#[derive(Debug)]
pub(crate) struct ChainKnowledge {
    pub(crate) name: String,
    /// The tool that searches it.
    pub(crate) tool: String,
    /// How many passages.
    pub(crate) top_k: usize,
}

/// Steps run in order for each input: each step's prompt is filled from the input's fields,
/// `{input}`, `{key}` and the answers of the steps before it (by step name); the last
/// step's answer is the output.
#[derive(Debug)]
pub(crate) struct Chain {
    steps: Vec<(ChainStep, Option<OutputValidator>)>,
    max_output_retries: u32,
    memories: Vec<ChainMemory>,
    knowledge: Vec<ChainKnowledge>,
}

impl Chain {
    pub(crate) fn new(
        steps: Vec<ChainStep>,
        max_output_retries: u32,
        memories: Vec<ChainMemory>,
        knowledge: Vec<ChainKnowledge>,
    ) -> Result<Arc<Self>, AgentError> {
        let steps = steps
            .into_iter()
            .map(|step| {
                let validator = step.schema.as_ref().map(OutputValidator::new).transpose()?;
                Ok((step, validator))
            })
            .collect::<Result<_, AgentError>>()?;
        Ok(Arc::new(Chain { steps, max_output_retries, memories, knowledge }))
    }

    /// The two actions that run the chain.
    pub(crate) fn actions(self: &Arc<Self>) -> [Action; 2] {
        [
            Action::with_handler("steps.start", Start(self.clone())).on::<InputEvent>(),
            Action::with_handler("steps.answer", Answer(self.clone())).on::<ChatResponseEvent>(),
        ]
    }

    /// The request of step `index`, its prompt filled from `values`.
    fn request(&self, index: usize, values: Map<String, Value>) -> Result<ChatRequestEvent, AgentError> {
        let (step, _) = &self.steps[index];
        let values = Value::Object(values);
        let mut messages = match &step.prompt {
            Some(prompt) => prompt.render_messages(&values)?,
            None => Vec::new(),
        };
        if !messages.iter().any(|m| m.role == Role::User) {
            messages.push(ChatMessage::user(as_text(&values["input"])));
        }
        if let Some(schema) = &step.schema {
            let instruction =
                format!("Answer with only a JSON value, no prose, matching this JSON Schema:\n{}", schema.schema);
            messages.insert(0, ChatMessage::system(instruction));
        }
        Ok(ChatRequestEvent {
            model: step.model.clone(),
            messages,
            tools: step.tools.clone(),
            output_schema: step.schema.clone(),
            context: json!({"step": index, "attempt": 0, "values": values}),
        })
    }
}

/// Sends the first step's request.
#[derive(Debug)]
struct Start(Arc<Chain>);

/// Checks a step's answer: asks again, rejects, starts the next step, or outputs.
#[derive(Debug)]
struct Answer(Arc<Chain>);

impl Handler for Start {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let input: InputEvent = event.decode()?;
            let mut values = match &input.input {
                Value::Object(fields) => fields.clone(),
                _ => Map::new(),
            };
            let text = as_text(&input.input);
            values.insert("input".into(), Value::String(text.clone()));
            values.insert("key".into(), Value::String(input.key));
            let mut recalled = Map::new();
            for memory in self.0.memories.iter().filter(|m| m.recall > 0) {
                let items = ctx.recall(&memory.set, &text, memory.recall).await?;
                let lines: Vec<String> = items.iter().map(|item| format!("- {}", item.text)).collect();
                recalled.insert(memory.set.clone(), Value::String(lines.join("\n")));
            }
            if !self.0.memories.is_empty() {
                values.insert("memories".into(), Value::Object(recalled));
            }
            let mut found = Map::new();
            for knowledge in &self.0.knowledge {
                let arguments = json!({"query": text, "top_k": knowledge.top_k});
                let call = ToolCall::new(format!("context-{}", knowledge.tool), &knowledge.tool, arguments);
                let result = ctx.call_tool(&call).await?;
                if result.is_error {
                    let problem = result.content.as_str().map_or_else(|| result.content.to_string(), str::to_string);
                    return Err(AgentError::Other(format!(
                        "knowledge base `{}` as context: {problem}",
                        knowledge.name
                    ))
                    .into());
                }
                let passages = result.content["passages"].as_array().cloned().unwrap_or_default();
                let lines: Vec<String> = passages
                    .iter()
                    .map(|p| {
                        format!(
                            "- [{}] {}",
                            p["document"].as_str().unwrap_or_default(),
                            p["text"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                found.insert(knowledge.name.clone(), Value::String(lines.join("\n")));
            }
            if !self.0.knowledge.is_empty() {
                values.insert("knowledge".into(), Value::Object(found));
            }
            ctx.send(self.0.request(0, values)?)?;
            Ok(())
        })
    }
}

impl Handler for Answer {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let chain = &self.0;
            let response: ChatResponseEvent = event.decode()?;
            let (Some(index), Some(Value::Object(values))) =
                (response.context["step"].as_u64(), response.context.get("values").cloned())
            else {
                return Ok(()); // a conversation some other action started
            };
            let index = index as usize;
            let (step, validator) =
                chain.steps.get(index).ok_or_else(|| AgentError::Other(format!("no step {index}")))?;
            let reply = response.message.content.clone();
            let answer = match validator {
                None => Value::String(reply.clone()),
                Some(validator) => match validator.check(&reply) {
                    Ok(answer) => answer,
                    Err(problem) => {
                        let attempt = response.context["attempt"].as_u64().unwrap_or(0) as u32;
                        if attempt >= chain.max_output_retries {
                            let reason = format!(
                                "step `{}`: the model's reply was invalid after {} attempts, {problem}; raw reply: {reply}",
                                step.name,
                                attempt + 1
                            );
                            return Err(Rejected::new(reason).into());
                        }
                        tracing::debug!(event = %event.id, step = %step.name, attempt, %problem, "asking the model again");
                        let mut messages = response.messages;
                        messages.push(ChatMessage::user(format!(
                            "Your reply is invalid: {problem}. Reply again with only the JSON value."
                        )));
                        let mut retry = chain.request(index, values)?;
                        retry.messages = messages;
                        retry.context["attempt"] = json!(attempt + 1);
                        ctx.send(retry)?;
                        return Ok(());
                    }
                },
            };
            if index + 1 == chain.steps.len() {
                let mut values = values;
                values.insert("answer".into(), Value::String(as_text(&answer)));
                for memory in &chain.memories {
                    if let Some(template) = &memory.remember {
                        let text = template.render_text(&Value::Object(values.clone()))?;
                        ctx.remember(&memory.set, text, Default::default()).await?;
                    }
                }
                ctx.output(&answer)?;
            } else {
                let mut values = values;
                values.insert(step.name.clone(), answer);
                ctx.send(chain.request(index + 1, values)?)?;
            }
            Ok(())
        })
    }
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
