//! The model API key from Secrets Manager or SSM Parameter Store, so that it is never in a
//! plain environment variable (`WEIR_MODEL_API_KEY_SECRET`, docs/configuration.md).

use std::collections::HashMap;

use weir_engine::ErrorKind;

use crate::aws::{AwsClients, failure};
use crate::error::{Error, Result};

const VARIABLE: &str = "WEIR_MODEL_API_KEY_SECRET";

/// The variables the model clients read their key from; the secret answers for all of them.
const KEY_VARIABLES: [&str; 3] = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_API_KEY"];

/// The process environment, with the providers' API key variables answered by the secret
/// that `WEIR_MODEL_API_KEY_SECRET` names, read once at cold start.
///
/// Hand it to `weir_models::ModelConfig::from_environment` and `build_with_env`.
#[derive(Debug, Clone, Default)]
pub struct ModelEnvironment {
    overrides: HashMap<&'static str, String>,
}

impl ModelEnvironment {
    /// Reads the secret if `WEIR_MODEL_API_KEY_SECRET` is set (an error names the variable
    /// and the ARN, never the key), with the clients `aws` builds; otherwise the plain
    /// environment, and `aws` is not called.
    pub async fn load(aws: impl AsyncFnOnce() -> AwsClients) -> Result<Self> {
        let Some(arn) = std::env::var(VARIABLE).ok().filter(|v| !v.trim().is_empty()) else {
            return Ok(ModelEnvironment::default());
        };
        let key = read_secret(&aws().await, arn.trim()).await?;
        Ok(ModelEnvironment { overrides: KEY_VARIABLES.iter().map(|v| (*v, key.clone())).collect() })
    }

    /// The variable `name`: the secret for an API key variable, else the process's own.
    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

/// Reads the secret string of a Secrets Manager secret or the decrypted value of an SSM
/// parameter, by ARN: the model API key of `WEIR_MODEL_API_KEY_SECRET`.
pub async fn read_secret(aws: &AwsClients, arn: &str) -> Result<String> {
    read_secret_of(aws, VARIABLE, arn).await
}

/// Like [`read_secret`], for the ARN that `variable` gives: errors name it.
pub async fn read_secret_of(aws: &AwsClients, variable: &'static str, arn: &str) -> Result<String> {
    let invalid = |reason: String| Error::Config { variable, reason };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (service, resource) = match parts.as_slice() {
        ["arn", _, service, _, _, resource] => (*service, *resource),
        _ => return Err(invalid(format!("`{arn}` is not an ARN"))),
    };
    let value = match service {
        "secretsmanager" => {
            let request = aws.secrets_manager().get_secret_value().secret_id(arn);
            let answer = request
                .send()
                .await
                .map_err(|e| named(variable, arn, failure("secretsmanager", "GetSecretValue", e)))?;
            answer.secret_string
        }
        "ssm" => {
            let name =
                resource.strip_prefix("parameter").ok_or_else(|| invalid(format!("`{arn}` is not a parameter")))?;
            // A hierarchical parameter keeps its leading slash; a plain one has none.
            let name =
                if name.starts_with('/') && name[1..].contains('/') { name } else { name.trim_start_matches('/') };
            let request = aws.ssm().get_parameter().name(name).with_decryption(true);
            let answer = request.send().await.map_err(|e| named(variable, arn, failure("ssm", "GetParameter", e)))?;
            answer.parameter.and_then(|parameter| parameter.value)
        }
        other => return Err(invalid(format!("`{arn}` is a {other} ARN, not secretsmanager or ssm"))),
    };
    value.ok_or_else(|| invalid(format!("`{arn}` holds no string value")))
}

/// A failure that retrying cannot mend (no such secret, no permission) is the variable's:
/// it names the variable and the ARN; a transient one stays as it is.
fn named(variable: &'static str, arn: &str, error: Error) -> Error {
    match error.kind() {
        ErrorKind::InvalidInput => Error::Config { variable, reason: format!("names `{arn}`: {error}") },
        _ => error,
    }
}
