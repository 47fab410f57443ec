//! An object store wrapper that holds requests to a policy: what an IAM role grants, a store
//! that ignores create-if-absent, and gates that hold chosen writes until a test opens them.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use tokio::sync::Semaphore;

/// A write held until the test lets it through: every PUT whose path contains `fragment`.
#[derive(Debug, Clone)]
pub struct Gate {
    fragment: String,
    permits: Arc<Semaphore>,
    waiting: Arc<tokio::sync::Notify>,
    held: Arc<Mutex<usize>>,
}

impl Gate {
    /// A closed gate for the PUTs whose path contains `fragment`.
    pub fn new(fragment: &str) -> Self {
        Gate {
            fragment: fragment.into(),
            permits: Arc::new(Semaphore::new(0)),
            waiting: Arc::default(),
            held: Arc::default(),
        }
    }

    /// Waits until a write is held at the gate.
    pub async fn wait_held(&self) {
        loop {
            let notified = self.waiting.notified();
            if *self.held.lock().unwrap() > 0 {
                return;
            }
            notified.await;
        }
    }

    /// Lets every held and later write through.
    pub fn open(&self) {
        self.permits.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    async fn pass(&self, location: &Path) {
        if !location.as_ref().contains(&self.fragment) {
            return;
        }
        *self.held.lock().unwrap() += 1;
        self.waiting.notify_waiters();
        self.permits.acquire().await.expect("gate").forget();
    }
}

/// A store that refuses what its policy forbids, as S3 refuses what a role does not grant.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    inner: Arc<dyn ObjectStore>,
    /// Where PUTs are allowed; `None`: anywhere.
    writable: Option<String>,
    deletes: bool,
    ignores_create: bool,
    gate: Option<Gate>,
    /// Writes and deletes refused, for the test to assert none was tried.
    refused: Arc<Mutex<Vec<String>>>,
}

impl PolicyStore {
    /// Everything allowed.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        PolicyStore { inner, writable: None, deletes: true, ignores_create: false, gate: None, refused: Arc::default() }
    }

    /// The process function's role (docs/configuration.md): reads anywhere, writes only under
    /// `agents/<agent>/`, deletes nothing.
    pub fn process_role(inner: Arc<dyn ObjectStore>, agent: &str) -> Self {
        PolicyStore { writable: Some(format!("agents/{agent}/")), deletes: false, ..Self::new(inner) }
    }

    /// The ingest function's role: writes only under `log/`, deletes nothing.
    pub fn ingest_role(inner: Arc<dyn ObjectStore>) -> Self {
        PolicyStore { writable: Some("log/".into()), deletes: false, ..Self::new(inner) }
    }

    /// A store that treats create-if-absent as a plain overwrite, as some S3-compatible
    /// servers do.
    pub fn ignoring_create(inner: Arc<dyn ObjectStore>) -> Self {
        PolicyStore { ignores_create: true, ..Self::new(inner) }
    }

    /// Holds the PUTs `gate` names until it opens.
    pub fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// What was refused, as `"put <path>"` or `"delete <path>"`.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    fn refuse(&self, what: String, path: &Path) -> object_store::Error {
        self.refused.lock().unwrap().push(what.clone());
        object_store::Error::PermissionDenied { path: path.to_string(), source: what.into() }
    }
}

impl fmt::Display for PolicyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for PolicyStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, mut opts: PutOptions) -> Result<PutResult> {
        if self.writable.as_ref().is_some_and(|prefix| !location.as_ref().starts_with(prefix.as_str())) {
            return Err(self.refuse(format!("put {location}"), location));
        }
        if let Some(gate) = &self.gate {
            gate.pass(location).await;
        }
        if self.ignores_create && matches!(opts.mode, PutMode::Create) {
            opts.mode = PutMode::Overwrite;
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        if self.writable.as_ref().is_some_and(|prefix| !location.as_ref().starts_with(prefix.as_str())) {
            return Err(self.refuse(format!("put {location}"), location));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        if self.deletes {
            return self.inner.delete_stream(locations);
        }
        let this = self.clone();
        locations
            .map(move |location| match location {
                Ok(path) => Err(this.refuse(format!("delete {path}"), &path)),
                Err(e) => Err(e),
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        if self.writable.as_ref().is_some_and(|prefix| !to.as_ref().starts_with(prefix.as_str())) {
            return Err(self.refuse(format!("copy {to}"), to));
        }
        self.inner.copy_opts(from, to, options).await
    }
}
