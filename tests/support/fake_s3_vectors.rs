//! A fake of AWS S3 Vectors on 127.0.0.1, in the service's REST-JSON wire format: the
//! operations a vector store needs (`GetIndex`, `PutVectors`, `QueryVectors`,
//! `DeleteVectors`), checked as the service checks them (AWS's API reference, 2025-07-15):
//! SigV4-signed for `s3vectors`, the index named by bucket and name or by ARN, vectors of
//! the index's dimension, at most 500 a put, filterable metadata at most 2 KB a vector,
//! filters only on filterable keys with the documented operators, metadata and filters
//! only with `s3vectors:GetVectors` allowed too. Errors go back as the service sends them:
//! the status, `x-amzn-errortype` and `{"message": ...}`.
//!
//! moto (5.2) implements the bucket and index operations and `PutVectors`, but not
//! `QueryVectors` (and needs a botocore with the `s3vectors` model), hence this fake.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The most vectors a `PutVectors` may carry.
const MAX_PUT: usize = 500;
/// The most filterable metadata a vector may carry, in bytes.
const MAX_FILTERABLE_METADATA: usize = 2048;
/// The most results a `QueryVectors` may ask for, and how many one page holds.
const MAX_TOP_K: u64 = 10_000;
const PAGE: usize = 100;

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeS3Vectors {
    url: String,
    state: Arc<Mutex<Service>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Service {
    /// Indexes by (bucket, index).
    indexes: BTreeMap<(String, String), Index>,
    /// The operations the caller may not call (`s3vectors:<Operation>` denied).
    denied: BTreeSet<String>,
    /// Every request: its operation and body.
    requests: Vec<(String, Value)>,
}

#[derive(Debug)]
struct Index {
    dimension: usize,
    metric: String,
    non_filterable: BTreeSet<String>,
    vectors: BTreeMap<String, (Vec<f32>, Map<String, Value>)>,
}

/// A refusal as the service words it.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Refusal(status, kind, message) = self;
        (status, [("x-amzn-errortype", kind), ("content-type", "application/json")], Json(json!({"message": message})))
            .into_response()
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, "ValidationException", message.into())
}

impl FakeS3Vectors {
    /// Starts a server with no index.
    pub async fn start() -> FakeS3Vectors {
        let state = Arc::new(Mutex::new(Service::default()));
        let app = axum::Router::new().route("/{operation}", axum::routing::post(handle)).with_state(state.clone());
        let (url, server) = crate::serve_loopback(app).await;
        FakeS3Vectors { url, state, server }
    }

    /// The endpoint URL (`AWS_ENDPOINT_URL_S3VECTORS`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates index `index` in vector bucket `bucket`, as `aws s3vectors create-index`
    /// does: float32 vectors of `dimension`, `metric` (`cosine` or `euclidean`), and the
    /// metadata keys that cannot be filtered on.
    pub fn create_index(&self, bucket: &str, index: &str, dimension: usize, metric: &str, non_filterable: &[&str]) {
        let index_state = Index {
            dimension,
            metric: metric.to_string(),
            non_filterable: non_filterable.iter().map(|k| k.to_string()).collect(),
            vectors: BTreeMap::new(),
        };
        self.state.lock().expect("not poisoned").indexes.insert((bucket.into(), index.into()), index_state);
    }

    /// Denies the caller `s3vectors:<operation>` from now on.
    pub fn deny(&self, operation: &str) {
        self.state.lock().expect("not poisoned").denied.insert(operation.to_string());
    }

    /// The keys of the vectors in an index.
    pub fn keys(&self, bucket: &str, index: &str) -> Vec<String> {
        let state = self.state.lock().expect("not poisoned");
        state
            .indexes
            .get(&(bucket.into(), index.into()))
            .map(|i| i.vectors.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The requests so far: operation and JSON body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.lock().expect("not poisoned").requests.clone()
    }
}

impl Drop for FakeS3Vectors {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(state): State<Arc<Mutex<Service>>>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut service = state.lock().expect("not poisoned");
    match serve(&mut service, &operation, &headers, &body) {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

fn serve(service: &mut Service, operation: &str, headers: &HeaderMap, body: &str) -> Result<Value, Refusal> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !authorization.starts_with("AWS4-HMAC-SHA256 ") || !authorization.contains("/s3vectors/aws4_request") {
        let message = "the request is not signed with SigV4 for service s3vectors";
        return Err(Refusal(StatusCode::FORBIDDEN, "AccessDeniedException", message.into()));
    }
    if !headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json")) {
        return Err(invalid("Content-Type must be application/json"));
    }
    let request: Value = serde_json::from_str(body).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    service.requests.push((operation.to_string(), request.clone()));
    let deny = |service: &Service, permission: &str| match service.denied.contains(permission) {
        true => Err(Refusal(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!("User is not authorized to perform: s3vectors:{permission}"),
        )),
        false => Ok(()),
    };
    deny(service, operation)?;
    match operation {
        "GetIndex" => {
            let (bucket, name) = index_of(&request)?;
            let index = find(service, &bucket, &name)?;
            Ok(json!({"index": {
                "vectorBucketName": bucket,
                "indexName": name,
                "indexArn": format!("arn:aws:s3vectors:us-east-1:123456789012:bucket/{bucket}/index/{name}"),
                "creationTime": 1_750_000_000,
                "dataType": "float32",
                "dimension": index.dimension,
                "distanceMetric": index.metric,
                "metadataConfiguration": {"nonFilterableMetadataKeys": index.non_filterable.iter().collect::<Vec<_>>()},
            }}))
        }
        "PutVectors" => {
            let (bucket, name) = index_of(&request)?;
            let vectors = request["vectors"].as_array().ok_or_else(|| invalid("`vectors` is required"))?;
            if vectors.is_empty() || vectors.len() > MAX_PUT {
                return Err(invalid(format!("`vectors` must hold 1 to {MAX_PUT} items, not {}", vectors.len())));
            }
            let index = find(service, &bucket, &name)?;
            let mut checked = Vec::new();
            for vector in vectors {
                let key = vector["key"].as_str().filter(|k| (1..=1024).contains(&k.len()));
                let key = key.ok_or_else(|| invalid("each vector needs a `key` of 1 to 1024 characters"))?;
                let data = float32(&vector["data"])?;
                if data.len() != index.dimension {
                    return Err(invalid(format!(
                        "Invalid record for key '{key}': vector must have length {}, but has length {}",
                        index.dimension,
                        data.len()
                    )));
                }
                let metadata = match &vector["metadata"] {
                    Value::Null => Map::new(),
                    Value::Object(metadata) => metadata.clone(),
                    _ => return Err(invalid(format!("the metadata of '{key}' must be an object"))),
                };
                let filterable: Map<String, Value> = metadata
                    .iter()
                    .filter(|(k, _)| !index.non_filterable.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let size = serde_json::to_vec(&filterable).expect("JSON").len();
                if size > MAX_FILTERABLE_METADATA {
                    return Err(invalid(format!(
                        "Invalid record for key '{key}': filterable metadata must have at most {MAX_FILTERABLE_METADATA} bytes, but has {size} bytes"
                    )));
                }
                checked.push((key.to_string(), data, metadata));
            }
            let index = service.indexes.get_mut(&(bucket, name)).expect("found above");
            for (key, data, metadata) in checked {
                index.vectors.insert(key, (data, metadata));
            }
            Ok(json!({}))
        }
        "DeleteVectors" => {
            let (bucket, name) = index_of(&request)?;
            let keys = request["keys"].as_array().ok_or_else(|| invalid("`keys` is required"))?.clone();
            find(service, &bucket, &name)?;
            let index = service.indexes.get_mut(&(bucket, name)).expect("found above");
            for key in keys.iter().filter_map(Value::as_str) {
                index.vectors.remove(key);
            }
            Ok(json!({}))
        }
        "QueryVectors" => {
            let (bucket, name) = index_of(&request)?;
            let top_k = request["topK"].as_u64().ok_or_else(|| invalid("`topK` is required"))?;
            if !(1..=MAX_TOP_K).contains(&top_k) {
                return Err(invalid(format!("`topK` must be between 1 and {MAX_TOP_K}")));
            }
            let query = float32(&request["queryVector"])?;
            let filter = request.get("filter").filter(|f| !f.is_null());
            if filter.is_some() || request["returnMetadata"] == json!(true) {
                deny(service, "GetVectors")?;
            }
            let index = find(service, &bucket, &name)?;
            if query.len() != index.dimension {
                return Err(invalid(format!(
                    "Query vector must have length {}, but has length {}",
                    index.dimension,
                    query.len()
                )));
            }
            if let Some(filter) = filter {
                check_filter(filter, &index.non_filterable)?;
            }
            let mut found: Vec<(f32, &String, &Map<String, Value>)> = Vec::new();
            for (key, (data, metadata)) in &index.vectors {
                if filter.is_none_or(|f| matches(f, metadata)) {
                    found.push((distance(&index.metric, &query, data), key, metadata));
                }
            }
            found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            let skip: usize = request["nextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let wanted = found.len().min(top_k as usize);
            let page: Vec<Value> = found[skip.min(wanted)..wanted]
                .iter()
                .take(PAGE)
                .map(|(distance, key, metadata)| {
                    let mut vector = json!({"key": key});
                    if request["returnDistance"] == json!(true) {
                        vector["distance"] = json!(distance);
                    }
                    if request["returnMetadata"] == json!(true) {
                        vector["metadata"] = Value::Object((*metadata).clone());
                    }
                    vector
                })
                .collect();
            let mut answer = json!({"vectors": page, "distanceMetric": index.metric});
            if skip + PAGE < wanted {
                answer["nextToken"] = json!((skip + PAGE).to_string());
            }
            Ok(answer)
        }
        other => Err(Refusal(StatusCode::NOT_FOUND, "UnknownOperationException", format!("no operation {other}"))),
    }
}

/// The bucket and index a request names, by names or by ARN.
fn index_of(request: &Value) -> Result<(String, String), Refusal> {
    match (request["vectorBucketName"].as_str(), request["indexName"].as_str(), request["indexArn"].as_str()) {
        (Some(bucket), Some(index), None) => Ok((bucket.into(), index.into())),
        (None, None, Some(arn)) => {
            let rest = arn.split_once(":bucket/").map(|(_, rest)| rest).unwrap_or_default();
            match rest.split_once("/index/") {
                Some((bucket, index)) => Ok((bucket.into(), index.into())),
                None => Err(invalid(format!("`{arn}` is not an index ARN"))),
            }
        }
        _ => Err(invalid("Must specify either indexArn or both vectorBucketName and indexName")),
    }
}

fn find<'s>(service: &'s Service, bucket: &str, name: &str) -> Result<&'s Index, Refusal> {
    service.indexes.get(&(bucket.to_string(), name.to_string())).ok_or_else(|| {
        Refusal(StatusCode::NOT_FOUND, "NotFoundException", format!("The specified index could not be found: {name}"))
    })
}

/// A `VectorData` union: exactly `{"float32": [...]}`.
fn float32(data: &Value) -> Result<Vec<f32>, Refusal> {
    let numbers =
        data.get("float32").and_then(Value::as_array).filter(|_| data.as_object().is_some_and(|o| o.len() == 1));
    let numbers = numbers.ok_or_else(|| invalid("vector data must be {\"float32\": [...]}"))?;
    numbers.iter().map(|n| n.as_f64().map(|n| n as f32).ok_or_else(|| invalid("vector data must be numbers"))).collect()
}

fn distance(metric: &str, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        "cosine" => {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            1.0 - dot / (norm(a) * norm(b)).max(f32::MIN_POSITIVE)
        }
        _ => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt(),
    }
}

/// The documented operators: `$eq $ne $gt $gte $lt $lte $in $nin $exists`, `$and` and `$or`
/// over lists of filters, and a bare value meaning `$eq`; only on filterable keys.
fn check_filter(filter: &Value, non_filterable: &BTreeSet<String>) -> Result<(), Refusal> {
    let object = filter.as_object().ok_or_else(|| invalid("a filter is a JSON object"))?;
    for (key, condition) in object {
        match key.as_str() {
            "$and" | "$or" => {
                let parts = condition.as_array().filter(|p| !p.is_empty());
                for part in parts.ok_or_else(|| invalid(format!("`{key}` takes a non-empty list")))? {
                    check_filter(part, non_filterable)?;
                }
            }
            operator if operator.starts_with('$') => {
                return Err(invalid(format!("Invalid filter operator: {operator}")));
            }
            field => {
                if non_filterable.contains(field) {
                    return Err(invalid(format!("Metadata key '{field}' is not filterable")));
                }
                if let Value::Object(operators) = condition {
                    for operator in operators.keys() {
                        let known = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"];
                        if !known.contains(&operator.as_str()) {
                            return Err(invalid(format!("Invalid filter operator: {operator}")));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn matches(filter: &Value, metadata: &Map<String, Value>) -> bool {
    let object = filter.as_object().expect("checked");
    object.iter().all(|(key, condition)| match key.as_str() {
        "$and" => condition.as_array().expect("checked").iter().all(|f| matches(f, metadata)),
        "$or" => condition.as_array().expect("checked").iter().any(|f| matches(f, metadata)),
        field => {
            let value = metadata.get(field);
            match condition {
                Value::Object(operators) => operators.iter().all(|(operator, operand)| {
                    let compare = |want: fn(std::cmp::Ordering) -> bool| match (
                        value.and_then(Value::as_f64),
                        operand.as_f64(),
                    ) {
                        (Some(a), Some(b)) => a.partial_cmp(&b).is_some_and(want),
                        _ => false,
                    };
                    let among = || operand.as_array().is_some_and(|items| value.is_some_and(|v| items.contains(v)));
                    match operator.as_str() {
                        "$eq" => value == Some(operand),
                        "$ne" => value != Some(operand),
                        "$gt" => compare(|o| o.is_gt()),
                        "$gte" => compare(|o| o.is_ge()),
                        "$lt" => compare(|o| o.is_lt()),
                        "$lte" => compare(|o| o.is_le()),
                        "$in" => among(),
                        "$nin" => !among(),
                        "$exists" => value.is_some() == (operand == &json!(true)),
                        _ => false,
                    }
                }),
                bare => value == Some(bare),
            }
        }
    })
}
