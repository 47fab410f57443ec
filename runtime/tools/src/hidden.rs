//! Arguments the agent fills itself, hidden from the model.
//!
//! A tool may take arguments the model must not choose: the customer's id, a tenant, a
//! credential. The agent removes them from the schema the model sees and puts its own
//! values in before the call, over anything the model wrote under those names.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use weir_models::ToolSpec;

use crate::tool::{Tool, ToolError};

/// `spec` without the arguments named in `hidden`: they leave its `properties` and `required`.
///
/// ```
/// use serde_json::json;
/// use weir_tools::{ToolSpec, hide_arguments};
///
/// let spec = ToolSpec {
///     name: "refund".into(),
///     description: "Refunds an order.".into(),
///     parameters: json!({
///         "type": "object",
///         "properties": {"order_id": {"type": "string"}, "customer_id": {"type": "string"}},
///         "required": ["order_id", "customer_id"],
///     })
///     .into(),
/// };
/// let seen_by_model = hide_arguments(&spec, &["customer_id"]);
/// assert_eq!(seen_by_model.parameters["required"], json!(["order_id"]));
/// ```
pub fn hide_arguments(spec: &ToolSpec, hidden: &[&str]) -> ToolSpec {
    let mut spec = spec.clone();
    let parameters = Arc::make_mut(&mut spec.parameters);
    if let Some(properties) = parameters.get_mut("properties").and_then(Value::as_object_mut) {
        properties.retain(|name, _| !hidden.contains(&name.as_str()));
    }
    if let Some(required) = parameters.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|name| !name.as_str().is_some_and(|name| hidden.contains(&name)));
    }
    spec
}

/// The model's `arguments` with the `hidden` values put in; a hidden value replaces whatever
/// the model wrote under its name. No arguments at all (`null`) count as an empty object.
pub fn merge_hidden_arguments(arguments: Value, hidden: &Map<String, Value>) -> Result<Value, ToolError> {
    let mut arguments = match arguments {
        Value::Object(arguments) => arguments,
        Value::Null => Map::new(),
        other => return Err(ToolError::new(format!("arguments must be a JSON object, not `{other}`"))),
    };
    arguments.extend(hidden.iter().map(|(name, value)| (name.clone(), value.clone())));
    Ok(Value::Object(arguments))
}

/// A tool with some arguments filled by the agent: the model sees the tool without them
/// ([`hide_arguments`]) and each call gets them ([`merge_hidden_arguments`]).
///
/// ```
/// use std::sync::Arc;
/// use serde_json::{Map, json};
/// use weir_tools::{FunctionTool, HiddenArguments, Tool};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Refund {
///     order_id: String,
///     customer_id: String,
/// }
///
/// let refund = FunctionTool::new("refund", |refund: Refund| async move {
///     Ok::<_, String>(format!("{} refunded to {}", refund.order_id, refund.customer_id))
/// });
/// let hidden = Map::from_iter([("customer_id".to_owned(), json!("c-42"))]);
/// let for_model = HiddenArguments::new(Arc::new(refund), hidden);
/// assert!(for_model.spec().parameters["properties"].get("customer_id").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct HiddenArguments {
    tool: Arc<dyn Tool>,
    values: Map<String, Value>,
}

impl HiddenArguments {
    /// `tool`, with the arguments named in `values` hidden from the model and set to them.
    pub fn new(tool: Arc<dyn Tool>, values: Map<String, Value>) -> Self {
        HiddenArguments { tool, values }
    }
}

#[async_trait]
impl Tool for HiddenArguments {
    fn spec(&self) -> ToolSpec {
        let hidden: Vec<&str> = self.values.keys().map(String::as_str).collect();
        hide_arguments(&self.tool.spec(), &hidden)
    }

    fn at_most_once(&self) -> bool {
        self.tool.at_most_once()
    }

    fn read_only(&self) -> bool {
        self.tool.read_only()
    }

    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError> {
        let arguments = merge_hidden_arguments(arguments, &self.values)?;
        self.tool.call(arguments, idempotency_key).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::FunctionTool;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Transfer {
        amount: u64,
        account: String,
    }

    fn transfer() -> Arc<dyn Tool> {
        Arc::new(
            FunctionTool::new("transfer", |transfer: Transfer| async move {
                Ok::<_, String>(json!({"amount": transfer.amount, "account": transfer.account}))
            })
            .with_at_most_once(),
        )
    }

    fn hidden_account() -> Map<String, Value> {
        Map::from_iter([("account".to_owned(), json!("acct-owned-by-agent"))])
    }

    #[test]
    fn hidden_arguments_leave_properties_and_required() {
        let spec = hide_arguments(&transfer().spec(), &["account", "not-a-parameter"]);
        assert_eq!(spec.parameters["required"], json!(["amount"]));
        let properties = spec.parameters["properties"].as_object().unwrap();
        assert_eq!(properties.keys().collect::<Vec<_>>(), ["amount"]);
    }

    #[test]
    fn hidden_values_win_over_the_model() {
        let merged = merge_hidden_arguments(json!({"amount": 5, "account": "attacker"}), &hidden_account()).unwrap();
        assert_eq!(merged, json!({"amount": 5, "account": "acct-owned-by-agent"}));
        assert_eq!(
            merge_hidden_arguments(Value::Null, &hidden_account()).unwrap(),
            json!({"account": "acct-owned-by-agent"})
        );
        assert!(merge_hidden_arguments(json!([1]), &hidden_account()).is_err());
    }

    #[tokio::test]
    async fn the_wrapper_hides_and_fills() {
        let tool = HiddenArguments::new(transfer(), hidden_account());
        assert!(tool.at_most_once());
        assert!(tool.spec().parameters["properties"].get("account").is_none());
        let result = tool.call(json!({"amount": 5, "account": "attacker"}), "key").await.unwrap();
        assert_eq!(result, json!({"amount": 5, "account": "acct-owned-by-agent"}));
    }
}
