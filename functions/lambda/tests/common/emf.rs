//! CloudWatch Logs' side of the Embedded Metric Format, written from the specification
//! (CloudWatch user guide, "Specification: Embedded metric format", and the JSON schema it
//! gives), independently of `weir_functions::emf`: a log line is a document if it is a JSON
//! object with an `_aws` member; a document that breaks a rule is refused as a whole, as
//! CloudWatch refuses it; a valid one yields one datum per directive, dimension set and
//! metric.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// The units a metric definition may name (MetricDatum's `StandardUnit`).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];
/// Most metric definitions in one directive.
const MAX_METRICS: usize = 100;
/// Most dimension keys in one dimension set.
const MAX_DIMENSIONS: usize = 30;
/// Most values of one metric given as an array.
const MAX_VALUES: usize = 100;
/// Longest namespace, metric name and dimension name.
const MAX_NAME: usize = 255;
/// Longest dimension value (a CloudWatch `Dimension`'s).
const MAX_DIMENSION_VALUE: usize = 1024;
/// Largest log event CloudWatch Logs accepts.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One metric value as CloudWatch extracts it from a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    pub dimensions: BTreeMap<String, String>,
    pub values: Vec<f64>,
    pub timestamp_ms: u64,
}

impl Datum {
    /// Whether its dimensions are exactly `dimensions`.
    pub fn has_dimensions(&self, dimensions: &[(&str, &str)]) -> bool {
        self.dimensions.len() == dimensions.len()
            && dimensions.iter().all(|(name, value)| self.dimensions.get(*name).is_some_and(|v| v == value))
    }
}

/// Extracts the metrics of one log line: `None` if it is not a document (not a JSON object,
/// or no `_aws` member), `Some(Err(why))` if it is one CloudWatch would refuse.
pub fn extract(line: &str) -> Option<Result<Vec<Datum>, String>> {
    // The whole message must be the object: nothing before or after it.
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(line) else { return None };
    root.contains_key("_aws").then(|| document(line, &root))
}

fn document(line: &str, root: &Map<String, Value>) -> Result<Vec<Datum>, String> {
    if line.len() > MAX_EVENT_BYTES {
        return Err(format!("{} bytes: larger than a log event", line.len()));
    }
    let metadata = root["_aws"].as_object().ok_or("`_aws` is not an object")?;
    let timestamp_ms = metadata
        .get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("`_aws.Timestamp` is missing or not a non-negative integer of milliseconds")?;
    let directives = metadata
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("`_aws.CloudWatchMetrics` is missing or not an array")?;
    let mut data = Vec::new();
    for (n, directive) in directives.iter().enumerate() {
        let at = |why: String| format!("directive {n}: {why}");
        data.extend(metric_directive(root, directive, timestamp_ms).map_err(at)?);
    }
    Ok(data)
}

fn name(value: &Value, what: &str) -> Result<String, String> {
    let text = value.as_str().ok_or(format!("{what} is not a string"))?;
    if text.is_empty() || text.chars().count() > MAX_NAME || text.contains(['\n', '\r']) {
        return Err(format!("{what} `{text}` is empty, longer than {MAX_NAME} or not one line"));
    }
    Ok(text.to_string())
}

fn metric_directive(root: &Map<String, Value>, directive: &Value, timestamp_ms: u64) -> Result<Vec<Datum>, String> {
    let directive = directive.as_object().ok_or("not an object")?;
    let namespace = name(directive.get("Namespace").ok_or("no Namespace")?, "Namespace")?;
    let sets = directive.get("Dimensions").and_then(Value::as_array).ok_or("Dimensions is missing or not an array")?;
    if sets.is_empty() {
        return Err("Dimensions holds no dimension set".into());
    }
    let mut dimension_sets = Vec::new();
    for set in sets {
        let keys = set.as_array().ok_or("a dimension set is not an array")?;
        if keys.len() > MAX_DIMENSIONS {
            return Err(format!("a dimension set of {} keys, more than {MAX_DIMENSIONS}", keys.len()));
        }
        let mut dimensions = BTreeMap::new();
        for key in keys {
            let key = name(key, "a dimension key")?;
            let value = root.get(&key).ok_or(format!("dimension `{key}` is not a member of the root"))?;
            let value = value.as_str().ok_or(format!("dimension `{key}` is not a string: {value}"))?;
            if value.is_empty() || value.chars().count() > MAX_DIMENSION_VALUE {
                return Err(format!("dimension `{key}` has an empty or too long value"));
            }
            if dimensions.insert(key.clone(), value.to_string()).is_some() {
                return Err(format!("dimension `{key}` twice in one set"));
            }
        }
        dimension_sets.push(dimensions);
    }
    let metrics = directive.get("Metrics").and_then(Value::as_array).ok_or("Metrics is missing or not an array")?;
    if metrics.len() > MAX_METRICS {
        return Err(format!("{} metric definitions, more than {MAX_METRICS}", metrics.len()));
    }
    let mut seen = BTreeSet::new();
    let mut data = Vec::new();
    for definition in metrics {
        let definition = definition.as_object().ok_or("a metric definition is not an object")?;
        let metric = name(definition.get("Name").ok_or("a metric definition without Name")?, "a metric name")?;
        if !seen.insert(metric.clone()) {
            return Err(format!("metric `{metric}` defined twice"));
        }
        let unit = match definition.get("Unit") {
            None => "None".to_string(),
            Some(unit) => {
                let unit = unit.as_str().ok_or(format!("`{metric}`: Unit is not a string"))?;
                if !UNITS.contains(&unit) {
                    return Err(format!("`{metric}`: `{unit}` is not a CloudWatch unit"));
                }
                unit.to_string()
            }
        };
        match definition.get("StorageResolution") {
            None => {}
            Some(resolution) if resolution.as_u64() == Some(1) || resolution.as_u64() == Some(60) => {}
            Some(other) => return Err(format!("`{metric}`: StorageResolution {other}, not 1 or 60")),
        }
        let target = root.get(&metric).ok_or(format!("metric `{metric}` is not a member of the root"))?;
        let values: Vec<f64> = match target {
            Value::Number(number) => vec![number.as_f64().ok_or(format!("`{metric}` is not a number"))?],
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_VALUES => items
                .iter()
                .map(|item| item.as_f64().ok_or(format!("`{metric}` holds a value that is not a number: {item}")))
                .collect::<Result<_, _>>()?,
            other => return Err(format!("metric `{metric}` is not a number nor 1 to {MAX_VALUES} numbers: {other}")),
        };
        for dimensions in &dimension_sets {
            data.push(Datum {
                namespace: namespace.clone(),
                name: metric.clone(),
                unit: unit.clone(),
                dimensions: dimensions.clone(),
                values: values.clone(),
                timestamp_ms,
            });
        }
    }
    Ok(data)
}

/// The validator itself: what it accepts and refuses, from the specification's example and
/// its rules.
pub fn check_the_validator() {
    let example = r#"{"_aws": {"Timestamp": 1574109732004, "CloudWatchMetrics": [{"Namespace": "lambda-function-metrics",
        "Dimensions": [["functionVersion"]], "Metrics": [{"Name": "time", "Unit": "Milliseconds"}]}]},
        "functionVersion": "$LATEST", "time": 100, "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"}"#;
    let example = example.replace('\n', " ");
    let data = extract(&example).unwrap().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(
        (data[0].name.as_str(), data[0].unit.as_str(), data[0].values.as_slice()),
        ("time", "Milliseconds", &[100.0][..])
    );
    assert!(data[0].has_dimensions(&[("functionVersion", "$LATEST")]));

    assert!(extract(r#"{"level": "INFO", "message": "not a document"}"#).is_none());
    assert!(extract("START RequestId: 1").is_none());
    assert!(extract(&format!("{example} trailing")).is_none(), "data after the object: not JSON, not a document");
    let refused = |change: &dyn Fn(&mut Value)| {
        let mut document: Value = serde_json::from_str(&example).unwrap();
        change(&mut document);
        extract(&document.to_string()).unwrap().unwrap_err()
    };
    refused(&|d| d["_aws"].as_object_mut().unwrap().remove("Timestamp").map(drop).unwrap());
    refused(&|d| d["functionVersion"] = Value::from(1));
    refused(&|d| d["time"] = Value::from("100"));
    refused(&|d| d.as_object_mut().unwrap().remove("time").map(drop).unwrap());
    refused(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = Value::from("Tokens"));
    refused(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = Value::from(5));
    refused(&|d| d["time"] = Value::from((0..101).collect::<Vec<u32>>()));
    refused(&|d| {
        let many: Vec<Value> = (0..101).map(|n| serde_json::json!({"Name": format!("m{n}")})).collect();
        d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::from(many);
    });
    refused(&|d| {
        let keys: Vec<String> = (0..31).map(|n| format!("d{n}")).collect();
        for key in &keys {
            d[key] = Value::from("x");
        }
        d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([keys]);
    });
}

/// Writes the metrics of each of `documents` again with AWS's own EMF library
/// (`aws-embedded-metrics` from PyPI, which `.ci/run` installs into `.ci/venv`): the same
/// namespace, dimension sets, metrics, units, values and timestamp, one line per document
/// (or more, if the library splits it).
pub fn written_by_aws_library(documents: &[String]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
from aws_embedded_metrics.logger.metrics_context import MetricsContext
from aws_embedded_metrics.serializers.log_serializer import LogSerializer
for line in sys.stdin:
    document = json.loads(line)
    meta = document["_aws"]
    for directive in meta["CloudWatchMetrics"]:
        context = MetricsContext.empty()
        context.namespace = directive["Namespace"]
        context.should_use_default_dimensions = False
        context.set_dimensions([{key: document[key] for key in keys} for keys in directive["Dimensions"]])
        for metric in directive["Metrics"]:
            context.put_metric(metric["Name"], document[metric["Name"]], metric.get("Unit", "None"))
        context.meta["Timestamp"] = meta["Timestamp"]
        for written in LogSerializer.serialize(context):
            print(written)
"#;
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/venv/bin/python");
    let python = if venv.exists() { venv } else { "python3".into() };
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}; .ci/run installs aws-embedded-metrics into .ci/venv", python.display()));
    let input = documents.iter().map(|d| format!("{d}\n")).collect::<String>();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "aws-embedded-metrics (`pip install aws-embedded-metrics`, as .ci/run does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
}
