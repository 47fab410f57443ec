//! The object store under one root prefix, opened from a store URL.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};

/// An object store and the root prefix under which weir keeps everything.
///
/// Open one from a store URL: `memory://`, `file:///some/dir` or `s3://bucket/prefix` (with
/// the usual `AWS_*` environment variables, `AWS_ENDPOINT_URL` included).
///
/// ```
/// # tokio_test_block_on(async {
/// use weir_engine::Storage;
/// let storage = Storage::from_url("memory://").unwrap();
/// let path = storage.path("log/config.json");
/// assert!(storage.create(&path, "{}".into()).await.unwrap());
/// assert!(!storage.create(&path, "{}".into()).await.unwrap(), "second create finds it there");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl Storage {
    /// Storage on `store` under `root`.
    pub fn new(store: Arc<dyn ObjectStore>, root: impl Into<Path>) -> Self {
        Storage { store, root: root.into() }
    }

    /// Opens the store a URL names; see the type's documentation for the schemes.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidInput(format!("store url `{url}`: {reason}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        match parsed.scheme() {
            "memory" => Ok(Storage::new(Arc::new(object_store::memory::InMemory::new()), Path::default())),
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| invalid("not an absolute file path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| invalid(format!("cannot create {}: {e}", dir.display())))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| invalid(e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(Storage::new(Arc::new(store), Path::default()))
            }
            "s3" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| invalid("no bucket".into()))?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                // object_store reads AWS_ENDPOINT; the AWS CLI and SDKs use AWS_ENDPOINT_URL.
                if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                    builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
                }
                let store = builder.build().map_err(|e| invalid(e.to_string()))?;
                Ok(Storage::new(Arc::new(store), Path::from(parsed.path().trim_matches('/'))))
            }
            other => {
                Err(invalid(format!("unknown scheme `{other}`; use memory://, file:///dir or s3://bucket/prefix")))
            }
        }
    }

    /// The same root on another store: used to wrap the store (counting, fault injection).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> Self {
        Storage { store, root: self.root.clone() }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path under the root; `relative` is split on `/`.
    pub fn path(&self, relative: &str) -> Path {
        relative.split('/').filter(|s| !s.is_empty()).fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Creates `path` only if absent. `Ok(true)`: created; `Ok(false)`: something was there.
    ///
    /// A `false` may also mean that a retried request created it: callers that must know
    /// compare the content they read back.
    pub async fn create(&self, path: &Path, bytes: Bytes) -> Result<bool> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(path, PutPayload::from_bytes(bytes), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that the store honours create-if-absent (`If-None-Match: *`), on which fencing,
    /// idempotent appends and intents rest: creates the probe object `relative` (a constant
    /// body) and, if that succeeded, creates it again. A store that accepts a create of an
    /// object that exists is refused, by name.
    pub(crate) async fn check_create_if_absent(&self, relative: &str) -> Result<()> {
        let path = self.path(relative);
        let body = Bytes::from_static(b"{\"probe\": \"create-if-absent\"}\n");
        if self.create(&path, body.clone()).await? && self.create(&path, body).await? {
            return Err(Error::InvalidInput(format!(
                "the object store {} ignores create-if-absent (If-None-Match: *): it let `{path}` be created twice; \
                 weir's fencing needs a store that refuses it (S3, a directory, moto, MinIO)",
                self.store
            )));
        }
        Ok(())
    }

    /// Writes `path`, replacing what may be there (for objects with one writer).
    pub async fn put(&self, path: &Path, bytes: Bytes) -> Result<()> {
        self.store.put(path, PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// Reads `path`; `None` if it does not exist.
    pub async fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a byte range of `path`.
    pub async fn get_range(&self, path: &Path, range: std::ops::Range<u64>) -> Result<Bytes> {
        Ok(self.store.get_range(path, range).await?)
    }

    /// Deletes `path`; deleting what is not there is not an error.
    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every path, in as few requests as the store allows (S3 deletes up to 1,000
    /// objects per request); what is already gone is not an error.
    pub async fn delete_all(&self, paths: Vec<Path>) -> Result<()> {
        use futures::StreamExt;
        let locations = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(locations);
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Lists every object under `prefix` after `offset` (exclusive), in path order.
    pub async fn list_after(&self, prefix: &Path, offset: Option<&Path>) -> Result<Vec<object_store::ObjectMeta>> {
        use futures::TryStreamExt;
        let stream = match offset {
            Some(offset) => self.store.list_with_offset(Some(prefix), offset),
            None => self.store.list(Some(prefix)),
        };
        let mut objects: Vec<_> = stream.try_collect().await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// Lists `prefix`, in order, if it holds fewer than `limit` objects; `None` if not.
    /// Reads no more than `limit` entries: on S3, with a limit up to 1,000, one request.
    pub async fn list_if_fewer(&self, prefix: &Path, limit: usize) -> Result<Option<Vec<object_store::ObjectMeta>>> {
        use futures::{StreamExt, TryStreamExt};
        let mut objects: Vec<_> = self.store.list(Some(prefix)).take(limit).try_collect().await?;
        if objects.len() >= limit {
            return Ok(None);
        }
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(Some(objects))
    }
}

/// The relative path of an object below a prefix, as a string.
pub(crate) fn relative_to(prefix: &Path, path: &Path) -> String {
    path.prefix_match(prefix)
        .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"))
        .unwrap_or_default()
}
