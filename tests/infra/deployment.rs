//! What a root configuration of `infra/examples` deploys, derived from its Terraform: each
//! module call's functions with the binary and environment variables the module gives them,
//! as `terraform apply` would set them, for the inputs a test chooses.
//!
//! Expressions are evaluated by [`hcl`](super::hcl); what only exists once applied (the
//! bucket a module creates, the account) is answered by the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::hcl::{Body, Scope, evaluate};

/// One function as deployed.
#[derive(Debug, Clone)]
pub struct Function {
    /// The module call it belongs to (`scoring`).
    pub module: String,
    /// Its role in the module (`ingest`, `process`, ...).
    pub role: String,
    /// Its name, `aws_lambda_function.this[role].function_name`.
    pub name: String,
    /// The binary in `package_dir` whose zip it runs.
    pub binary: String,
    /// Its environment variables, nulls left out as the module leaves them out.
    pub env: BTreeMap<String, String>,
}

/// Answers references to what exists only once applied: `(module call, path)`, e.g.
/// `("scoring", ["aws_s3_bucket", "this", "0", "id"])`.
pub type Applied<'a> = &'a dyn Fn(&str, &[String]) -> Option<Value>;

/// A root configuration with its inputs.
pub struct Example<'a> {
    dir: PathBuf,
    body: Body,
    inputs: BTreeMap<String, Value>,
    applied: Applied<'a>,
}

impl<'a> Example<'a> {
    /// The configuration in `dir`, with `inputs` for its variables (the rest take their
    /// defaults).
    pub fn load(dir: &Path, inputs: BTreeMap<String, Value>, applied: Applied<'a>) -> Self {
        Example { dir: dir.to_path_buf(), body: Body::of_dir(dir), inputs, applied }
    }

    /// Every function of every module call.
    pub fn functions(&self) -> Result<Vec<Function>, String> {
        let mut functions = Vec::new();
        for call in self.body.blocks.iter().filter(|b| b.kind == "module") {
            let instance = self.instance(&call.labels[0])?;
            let roles = instance.value("local.functions")?;
            let roles = roles.as_object().ok_or("local.functions is not an object")?;
            let lambda = instance.body.block("resource", "aws_lambda_function").ok_or("no aws_lambda_function")?;
            for (role, function) in roles {
                let each = Each { inner: &instance, key: role, value: function };
                let name = evaluate(&lambda.body.attributes["function_name"], &each)?;
                let env = function["environment"].as_object().ok_or("environment is not an object")?;
                let env = env
                    .iter()
                    .filter(|(_, value)| !value.is_null())
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap_or(&value.to_string()).to_string()))
                    .collect();
                functions.push(Function {
                    module: call.labels[0].clone(),
                    role: role.clone(),
                    name: name.as_str().ok_or("function_name is not a string")?.to_string(),
                    binary: function["binary"].as_str().ok_or("binary is not a string")?.to_string(),
                    env,
                });
            }
        }
        Ok(functions)
    }

    /// What the configuration uploads (`aws_s3_object`s with a `source`, with their `count`
    /// above 0): `(module call, bucket, key, local file)`.
    pub fn uploads(&self) -> Result<Vec<(String, String, String, PathBuf)>, String> {
        let mut uploads = Vec::new();
        for call in self.body.blocks.iter().filter(|b| b.kind == "module") {
            let instance = self.instance(&call.labels[0])?;
            let objects =
                instance.body.blocks.iter().filter(|b| b.kind == "resource" && b.labels[0] == "aws_s3_object");
            for object in objects {
                let count = object.body.attributes.get("count").map(|count| instance.value(count)).transpose()?;
                if count.is_some_and(|count| count == 0) {
                    continue;
                }
                let attribute = |name: &str| -> Result<String, String> {
                    let value = instance.value(object.body.attributes.get(name).ok_or(format!("no {name}"))?)?;
                    Ok(value.as_str().ok_or(format!("{name} is not a string"))?.to_string())
                };
                let source = PathBuf::from(attribute("source")?);
                uploads.push((call.labels[0].clone(), attribute("bucket")?, attribute("key")?, source));
            }
        }
        Ok(uploads)
    }

    fn instance(&self, label: &str) -> Result<Instance<'_, 'a>, String> {
        let call = self.body.block("module", label).ok_or_else(|| format!("no module call `{label}`"))?;
        let source = evaluate(&call.body.attributes["source"], self)?;
        let dir = self.dir.join(source.as_str().ok_or("source is not a string")?);
        Ok(Instance { example: self, label: label.to_string(), body: Body::of_dir(&dir), dir, call: &call.body })
    }
}

/// A variable's value: the given input, else its default; required ones must be given.
fn variable(body: &Body, name: &str, given: Option<Result<Value, String>>, scope: &dyn Scope) -> Result<Value, String> {
    if let Some(value) = given {
        return value;
    }
    let block = body.block("variable", name).ok_or_else(|| format!("no variable `{name}`"))?;
    let default = block.body.attributes.get("default").ok_or_else(|| format!("variable `{name}` is required"))?;
    evaluate(default, scope)
}

impl Scope for Example<'_> {
    fn resolve(&self, path: &[String]) -> Result<Value, String> {
        match path {
            [root, name] if root == "var" => variable(&self.body, name, self.inputs.get(name).cloned().map(Ok), self),
            [root, name] if root == "path" && name == "module" => Ok(Value::from(self.dir.display().to_string())),
            [root, name] if root == "local" => evaluate(self.body.local(name).ok_or(format!("no local {name}"))?, self),
            [root, label, output] if root == "module" => self.instance(label)?.output(output),
            other => Err(format!("cannot resolve {other:?} in the example")),
        }
    }
}

/// One module call: its variables are the call's arguments, evaluated in the example.
struct Instance<'e, 'a> {
    example: &'e Example<'a>,
    label: String,
    dir: PathBuf,
    body: Body,
    call: &'e Body,
}

impl Instance<'_, '_> {
    fn value(&self, text: &str) -> Result<Value, String> {
        evaluate(text, self)
    }

    fn output(&self, name: &str) -> Result<Value, String> {
        let output = self.body.block("output", name).ok_or_else(|| format!("no output `{name}`"))?;
        evaluate(&output.body.attributes["value"], self)
    }
}

impl Scope for Instance<'_, '_> {
    fn resolve(&self, path: &[String]) -> Result<Value, String> {
        let strs: Vec<&str> = path.iter().map(String::as_str).collect();
        match strs.as_slice() {
            ["var", name] => {
                let given = self.call.attributes.get(*name).map(|text| evaluate(text, self.example));
                variable(&self.body, name, given, self)
            }
            ["path", "module"] => Ok(Value::from(self.dir.display().to_string())),
            ["local", name] => evaluate(self.body.local(name).ok_or(format!("no local {name}"))?, self),
            ["data", "aws_partition", "current", "partition"] => Ok(Value::from("aws")),
            ["data", "aws_caller_identity", "current", "account_id"] => Ok(Value::from("123456789012")),
            _ => (self.example.applied)(&self.label, path).ok_or_else(|| {
                format!("{path:?} of module `{}` exists only once applied; the test gives no value", self.label)
            }),
        }
    }
}

/// `each.key` and `each.value` of a `for_each` resource, over its module's scope.
struct Each<'s> {
    inner: &'s dyn Scope,
    key: &'s str,
    value: &'s Value,
}

impl Scope for Each<'_> {
    fn resolve(&self, path: &[String]) -> Result<Value, String> {
        match path {
            [root, what] if root == "each" && what == "key" => Ok(Value::from(self.key)),
            [root, what] if root == "each" && what == "value" => Ok(self.value.clone()),
            _ => self.inner.resolve(path),
        }
    }
}
