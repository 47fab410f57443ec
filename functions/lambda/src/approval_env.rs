//! Where approval links' secret and URL come from on AWS (docs/waits.md, "Approvals on AWS"):
//! the secret from Secrets Manager or SSM by ARN (`WEIR_APPROVAL_SECRET_ARN`), so that it is
//! never in a plain variable; dispatch's link URL from the approvals function's own URL
//! (`WEIR_APPROVAL_FUNCTION`), asked of Lambda at cold start, since the module cannot pass a
//! function's URL to a sibling of the same resource without a cycle.

use std::collections::HashMap;

use crate::aws::{AwsClients, failure};
use crate::config::{APPROVAL_FUNCTION, APPROVAL_SECRET, APPROVAL_SECRET_ARN, APPROVAL_URL};
use crate::error::{Error, Result};
use crate::secrets::read_secret_of;

/// The process environment, with `WEIR_APPROVAL_SECRET` answered by the secret that
/// `WEIR_APPROVAL_SECRET_ARN` names and `WEIR_APPROVAL_URL` by the URL of the function that
/// `WEIR_APPROVAL_FUNCTION` names, each read once at cold start; a plain variable set
/// alongside its source is refused as ambiguous. Without either source, `aws` is not called.
#[derive(Debug, Clone, Default)]
pub struct ApprovalEnvironment {
    overrides: HashMap<&'static str, String>,
}

impl ApprovalEnvironment {
    /// Reads what the variables of `lookup` name, with the clients `aws` builds.
    pub async fn load(lookup: impl Fn(&str) -> Option<String>, aws: impl AsyncFnOnce() -> AwsClients) -> Result<Self> {
        let set = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let (secret_arn, function) = (set(APPROVAL_SECRET_ARN), set(APPROVAL_FUNCTION));
        for (source, plain) in [(APPROVAL_SECRET_ARN, APPROVAL_SECRET), (APPROVAL_FUNCTION, APPROVAL_URL)] {
            if set(source).is_some() && set(plain).is_some() {
                return Err(Error::config(source, format!("is set, and so is {plain}: set one of them")));
            }
        }
        if secret_arn.is_none() && function.is_none() {
            return Ok(ApprovalEnvironment::default());
        }
        let aws = aws().await;
        let mut overrides = HashMap::new();
        if let Some(arn) = secret_arn {
            overrides.insert(APPROVAL_SECRET, read_secret_of(&aws, APPROVAL_SECRET_ARN, &arn).await?);
        }
        if let Some(function) = function {
            overrides.insert(APPROVAL_URL, function_url(&aws, &function).await?);
        }
        Ok(ApprovalEnvironment { overrides })
    }

    /// The variable `name`: what a source answered, else the process's own.
    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides.get(name).cloned().or_else(|| std::env::var(name).ok())
    }
}

/// The URL of `function`'s function URL.
async fn function_url(aws: &AwsClients, function: &str) -> Result<String> {
    let request = aws.lambda().get_function_url_config().function_name(function);
    let answer = request.send().await.map_err(|e| failure("lambda", "GetFunctionUrlConfig", e));
    match answer {
        Ok(answer) => Ok(answer.function_url().to_string()),
        Err(e) if e.kind() == weir_engine::ErrorKind::InvalidInput => {
            Err(Error::config(APPROVAL_FUNCTION, format!("names `{function}`, whose URL cannot be read: {e}")))
        }
        Err(e) => Err(e),
    }
}
