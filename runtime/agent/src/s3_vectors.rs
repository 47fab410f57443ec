//! AWS S3 Vectors as a [`VectorStore`]: chunks put into a vector index with their text and
//! metadata, queries embedded by the configured model and answered by the service.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3vectors::Client;
use aws_sdk_s3vectors::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3vectors::types::{DistanceMetric, PutInputVector, QueryOutputVector, VectorData};
use aws_smithy_types::{Document as AwsDocument, Number};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use weir_models::EmbeddingModel;
use weir_search::{AddProgress, Chunk, MetadataFilter, SearchError, SearchMode, SearchQuery};

use crate::event::builtin::Document;
use crate::retrieval::VectorStore;

/// The most vectors one `PutVectors` request may carry (the service's limit).
const PUT_BATCH: usize = 500;

/// The metadata key holding a chunk's text. Filterable metadata is limited to 2 KB a vector,
/// so the index must be created with `text` among its non-filterable keys.
pub const TEXT_KEY: &str = "text";

/// The metadata key holding the id of the document a chunk was cut from: what to cite.
const DOCUMENT_KEY: &str = "document";

/// A vector index of an S3 vector bucket, searched by meaning: the query is embedded by
/// `embedder` (the model the index's vectors come from) and the nearest vectors returned,
/// filtered by their metadata. [`put`](Self::put) adds chunks, embedded by the same model.
///
/// The index is created outside weir (`aws s3vectors create-index`), of `float32` vectors
/// of the model's dimensions, with `text` a non-filterable metadata key (docs/search.md).
/// Failures name the index and what was wrong: a missing index or bucket, a permission the
/// caller lacks, vectors of another length than the index's.
///
/// ```no_run
/// # async fn demo(model: std::sync::Arc<dyn weir_models::EmbeddingModel>) -> Result<(), weir_search::SearchError> {
/// use weir_agent::{S3VectorsStore, VectorStore};
/// use weir_search::{MetadataFilter, SearchQuery};
///
/// let store = S3VectorsStore::from_env("ops-vectors", "runbooks", model).await;
/// let query = SearchQuery::new("disk full on a node").top_k(3).filter(MetadataFilter::default().and("service", "storage"));
/// let found = store.search(&query).await?;
/// for document in found {
///     println!("{} {:.3}", document.id, document.score);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct S3VectorsStore {
    client: Client,
    bucket: String,
    index: String,
    embedder: Arc<dyn EmbeddingModel>,
    /// The index's dimensions and distance metric, read once.
    shape: OnceCell<IndexShape>,
}

/// What a query's vector must match, and how its distances read.
#[derive(Debug, Clone)]
struct IndexShape {
    dimension: usize,
    metric: DistanceMetric,
}

impl S3VectorsStore {
    /// The index `index` of vector bucket `bucket`, through a client of `config`.
    pub fn new(
        config: &SdkConfig,
        bucket: impl Into<String>,
        index: impl Into<String>,
        embedder: Arc<dyn EmbeddingModel>,
    ) -> Self {
        S3VectorsStore {
            client: Client::new(config),
            bucket: bucket.into(),
            index: index.into(),
            embedder,
            shape: OnceCell::new(),
        }
    }

    /// The index as the environment's AWS configuration reaches it (region, credentials,
    /// `AWS_ENDPOINT_URL_S3VECTORS`).
    pub async fn from_env(
        bucket: impl Into<String>,
        index: impl Into<String>,
        embedder: Arc<dyn EmbeddingModel>,
    ) -> Self {
        Self::new(&aws_config::load_defaults(BehaviorVersion::latest()).await, bucket, index, embedder)
    }

    /// The index as a URL, `s3vectors://bucket/index`: how errors name it.
    pub fn url(&self) -> String {
        format!("s3vectors://{}/{}", self.bucket, self.index)
    }

    /// Embeds `chunks` and puts them into the index, keyed `document#ordinal` so that putting
    /// a chunk again replaces it; their text and metadata go with them. Returns how many
    /// were put.
    pub async fn put(&self, chunks: &[Chunk], progress: &dyn AddProgress) -> Result<usize, SearchError> {
        let shape = self.shape().await?;
        progress.started(chunks.len() as u64);
        for batch in chunks.chunks(PUT_BATCH) {
            let texts: Vec<String> = batch.iter().map(|chunk| chunk.text.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            let mut request = self.client.put_vectors().vector_bucket_name(&self.bucket).index_name(&self.index);
            for (chunk, vector) in batch.iter().zip(vectors) {
                let key = format!("{}#{}", chunk.document, chunk.ordinal);
                self.check_dimension(&shape, vector.len(), || format!("chunk `{key}`"))?;
                let item = PutInputVector::builder()
                    .key(key)
                    .data(VectorData::Float32(vector))
                    .metadata(chunk_metadata(chunk))
                    .build()
                    .map_err(|e| self.remote("PutVectors", DisplayErrorContext(&e).to_string(), false))?;
                request = request.vectors(item);
            }
            request.send().await.map_err(|e| self.failure("PutVectors", e))?;
            progress.advanced(batch.len() as u64);
        }
        Ok(chunks.len())
    }

    /// The index's dimensions and metric, asked of the service on first use.
    async fn shape(&self) -> Result<IndexShape, SearchError> {
        let shape = self
            .shape
            .get_or_try_init(|| async {
                let answer = self
                    .client
                    .get_index()
                    .vector_bucket_name(&self.bucket)
                    .index_name(&self.index)
                    .send()
                    .await
                    .map_err(|e| self.failure("GetIndex", e))?;
                let index =
                    answer.index().ok_or_else(|| self.remote("GetIndex", "the answer names no index".into(), false))?;
                Ok::<_, SearchError>(IndexShape {
                    dimension: usize::try_from(index.dimension()).unwrap_or_default(),
                    metric: index.distance_metric().clone(),
                })
            })
            .await?;
        Ok(shape.clone())
    }

    fn check_dimension(&self, shape: &IndexShape, got: usize, what: impl Fn() -> String) -> Result<(), SearchError> {
        match got == shape.dimension {
            true => Ok(()),
            false => Err(SearchError::DimensionMismatch {
                kb: self.url(),
                expected: shape.dimension,
                got,
                what: format!("{} (embedded by `{}`)", what(), self.embedder.name()),
            }),
        }
    }

    fn remote(&self, operation: &'static str, problem: String, unavailable: bool) -> SearchError {
        SearchError::Remote { store: self.url(), operation, problem, unavailable }
    }

    /// The error of a failed request, saying what to fix: the index, the permissions, the
    /// request; throttling, timeouts and 5xx answers are unavailable (try again later).
    fn failure<E, R>(&self, operation: &'static str, error: SdkError<E, R>) -> SearchError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let refusal = match &error {
            SdkError::ServiceError(refusal) => refusal.err(),
            _ => return self.remote(operation, DisplayErrorContext(&error).to_string(), true),
        };
        let message = refusal.message().unwrap_or("no message");
        let code = refusal.code().unwrap_or("an unnamed error");
        let (problem, unavailable) = match code {
            "NotFoundException" => (
                format!(
                    "vector bucket `{}` or its index `{}` does not exist ({code}: {message})",
                    self.bucket, self.index
                ),
                false,
            ),
            "AccessDeniedException" => (
                format!(
                    "access denied ({code}: {message}): the caller needs s3vectors:{operation}{}",
                    match operation {
                        "QueryVectors" => " and s3vectors:GetVectors (for metadata and filters)",
                        _ => "",
                    }
                ),
                false,
            ),
            "ValidationException" => (format!("the service refused the request ({code}: {message})"), false),
            "TooManyRequestsException"
            | "ServiceUnavailableException"
            | "InternalServerException"
            | "RequestTimeoutException" => (format!("{code}: {message}"), true),
            _ => (format!("{code}: {message}"), false),
        };
        self.remote(operation, problem, unavailable)
    }
}

#[async_trait::async_trait]
impl VectorStore for S3VectorsStore {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError> {
        if !matches!(query.mode, SearchMode::Auto | SearchMode::Vector) {
            let problem = format!("{} is searched by vector only, not {:?}", self.url(), query.mode);
            return Err(SearchError::InvalidQuery(problem));
        }
        let max_results = query.top_k;
        let shape = self.shape().await?;
        let vector = match &query.vector {
            Some(vector) => vector.clone(),
            None => self.embedder.embed(std::slice::from_ref(&query.text)).await?.pop().unwrap_or_default(),
        };
        self.check_dimension(&shape, vector.len(), || "the query".to_string())?;
        let filter = filter_document(&query.filter);
        let mut found = Vec::new();
        let mut next_token = None;
        // A top-k past the service's page size comes back in pages.
        loop {
            let answer = self
                .client
                .query_vectors()
                .vector_bucket_name(&self.bucket)
                .index_name(&self.index)
                .top_k(i32::try_from(max_results).unwrap_or(i32::MAX))
                .query_vector(VectorData::Float32(vector.clone()))
                .set_filter(filter.clone())
                .return_metadata(true)
                .return_distance(true)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| self.failure("QueryVectors", e))?;
            found.extend(answer.vectors().iter().map(|found| document_of(found, &shape.metric)));
            next_token = answer.next_token().map(str::to_string);
            if next_token.is_none() || found.len() >= max_results {
                break;
            }
        }
        found.truncate(max_results);
        Ok(found)
    }
}

/// A vector found, as agents see it: its text the content, its other metadata kept.
fn document_of(found: &QueryOutputVector, metric: &DistanceMetric) -> Document {
    let mut metadata = match found.metadata().map(json_of) {
        Some(Value::Object(metadata)) => metadata,
        _ => Map::new(),
    };
    let content = match metadata.remove(TEXT_KEY) {
        Some(Value::String(text)) => text,
        _ => String::new(),
    };
    Document {
        id: found.key().to_string(),
        content,
        score: score(metric, found.distance().unwrap_or(f32::MAX)),
        metadata: Value::Object(metadata),
    }
}

/// A similarity, higher nearer, from the service's distance.
fn score(metric: &DistanceMetric, distance: f32) -> f32 {
    match metric {
        DistanceMetric::Cosine => 1.0 - distance,
        _ => 1.0 / (1.0 + distance),
    }
}

/// A chunk's metadata as the index keeps it: its own, the document's id and its text.
fn chunk_metadata(chunk: &Chunk) -> AwsDocument {
    let mut metadata: std::collections::HashMap<String, AwsDocument> =
        chunk.metadata.iter().map(|(key, value)| (key.clone(), AwsDocument::String(value.clone()))).collect();
    metadata.insert(DOCUMENT_KEY.into(), AwsDocument::String(chunk.document.clone()));
    metadata.insert(TEXT_KEY.into(), AwsDocument::String(chunk.text.clone()));
    AwsDocument::Object(metadata)
}

/// `filter` in S3 Vectors' filter syntax: `{"key": {"$eq": "value"}}`, several under `$and`.
fn filter_document(filter: &MetadataFilter) -> Option<AwsDocument> {
    let mut conditions: Vec<AwsDocument> = filter
        .conditions()
        .map(|(key, value)| {
            let equals = AwsDocument::Object([("$eq".to_string(), AwsDocument::String(value.into()))].into());
            AwsDocument::Object([(key.to_string(), equals)].into())
        })
        .collect();
    match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(AwsDocument::Object([("$and".to_string(), AwsDocument::Array(conditions))].into())),
    }
}

/// The JSON value of an AWS document.
fn json_of(document: &AwsDocument) -> Value {
    match document {
        AwsDocument::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
        AwsDocument::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        AwsDocument::Number(Number::PosInt(n)) => Value::from(*n),
        AwsDocument::Number(Number::NegInt(n)) => Value::from(*n),
        AwsDocument::Number(Number::Float(n)) => Value::from(*n),
        AwsDocument::String(text) => Value::String(text.clone()),
        AwsDocument::Bool(flag) => Value::Bool(*flag),
        AwsDocument::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_translate_to_s3_vectors_syntax() {
        assert!(filter_document(&MetadataFilter::default()).is_none());
        let one = filter_document(&MetadataFilter::default().and("service", "payments")).unwrap();
        assert_eq!(json_of(&one), serde_json::json!({"service": {"$eq": "payments"}}));
        let two = filter_document(&MetadataFilter::default().and("service", "payments").and("env", "prod")).unwrap();
        assert_eq!(
            json_of(&two),
            serde_json::json!({"$and": [{"service": {"$eq": "payments"}}, {"env": {"$eq": "prod"}}]})
        );
    }

    #[test]
    fn cosine_distance_reads_as_similarity() {
        assert_eq!(score(&DistanceMetric::Cosine, 0.25), 0.75);
        assert!(score(&DistanceMetric::Euclidean, 0.0) > score(&DistanceMetric::Euclidean, 2.0));
    }
}
