//! MCP prompts: templates of messages a server offers.

use rmcp::model::{Prompt, PromptMessage, Role as McpRole};
use weir_models::{ChatMessage, Role};

use super::content::content_text;

/// A prompt an MCP server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPrompt {
    /// The name it is fetched by.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The arguments it takes.
    pub arguments: Vec<McpPromptArgument>,
}

/// An argument of an [`McpPrompt`]; its value is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPromptArgument {
    pub name: String,
    /// What it means.
    pub description: Option<String>,
    /// Whether the prompt needs it.
    pub required: bool,
}

impl From<Prompt> for McpPrompt {
    fn from(prompt: Prompt) -> Self {
        let arguments = prompt.arguments.unwrap_or_default().into_iter().map(|argument| McpPromptArgument {
            name: argument.name,
            description: argument.description,
            required: argument.required.unwrap_or(false),
        });
        McpPrompt { name: prompt.name, description: prompt.description, arguments: arguments.collect() }
    }
}

/// A prompt's message as a chat message.
pub(crate) fn chat_message(message: &PromptMessage) -> ChatMessage {
    let role = match message.role {
        McpRole::User => Role::User,
        McpRole::Assistant => Role::Assistant,
    };
    ChatMessage::new(role, content_text(&message.content))
}
