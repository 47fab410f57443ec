//! Prompts: text templates and message lists with `{placeholder}`s.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_models::{ChatMessage, Role};

use crate::error::AgentError;

/// A prompt: one text, or a list of messages, with `{name}` placeholders filled from a JSON
/// object (`{review.text}` reaches into nested objects). `{{` and `}}` are literal braces.
///
/// ```
/// use serde_json::json;
/// use weir_agent::Prompt;
///
/// let prompt = Prompt::text("Score this review of {product}: {review}. Reply as {{\"score\": n}}.");
/// let text = prompt.render_text(&json!({"product": "trail-shoe", "review": "Great grip"}))?;
/// assert_eq!(text, "Score this review of trail-shoe: Great grip. Reply as {\"score\": n}.");
/// # Ok::<(), weir_agent::AgentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text, sent as a user message.
    Text(String),
    /// Messages, each a template.
    Messages(Vec<PromptMessage>),
}

/// One message of a [`Prompt::Messages`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessage {
    /// Who says it.
    pub role: Role,
    /// Its template.
    pub content: String,
}

impl Prompt {
    /// A text prompt.
    pub fn text(template: impl Into<String>) -> Self {
        Prompt::Text(template.into())
    }

    /// A prompt of messages.
    pub fn messages(messages: impl IntoIterator<Item = (Role, String)>) -> Self {
        Prompt::Messages(messages.into_iter().map(|(role, content)| PromptMessage { role, content }).collect())
    }

    /// Checks every template, so a bad one fails when the agent is built, not per event.
    pub fn validate(&self) -> Result<(), AgentError> {
        self.templates().try_for_each(|t| parse(t).map(drop))
    }

    /// The names of the placeholders, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = Vec::new();
        for template in self.templates() {
            for piece in parse(template).unwrap_or_default() {
                if let Piece::Placeholder(name) = piece
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The prompt as one text (messages joined by blank lines).
    pub fn render_text(&self, values: &Value) -> Result<String, AgentError> {
        let rendered: Result<Vec<String>, _> = self.templates().map(|t| render(t, values)).collect();
        Ok(rendered?.join("\n\n"))
    }

    /// The prompt as chat messages.
    pub fn render_messages(&self, values: &Value) -> Result<Vec<ChatMessage>, AgentError> {
        match self {
            Prompt::Text(template) => Ok(vec![ChatMessage::user(render(template, values)?)]),
            Prompt::Messages(messages) => {
                messages.iter().map(|m| Ok(ChatMessage::new(m.role, render(&m.content, values)?))).collect()
            }
        }
    }

    fn templates(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Prompt::Text(template) => Box::new(std::iter::once(template.as_str())),
            Prompt::Messages(messages) => Box::new(messages.iter().map(|m| m.content.as_str())),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Piece<'t> {
    Literal(std::borrow::Cow<'t, str>),
    Placeholder(String),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, AgentError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = template.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let rest = &template[at + 1..];
                let end = rest.find('}').ok_or_else(|| {
                    AgentError::Prompt(format!("unclosed `{{` at byte {at} (write `{{{{` for a literal brace)"))
                })?;
                let name = rest[..end].trim();
                if name.is_empty() || name.contains(['{', ' ']) {
                    return Err(AgentError::Prompt(format!(
                        "bad placeholder `{{{}}}` at byte {at} (write `{{{{` for a literal brace)",
                        &rest[..end]
                    )));
                }
                for _ in 0..rest[..end].chars().count() + 1 {
                    chars.next();
                }
                pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
                pieces.push(Piece::Placeholder(name.to_string()));
            }
            '}' => {
                return Err(AgentError::Prompt(format!("lone `}}` at byte {at} (write `}}}}` for a literal brace)")));
            }
            c => literal.push(c),
        }
    }
    pieces.push(Piece::Literal(literal.into()));
    Ok(pieces)
}

fn render(template: &str, values: &Value) -> Result<String, AgentError> {
    let mut out = String::with_capacity(template.len());
    for piece in parse(template)? {
        match piece {
            Piece::Literal(text) => out.push_str(&text),
            Piece::Placeholder(name) => {
                let value = name
                    .split('.')
                    .try_fold(values, |v, part| v.get(part))
                    .ok_or_else(|| AgentError::Prompt(format!("no value for placeholder `{{{name}}}`")))?;
                match value {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fills_nested_and_non_string_values() {
        let prompt = Prompt::text("{a.b} has {n} items: {list}");
        let text = prompt.render_text(&json!({"a": {"b": "cart"}, "n": 2, "list": ["x", "y"]})).unwrap();
        assert_eq!(text, r#"cart has 2 items: ["x","y"]"#);
    }

    #[test]
    fn messages_keep_their_roles() {
        let prompt = Prompt::messages([(Role::System, "Be brief.".into()), (Role::User, "{q}".into())]);
        let messages = prompt.render_messages(&json!({"q": "Why?"})).unwrap();
        assert_eq!(messages, vec![ChatMessage::system("Be brief."), ChatMessage::user("Why?")]);
        assert_eq!(prompt.placeholders(), vec!["q"]);
    }

    #[test]
    fn errors_name_the_placeholder_or_the_brace() {
        let missing = Prompt::text("Hi {name}").render_text(&json!({})).unwrap_err().to_string();
        assert!(missing.contains("`{name}`"), "{missing}");
        assert!(Prompt::text("{ unclosed").validate().unwrap_err().to_string().contains("unclosed"));
        assert!(Prompt::text("a } b").validate().unwrap_err().to_string().contains("lone `}`"));
        assert!(Prompt::text("a {{literal}} b").validate().is_ok());
    }
}
