//! Configuration values written in the agent file or read from the environment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A header or environment value of a tool's configuration: written in the file, or read from
/// an environment variable so that secrets stay out of it.
///
/// In YAML, a plain string is the value itself; a map names the variable:
///
/// ```
/// use weir_tools::ConfigValue;
///
/// let headers: std::collections::BTreeMap<String, ConfigValue> = serde_json::from_str(
///     r#"{"X-Team": "support", "Authorization": {"env": "ORDERS_TOKEN", "prefix": "Bearer "}}"#,
/// )
/// .unwrap();
/// assert_eq!(headers["X-Team"], ConfigValue::Literal("support".into()));
/// ```
///
/// Its `Debug` never shows a literal value, which may be a secret too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// The value itself.
    Literal(String),
    /// The value of an environment variable, read when the tool is built.
    Env(EnvValue),
}

/// A value read from an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvValue {
    /// The variable's name.
    pub env: String,
    /// Text put before the variable's value, such as `"Bearer "`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// An environment variable a [`ConfigValue`] names is not set (or not Unicode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} reads the environment variable `{variable}`, which is not set")]
pub struct MissingEnvVar {
    /// The setting that needed it, such as ``header `Authorization` ``.
    pub setting: String,
    /// The variable's name.
    pub variable: String,
}

impl ConfigValue {
    /// The value, reading the environment if it names a variable; `setting` names what the
    /// value is for in the error.
    pub fn resolve(&self, setting: &str) -> Result<String, MissingEnvVar> {
        match self {
            ConfigValue::Literal(value) => Ok(value.clone()),
            ConfigValue::Env(EnvValue { env, prefix }) => match std::env::var(env) {
                Ok(value) => Ok(format!("{}{value}", prefix.as_deref().unwrap_or_default())),
                Err(_) => Err(MissingEnvVar { setting: setting.to_owned(), variable: env.clone() }),
            },
        }
    }
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Literal(_) => f.write_str("Literal(<redacted>)"),
            ConfigValue::Env(env) => f.debug_tuple("Env").field(env).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_literal_and_a_map_names_a_variable() {
        let literal: ConfigValue = serde_json::from_str(r#""secret-token""#).unwrap();
        assert_eq!(literal.resolve("header `X`").unwrap(), "secret-token");
        assert!(!format!("{literal:?}").contains("secret-token"));

        let env: ConfigValue = serde_json::from_str(r#"{"env": "PATH", "prefix": "p:"}"#).unwrap();
        assert_eq!(env.resolve("header `X`").unwrap(), format!("p:{}", std::env::var("PATH").unwrap()));
    }

    #[test]
    fn a_missing_variable_is_named_with_its_setting() {
        let value = ConfigValue::Env(EnvValue { env: "WEIR_TOOLS_TEST_UNSET_VARIABLE".into(), prefix: None });
        let error = value.resolve("header `Authorization`").unwrap_err();
        assert_eq!(
            error.to_string(),
            "header `Authorization` reads the environment variable `WEIR_TOOLS_TEST_UNSET_VARIABLE`, which is not set"
        );
    }

    #[test]
    fn unknown_keys_of_an_env_value_are_rejected() {
        assert!(serde_json::from_str::<ConfigValue>(r#"{"env": "X", "prefx": "Bearer "}"#).is_err());
    }
}
