//! `weir eval`'s judge: an agent that asks a model to grade an output against a rubric, so
//! that its calls are journaled like any agent's (`docs/replay.md`, "Eval").

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_agent::{Action, ActionError, AgentError, Context, Event, InputEvent, WorkflowAgent};
use weir_models::{ChatMessage, ChatModel, ChatRequest};

/// The judge's model, as the agent knows it.
const JUDGE_MODEL: &str = "judge";

const INSTRUCTIONS: &str = "You grade the output of an AI agent against a rubric. You are given \
the agent's input, its output and the rubric. Answer with JSON only: {\"score\": s, \"reason\": \
\"one sentence\"}, where s is from 0 (fails the rubric) to 1 (meets it fully).";

/// What the judge grades: one case's input and output, and the rubric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grading {
    pub rubric: String,
    pub input: Value,
    pub output: Value,
}

/// The judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// From 0 to 1.
    pub score: f64,
    pub reason: String,
}

/// The judging agent, asking `model`.
pub fn agent(model: Arc<dyn ChatModel>) -> Result<WorkflowAgent, AgentError> {
    WorkflowAgent::builder().model(JUDGE_MODEL, model).action(Action::new("grade", grade).on::<InputEvent>()).build()
}

async fn grade(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let grading: Grading = serde_json::from_value(input.input)?;
    let question = format!("Rubric: {}\n\nInput: {}\n\nOutput: {}", grading.rubric, grading.input, grading.output);
    let request = ChatRequest {
        messages: vec![ChatMessage::system(INSTRUCTIONS), ChatMessage::user(question)],
        ..ChatRequest::default()
    };
    let answer = ctx.chat(JUDGE_MODEL, &request).await?.message.content;
    let grade = parse(&answer).ok_or_else(|| format!("the judge's answer is not a grade: {answer}"))?;
    ctx.output(&grade)?;
    Ok(())
}

/// A grade from the judge's answer: JSON, perhaps in a code fence, with a score from 0 to 1.
fn parse(answer: &str) -> Option<Grade> {
    let json = answer.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
    let grade: Grade = serde_json::from_str(json.trim()).ok()?;
    (0.0..=1.0).contains(&grade.score).then_some(grade)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grade_is_json_with_a_score_from_zero_to_one() {
        let fenced = "```json\n{\"score\": 0.5, \"reason\": \"half\"}\n```";
        assert_eq!(parse(fenced), Some(Grade { score: 0.5, reason: "half".into() }));
        assert_eq!(parse("{\"score\": 2, \"reason\": \"too much\"}"), None);
        assert_eq!(parse("fine"), None);
    }
}
