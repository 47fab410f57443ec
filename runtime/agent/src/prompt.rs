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
        self.templates().try_for_each(|t| scan(t, |_| Ok(())))
    }

    /// The names of the placeholders, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = Vec::new();
        for template in self.templates() {
            // A bad template was refused by `validate`; its pieces up to the fault still count.
            let _ = scan(template, |piece| {
                if let Piece::Placeholder(name) = piece
                    && !names.iter().any(|known| known == name)
                {
                    names.push(name.to_owned());
                }
                Ok(())
            });
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

/// A part of a template: text to copy, or the name of a placeholder to fill.
#[derive(Debug, PartialEq)]
enum Piece<'t> {
    Literal(&'t str),
    Placeholder(&'t str),
}

/// Hands the pieces of `template` to `piece` in order, borrowed from the template: rendering
/// copies nothing but the output. A `{{` or `}}` is a one-brace literal.
fn scan<'t>(template: &'t str, mut piece: impl FnMut(Piece<'t>) -> Result<(), AgentError>) -> Result<(), AgentError> {
    let mut rest = template;
    while let Some(brace) = rest.find(['{', '}']) {
        let at = template.len() - rest.len() + brace;
        if brace > 0 {
            piece(Piece::Literal(&rest[..brace]))?;
        }
        let (open, after) = (rest.as_bytes()[brace] == b'{', &rest[brace + 1..]);
        if after.starts_with(if open { '{' } else { '}' }) {
            piece(Piece::Literal(&rest[brace..brace + 1]))?;
            rest = &after[1..];
        } else if !open {
            return Err(AgentError::Prompt(format!("lone `}}` at byte {at} (write `}}}}` for a literal brace)")));
        } else {
            let end = after.find('}').ok_or_else(|| {
                AgentError::Prompt(format!("unclosed `{{` at byte {at} (write `{{{{` for a literal brace)"))
            })?;
            let name = after[..end].trim();
            if name.is_empty() || name.contains(['{', ' ']) {
                return Err(AgentError::Prompt(format!(
                    "bad placeholder `{{{}}}` at byte {at} (write `{{{{` for a literal brace)",
                    &after[..end]
                )));
            }
            piece(Piece::Placeholder(name))?;
            rest = &after[end + 1..];
        }
    }
    if !rest.is_empty() {
        piece(Piece::Literal(rest))?;
    }
    Ok(())
}

fn render(template: &str, values: &Value) -> Result<String, AgentError> {
    let mut out = String::with_capacity(template.len());
    scan(template, |piece| {
        match piece {
            Piece::Literal(text) => out.push_str(text),
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
        Ok(())
    })?;
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
        assert!(Prompt::text("{ }").validate().unwrap_err().to_string().contains("bad placeholder `{ }` at byte 0"));
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let prompt = Prompt::text("{{{a}}} {{b}} }}{{");
        assert_eq!(prompt.render_text(&json!({"a": 1})).unwrap(), "{1} {b} }{");
        assert_eq!(prompt.placeholders(), vec!["a"]);
    }
}
