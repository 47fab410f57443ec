//! A tool as an agent offers it: some arguments hidden from the model and filled in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weir_tools::{Tool, ToolError, ToolSpec};

use crate::approval::Approval;
use crate::memory::Memory;

/// Where a hidden argument's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArgumentSource {
    /// The agent's configuration entry of this name.
    Config(String),
    /// The key's short-term memory entry of this name.
    Memory(String),
    /// The event's key.
    Key,
    /// A fixed value.
    Value(Value),
    /// The value at this JSON pointer (`/transaction/amount`) in the chat request's
    /// `context`: what the action that asked knows of the event, out of the model's reach.
    /// A tool called directly, not in a conversation, has no context.
    Context(String),
}

/// A tool with arguments hidden from the model.
///
/// ```
/// use weir_agent::{ArgumentSource, ToolBinding};
/// # fn demo(hold_card: std::sync::Arc<dyn weir_tools::Tool>) {
/// // The model says why to hold a card; which card is the event's key, not the model's guess.
/// let binding = ToolBinding::new(hold_card).hide("card_id", ArgumentSource::Key);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ToolBinding {
    tool: Arc<dyn Tool>,
    hidden: Vec<(String, ArgumentSource)>,
    spec: ToolSpec,
    approval: Option<Approval>,
}

impl ToolBinding {
    /// Offers `tool` as it is.
    pub fn new(tool: Arc<dyn Tool>) -> Self {
        let spec = tool.spec();
        ToolBinding { tool, hidden: Vec::new(), spec, approval: None }
    }

    /// Makes calls that `approval` picks wait for a person's approval before they run
    /// (docs/waits.md, "Approvals").
    ///
    /// ```
    /// use weir_agent::ToolBinding;
    /// use weir_agent::approval::Approval;
    /// # fn demo(restart: std::sync::Arc<dyn weir_tools::Tool>) {
    /// let binding = ToolBinding::new(restart).require_approval(Approval::when(|arguments| {
    ///     let node = arguments["node"].as_str().unwrap_or_default();
    ///     node.starts_with("prod-").then(|| format!("restart of production node {node}"))
    /// }));
    /// # }
    /// ```
    pub fn require_approval(mut self, approval: Approval) -> Self {
        self.approval = Some(approval);
        self
    }

    /// Which calls need approval, if any do.
    pub fn approval(&self) -> Option<&Approval> {
        self.approval.as_ref()
    }

    /// Hides `argument` from the model; it is filled from `source` before each call.
    pub fn hide(mut self, argument: impl Into<String>, source: ArgumentSource) -> Self {
        self.hidden.push((argument.into(), source));
        let names: Vec<&str> = self.hidden.iter().map(|(name, _)| name.as_str()).collect();
        self.spec = weir_tools::hide_arguments(&self.tool.spec(), &names);
        self
    }

    pub fn tool(&self) -> &Arc<dyn Tool> {
        &self.tool
    }

    /// What the model is told: the tool's spec without the hidden arguments.
    pub fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// The model's arguments with the hidden ones filled in; hidden values win.
    pub(crate) fn arguments(
        &self,
        from_model: Value,
        key: &str,
        config: &Map<String, Value>,
        memory: &Memory,
        context: &Value,
    ) -> Result<Value, ToolError> {
        let mut values = Map::new();
        for (name, source) in &self.hidden {
            let value = match source {
                ArgumentSource::Config(entry) => config.get(entry).cloned(),
                ArgumentSource::Memory(entry) => memory.get_value(entry).cloned(),
                ArgumentSource::Key => Some(Value::String(key.to_string())),
                ArgumentSource::Value(value) => Some(value.clone()),
                ArgumentSource::Context(pointer) => context.pointer(pointer).cloned(),
            };
            let value = value.ok_or_else(|| {
                ToolError::new(format!("hidden argument `{name}` has no value ({source:?} is not set)"))
            })?;
            values.insert(name.clone(), value);
        }
        weir_tools::merge_hidden_arguments(from_model, &values)
    }
}
