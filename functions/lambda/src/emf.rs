//! CloudWatch Embedded Metric Format (EMF): log lines from which CloudWatch Logs extracts
//! metrics, so that a function publishes metrics by printing, with no API call and no
//! permission beyond writing its logs.
//!
//! A document is one JSON object on one line: the metadata member `_aws` holds the
//! timestamp (milliseconds since the epoch) and one metric directive (namespace, dimension
//! sets, metric definitions with their units); the dimensions and metrics themselves are
//! members of the root, dimension values as strings, metric values as numbers. The format's
//! limits are kept here: at most 100 metrics per directive (more are split over several
//! documents with the same dimensions) and at most 30 dimensions per set.

use serde_json::{Map, Number, Value, json};

/// Most metric definitions one directive may hold.
pub const MAX_METRICS: usize = 100;
/// Most dimensions one dimension set may hold.
pub const MAX_DIMENSIONS: usize = 30;

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things: events, batches, tokens, segments.
    Count,
    /// A duration.
    Milliseconds,
    /// A state or ratio without a unit (such as 1 for open, 0 for closed).
    None,
}

impl Unit {
    /// The unit's name in a metric definition.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One EMF document under construction: dimensions, the dimension sets metrics are
/// published under, and the metrics.
///
/// Every document is published under the set of all its dimensions, in the order they were
/// added; [`EmfDocument::also_by`] adds coarser sets, so that the same values also count
/// toward an aggregate (per agent, as well as per agent and partition).
///
/// ```
/// use weir_functions::emf::{EmfDocument, Unit};
///
/// let lines = EmfDocument::new("weir", 1_700_000_000_000)
///     .dimension("Agent", "reviews")
///     .dimension("Function", "process")
///     .dimension("Partition", "3")
///     .also_by(&["Agent", "Function"])
///     .metric("Backlog", Unit::Count, 12)
///     .lines();
/// assert_eq!(lines.len(), 1);
/// let document: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
/// assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000u64);
/// let directive = &document["_aws"]["CloudWatchMetrics"][0];
/// assert_eq!(directive["Dimensions"], serde_json::json!([["Agent", "Function", "Partition"], ["Agent", "Function"]]));
/// assert_eq!(directive["Metrics"][0], serde_json::json!({"Name": "Backlog", "Unit": "Count"}));
/// assert_eq!((document["Partition"].as_str(), document["Backlog"].as_u64()), (Some("3"), Some(12)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EmfDocument {
    namespace: String,
    timestamp_ms: u64,
    dimensions: Vec<(String, String)>,
    /// Coarser dimension sets than all of `dimensions`.
    rollups: Vec<Vec<String>>,
    metrics: Vec<(String, Unit, Number)>,
}

impl EmfDocument {
    /// An empty document for metrics of `namespace` at `timestamp_ms`.
    pub fn new(namespace: impl Into<String>, timestamp_ms: u64) -> Self {
        EmfDocument {
            namespace: namespace.into(),
            timestamp_ms,
            dimensions: Vec::new(),
            rollups: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// Adds the dimension `name` with `value`. An empty value (CloudWatch refuses one) leaves
    /// the dimension out; beyond [`MAX_DIMENSIONS`] dimensions, further ones are left out.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if !value.is_empty() && self.dimensions.len() < MAX_DIMENSIONS {
            self.dimensions.retain(|(existing, _)| *existing != name);
            self.dimensions.push((name, value));
        }
        self
    }

    /// Publishes the metrics also under the dimension set `names`: those of them that are
    /// dimensions of the document.
    pub fn also_by(mut self, names: &[&str]) -> Self {
        self.rollups.push(names.iter().map(|name| name.to_string()).collect());
        self
    }

    /// Adds the metric `name` with `value` in `unit`; a second value for the same name
    /// replaces the first.
    pub fn metric(mut self, name: impl Into<String>, unit: Unit, value: impl Into<Number>) -> Self {
        let name = name.into();
        self.metrics.retain(|(existing, _, _)| *existing != name);
        self.metrics.push((name, unit, value.into()));
        self
    }

    /// Adds a metric whose value is a fraction; a value that is not finite (which JSON cannot
    /// hold) is left out.
    pub fn metric_f64(self, name: impl Into<String>, unit: Unit, value: f64) -> Self {
        match Number::from_f64(value) {
            Some(number) => self.metric(name, unit, number),
            None => self,
        }
    }

    /// Whether the document holds no metric: printing it would publish nothing.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The document as JSON lines, each without its line break: one line per
    /// [`MAX_METRICS`] metrics, none if there are none.
    pub fn lines(&self) -> Vec<String> {
        self.metrics.chunks(MAX_METRICS).map(|metrics| self.line(metrics)).collect()
    }

    fn line(&self, metrics: &[(String, Unit, Number)]) -> String {
        let all: Vec<&str> = self.dimensions.iter().map(|(name, _)| name.as_str()).collect();
        let mut sets = vec![all.clone()];
        for rollup in &self.rollups {
            let set: Vec<&str> = all.iter().copied().filter(|name| rollup.iter().any(|r| r == name)).collect();
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
        let definitions: Vec<Value> =
            metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        let directive = json!({"Namespace": self.namespace, "Dimensions": sets, "Metrics": definitions});
        let mut root = Map::new();
        root.insert("_aws".into(), json!({"Timestamp": self.timestamp_ms, "CloudWatchMetrics": [directive]}));
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, value) in metrics {
            root.insert(name.clone(), Value::Number(value.clone()));
        }
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn more_than_a_hundred_metrics_are_split_over_documents_with_the_same_dimensions() {
        let document = (0..250).fold(EmfDocument::new("weir", 1).dimension("Agent", "a"), |doc, n| {
            doc.metric(format!("M{n}"), Unit::Count, n)
        });
        let lines: Vec<Value> = document.lines().iter().map(|line| parse(line)).collect();
        assert_eq!(lines.len(), 3);
        let counts: Vec<usize> =
            lines.iter().map(|doc| doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len()).collect();
        assert_eq!(counts, [100, 100, 50]);
        assert!(lines.iter().all(|doc| doc["Agent"] == "a"));
        assert_eq!(lines[2]["M249"], 249);
    }

    #[test]
    fn empty_values_and_dimensions_past_the_limit_are_left_out() {
        let document = (0..40)
            .fold(EmfDocument::new("weir", 1).dimension("Empty", ""), |doc, n| doc.dimension(format!("D{n}"), "x"));
        let line = parse(&document.metric("M", Unit::Count, 1).lines()[0]);
        let set = line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0].as_array().unwrap().clone();
        assert_eq!(set.len(), MAX_DIMENSIONS);
        assert!(line.get("Empty").is_none() && line.get("D30").is_none());
    }

    #[test]
    fn rollups_keep_only_the_documents_dimensions_and_are_not_repeated() {
        let document = EmfDocument::new("weir", 1)
            .dimension("Agent", "a")
            .dimension("Function", "process")
            .also_by(&["Agent", "Function", "Partition"])
            .also_by(&["Agent"])
            .also_by(&["Agent"])
            .metric("Events", Unit::Count, 3);
        let line = parse(&document.lines()[0]);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Agent", "Function"], ["Agent"]]));
    }

    #[test]
    fn no_metric_no_line_and_no_infinite_value() {
        let document = EmfDocument::new("weir", 1).dimension("Agent", "a").metric_f64("Ratio", Unit::None, f64::NAN);
        assert!(document.is_empty());
        assert!(document.lines().is_empty());
    }
}
