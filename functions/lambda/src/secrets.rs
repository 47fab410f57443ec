//! The model API key from Secrets Manager or SSM Parameter Store, so that it is never in a
//! plain environment variable (`WEIR_MODEL_API_KEY_SECRET`, docs/configuration.md).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::aws::AwsClient;
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
    /// and the ARN, never the key); otherwise the plain environment.
    pub async fn load(aws: impl FnOnce() -> Result<AwsClient>) -> Result<Self> {
        let Some(arn) = std::env::var(VARIABLE).ok().filter(|v| !v.trim().is_empty()) else {
            return Ok(ModelEnvironment::default());
        };
        let key = read_secret(&aws()?, arn.trim()).await?;
        Ok(ModelEnvironment { overrides: KEY_VARIABLES.iter().map(|v| (*v, key.clone())).collect() })
    }

    /// The variable `name`: the secret for an API key variable, else the process's own.
    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

/// Reads the secret string of a Secrets Manager secret or the decrypted value of an SSM
/// parameter, by ARN.
pub async fn read_secret(aws: &AwsClient, arn: &str) -> Result<String> {
    let invalid = |reason: String| Error::Config { variable: VARIABLE, reason };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (service, resource) = match parts.as_slice() {
        ["arn", _, service, _, _, resource] => (*service, *resource),
        _ => return Err(invalid(format!("`{arn}` is not an ARN"))),
    };
    let (service, target, body, pointer): (&'static str, _, _, _) = match service {
        "secretsmanager" => {
            ("secretsmanager", "secretsmanager.GetSecretValue", json!({"SecretId": arn}), "/SecretString")
        }
        "ssm" => {
            let name =
                resource.strip_prefix("parameter").ok_or_else(|| invalid(format!("`{arn}` is not a parameter")))?;
            let name =
                if name.starts_with('/') && name[1..].contains('/') { name } else { name.trim_start_matches('/') };
            ("ssm", "AmazonSSM.GetParameter", json!({"Name": name, "WithDecryption": true}), "/Parameter/Value")
        }
        other => return Err(invalid(format!("`{arn}` is a {other} ARN, not secretsmanager or ssm"))),
    };
    let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
    let response = aws.post(service, &aws.endpoint(service), &headers, body.to_string().into_bytes()).await?;
    let reply: Value = serde_json::from_slice(&response.body)
        .map_err(|e| Error::Request { service, reason: format!("reply to {target} is not JSON: {e}") })?;
    let secret = reply.pointer(pointer).and_then(Value::as_str);
    secret.map(str::to_string).ok_or_else(|| invalid(format!("`{arn}` holds no string value")))
}
