//! Rust functions as tools.

use std::fmt;
use std::future::{Future, ready};

use async_trait::async_trait;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weir_models::ToolSpec;

use crate::schema::parameters_schema;
use crate::tool::{Tool, ToolError};

type CallFn = dyn Fn(Value, String) -> BoxFuture<'static, Result<Value, ToolError>> + Send + Sync;

/// A Rust async function (or closure) as a [`Tool`].
///
/// The parameters' schema comes from the function's argument type, and so does the
/// description: the type's doc comment, unless [`with_description`](Self::with_description)
/// gives one.
///
/// ```
/// use weir_tools::{FunctionTool, Tool};
///
/// /// Adds two numbers.
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Add {
///     a: i64,
///     b: i64,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let add = FunctionTool::new("add", |Add { a, b }| async move { Ok::<_, String>(a + b) });
/// assert_eq!(add.spec().description, "Adds two numbers.");
/// let sum = add.call(serde_json::json!({"a": 2, "b": 3}), "call-1").await.unwrap();
/// assert_eq!(sum, 5);
/// # }
/// ```
pub struct FunctionTool {
    spec: ToolSpec,
    at_most_once: bool,
    read_only: bool,
    call: Box<CallFn>,
}

impl FunctionTool {
    /// A tool named `name` that runs `function` with the model's arguments.
    ///
    /// # Panics
    ///
    /// If `Args` is not a struct or a map (see [`parameters_schema`]).
    pub fn new<Args, Out, E, F, Fut>(name: impl Into<String>, function: F) -> Self
    where
        Args: DeserializeOwned + JsonSchema,
        Out: Serialize,
        E: fmt::Display,
        F: Fn(Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
    {
        Self::with_idempotency_key(name, move |arguments, _key| function(arguments))
    }

    /// Like [`new`](Self::new), for a function that also receives the call's idempotency key:
    /// the same on every attempt of one call, so the function can hand it to the service it
    /// calls and have a retry recognised.
    ///
    /// # Panics
    ///
    /// If `Args` is not a struct or a map (see [`parameters_schema`]).
    pub fn with_idempotency_key<Args, Out, E, F, Fut>(name: impl Into<String>, function: F) -> Self
    where
        Args: DeserializeOwned + JsonSchema,
        Out: Serialize,
        E: fmt::Display,
        F: Fn(Args, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
    {
        let name = name.into();
        let mut parameters = parameters_schema::<Args>();
        let description = match parameters.as_object_mut().and_then(|schema| schema.remove("description")) {
            Some(Value::String(description)) => description,
            _ => String::new(),
        };
        let tool_name = name.clone();
        let call = move |arguments: Value, key: String| -> BoxFuture<'static, Result<Value, ToolError>> {
            let arguments = match parse_arguments(&tool_name, arguments) {
                Ok(arguments) => arguments,
                Err(error) => return Box::pin(ready(Err(error))),
            };
            let running = function(arguments, key);
            let tool_name = tool_name.clone();
            Box::pin(async move {
                let output = running.await.map_err(|error| ToolError::new(error.to_string()))?;
                serde_json::to_value(output).map_err(|error| {
                    ToolError::new(format!("`{tool_name}` returned a result that is not JSON: {error}"))
                })
            })
        };
        FunctionTool {
            spec: ToolSpec { name, description, parameters: parameters.into() },
            at_most_once: false,
            read_only: false,
            call: Box::new(call),
        }
    }

    /// Replaces the description taken from the arguments' doc comment.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.spec.description = description.into();
        self
    }

    /// Marks the tool read-only: it changes nothing, so a replay may call it for real
    /// (see [`Tool::read_only`]).
    pub fn with_read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Marks the tool at-most-once: after a crash in the middle of a call it is not run again
    /// (see [`Tool::at_most_once`]).
    pub fn with_at_most_once(mut self) -> Self {
        self.at_most_once = true;
        self
    }
}

/// The model's arguments as `Args`, or an error naming the field that did not fit.
fn parse_arguments<Args: DeserializeOwned>(tool: &str, arguments: Value) -> Result<Args, ToolError> {
    serde_path_to_error::deserialize(arguments).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." { String::new() } else { format!(" at `{path}`") };
        ToolError::new(format!("invalid arguments for `{tool}`{at}: {}", error.inner()))
    })
}

#[async_trait]
impl Tool for FunctionTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn at_most_once(&self) -> bool {
        self.at_most_once
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    async fn call(&self, arguments: Value, idempotency_key: &str) -> Result<Value, ToolError> {
        (self.call)(arguments, idempotency_key.to_owned()).await
    }
}

impl fmt::Debug for FunctionTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionTool")
            .field("name", &self.spec.name)
            .field("at_most_once", &self.at_most_once)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// Looks up the weather of a city.
    #[derive(Debug, Deserialize, JsonSchema)]
    struct Weather {
        /// The city's name.
        city: String,
        /// Days ahead, today if absent.
        days: Option<u32>,
        location: Option<Location>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Location {
        latitude: f64,
    }

    fn weather_tool() -> FunctionTool {
        FunctionTool::new("weather", |weather: Weather| async move {
            let latitude = weather.location.map(|location| location.latitude);
            Ok::<_, String>(json!({"city": weather.city, "days": weather.days.unwrap_or(0), "latitude": latitude}))
        })
    }

    async fn call_error(tool: &FunctionTool, arguments: Value) -> String {
        tool.call(arguments, "key").await.unwrap_err().message
    }

    #[test]
    fn the_schema_is_a_plain_object_schema_described_by_the_doc_comment() {
        let spec = weather_tool().spec();
        assert_eq!(spec.name, "weather");
        assert_eq!(spec.description, "Looks up the weather of a city.");
        let schema = spec.parameters.as_object().unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["city"]));
        assert_eq!(schema["properties"]["city"]["description"], "The city's name.");
        assert_eq!(schema["properties"]["location"]["properties"]["latitude"], json!({"type": "number"}));
        assert_eq!(schema["properties"]["days"]["type"], json!(["integer", "null"]));
        for key in ["$schema", "title", "description", "$defs"] {
            assert!(!schema.contains_key(key), "`{key}` in {schema:?}");
        }
    }

    #[test]
    fn an_explicit_description_wins_and_at_most_once_is_opt_in() {
        let tool = weather_tool();
        assert!(!tool.at_most_once());
        let tool = tool.with_description("Weather forecasts.").with_at_most_once();
        assert_eq!(tool.spec().description, "Weather forecasts.");
        assert!(tool.at_most_once());
    }

    #[tokio::test]
    async fn good_arguments_run_the_function() {
        let result = weather_tool().call(json!({"city": "Lyon", "days": 2}), "key").await.unwrap();
        assert_eq!(result, json!({"city": "Lyon", "days": 2, "latitude": null}));
    }

    #[tokio::test]
    async fn bad_arguments_name_the_field() {
        let tool = weather_tool();
        let missing = call_error(&tool, json!({"days": 2})).await;
        assert!(missing.starts_with("invalid arguments for `weather`"), "{missing}");
        assert!(missing.contains("missing field `city`"), "{missing}");

        let wrong_type = call_error(&tool, json!({"city": "Lyon", "days": "two"})).await;
        assert!(wrong_type.contains("at `days`"), "{wrong_type}");

        let nested = call_error(&tool, json!({"city": "Lyon", "location": {"latitude": "north"}})).await;
        assert!(nested.contains("at `location.latitude`"), "{nested}");
    }

    #[tokio::test]
    async fn the_function_error_is_the_tool_error() {
        let tool = FunctionTool::new("fails", |_: Location| async { Err::<(), _>("no such place") });
        assert_eq!(call_error(&tool, json!({"latitude": 1.0})).await, "no such place");
    }

    #[tokio::test]
    async fn the_keyed_variant_receives_the_idempotency_key() {
        let tool =
            FunctionTool::with_idempotency_key("keyed", |_: Location, key: String| async move { Ok::<_, String>(key) });
        assert_eq!(tool.call(json!({"latitude": 1.0}), "call-7").await.unwrap(), "call-7");
    }
}
