//! An [`ObjectStore`] wrapper that counts requests by kind.
//!
//! Cost and latency on object storage are counted in requests, so tests and benchmarks
//! assert on these numbers ("a commit is two PUTs", "a read never LISTs"). The counts
//! model what Amazon S3 would bill and serve for the same calls, whichever store is
//! wrapped, so the numbers taken against `InMemory` hold against S3.

use std::fmt;
use std::ops::{Range, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// Objects per page of an S3 `ListObjectsV2` response.
const LIST_PAGE_SIZE: u64 = 1_000;

/// Live request counters shared between a [`CountingStore`] and whoever reads them.
#[derive(Debug, Default)]
pub struct RequestCounts {
    put: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
}

impl RequestCounts {
    /// The counts so far. Take one before and one after an operation and subtract them
    /// to get what the operation cost.
    pub fn snapshot(&self) -> RequestCountsSnapshot {
        // Relaxed is enough: each counter is read on its own, and a snapshot taken while
        // requests are in flight is approximate whatever the ordering.
        RequestCountsSnapshot {
            put: self.put.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A point-in-time copy of [`RequestCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestCountsSnapshot {
    /// PUT-class requests: puts, copies, and each request of a multipart upload.
    pub put: u64,
    /// GET requests, one per byte range fetched.
    pub get: u64,
    /// HEAD requests.
    pub head: u64,
    /// LIST requests, one per page of up to 1,000 entries.
    pub list: u64,
    /// DELETE requests, one per object deleted.
    pub delete: u64,
}

impl RequestCountsSnapshot {
    /// All requests of every kind.
    pub fn total(&self) -> u64 {
        self.put + self.get + self.head + self.list + self.delete
    }
}

impl Sub for RequestCountsSnapshot {
    type Output = RequestCountsSnapshot;

    /// The requests made between `rhs` (earlier) and `self` (later). Saturates at zero,
    /// so subtracting in the wrong order gives zeros rather than a panic.
    fn sub(self, rhs: Self) -> Self::Output {
        RequestCountsSnapshot {
            put: self.put.saturating_sub(rhs.put),
            get: self.get.saturating_sub(rhs.get),
            head: self.head.saturating_sub(rhs.head),
            list: self.list.saturating_sub(rhs.list),
            delete: self.delete.saturating_sub(rhs.delete),
        }
    }
}

impl fmt::Display for RequestCountsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "put={} get={} head={} list={} delete={}", self.put, self.get, self.head, self.list, self.delete)
    }
}

/// An [`ObjectStore`] that forwards every call to `inner` and counts the requests S3
/// would receive for it.
///
/// Counting rules:
/// - `put_opts`, `copy_opts`: one put. A multipart upload is one put to start it, one per
///   part and one to complete it; aborting it is one delete.
/// - `get_opts`: one head when `options.head` is set, otherwise one get.
/// - `get_ranges`: one get per range. This is an upper bound: the default
///   `get_ranges` (used by S3) coalesces ranges less than 1 MiB apart into one request.
/// - `delete_stream`: one delete per location, counted as the inner store takes it.
///   S3 actually sends up to 1,000 locations per `DeleteObjects` request.
/// - `list`, `list_with_offset`: one list per 1,000 objects returned, rounded up, at
///   least one, counted as the stream is consumed (one `ListObjectsV2` page each).
/// - `list_with_delimiter`: one list per 1,000 objects and common prefixes, at least one.
/// - `rename_opts`: one put and one delete (S3 has no rename: it copies and deletes).
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<RequestCounts>,
}

impl CountingStore {
    /// Wraps `inner` with fresh counters.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, counts: Arc::new(RequestCounts::default()) }
    }

    /// The live counters, to read after this store has been handed away.
    pub fn counts(&self) -> Arc<RequestCounts> {
        Arc::clone(&self.counts)
    }

    /// Counts list pages as the objects of `objects` are consumed.
    fn count_pages(&self, objects: BoxStream<'static, Result<ObjectMeta>>) -> BoxStream<'static, Result<ObjectMeta>> {
        let counts = Arc::clone(&self.counts);
        // The first page is requested when the stream is first polled, even if it turns
        // out empty; a stream dropped unpolled sends nothing.
        stream::once(async move {
            RequestCounts::add(&counts.list, 1);
            let mut returned: u64 = 0;
            objects.inspect(move |item| {
                if item.is_ok() {
                    if returned > 0 && returned.is_multiple_of(LIST_PAGE_SIZE) {
                        RequestCounts::add(&counts.list, 1);
                    }
                    returned += 1;
                }
            })
        })
        .flatten()
        .boxed()
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        RequestCounts::add(&self.counts.put, 1);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        RequestCounts::add(&self.counts.put, 1);
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountingUpload { inner: upload, counts: Arc::clone(&self.counts) }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let counter = if options.head { &self.counts.head } else { &self.counts.get };
        RequestCounts::add(counter, 1);
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        RequestCounts::add(&self.counts.get, ranges.len() as u64);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let counts = Arc::clone(&self.counts);
        let counted = locations
            .inspect(move |location| {
                if location.is_ok() {
                    RequestCounts::add(&counts.delete, 1);
                }
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_pages(self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.count_pages(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await;
        // S3 pages count keys and common prefixes alike; a failed call still cost one.
        let entries = result.as_ref().map_or(0, |list| list.objects.len() + list.common_prefixes.len());
        let pages = (entries as u64).div_ceil(LIST_PAGE_SIZE).max(1);
        RequestCounts::add(&self.counts.list, pages);
        result
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        RequestCounts::add(&self.counts.put, 1);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        // Delegated whole so a store with a native rename keeps it, counted as S3's
        // copy-then-delete.
        RequestCounts::add(&self.counts.put, 1);
        RequestCounts::add(&self.counts.delete, 1);
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload whose part uploads, completion and abort are counted.
#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    counts: Arc<RequestCounts>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        RequestCounts::add(&self.counts.put, 1);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        RequestCounts::add(&self.counts.put, 1);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        RequestCounts::add(&self.counts.delete, 1);
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutMode};

    fn store() -> CountingStore {
        CountingStore::new(Arc::new(InMemory::new()))
    }

    fn snapshot(put: u64, get: u64, head: u64, list: u64, delete: u64) -> RequestCountsSnapshot {
        RequestCountsSnapshot { put, get, head, list, delete }
    }

    #[tokio::test]
    async fn counts_each_kind() {
        let store = store();
        let counts = store.counts();
        let a = Path::from("a");
        let b = Path::from("b");

        store.put(&a, "hello".into()).await.unwrap();
        store.put_opts(&a, "again".into(), PutMode::Create.into()).await.unwrap_err();
        store.get(&a).await.unwrap().bytes().await.unwrap();
        store.head(&a).await.unwrap();
        store.get_ranges(&a, &[0..1, 1..2, 3..4]).await.unwrap();
        store.copy(&a, &b).await.unwrap();
        store.delete(&b).await.unwrap();
        store.list_with_delimiter(None).await.unwrap();

        // A failed conditional put is still a request.
        assert_eq!(counts.snapshot(), snapshot(3, 4, 1, 1, 1));
        assert_eq!(counts.snapshot().total(), 10);
    }

    #[tokio::test]
    async fn list_counts_one_request_per_thousand_objects() {
        let store = store();
        let counts = store.counts();

        let empty: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert!(empty.is_empty());
        assert_eq!(counts.snapshot().list, 1, "an empty listing is still one request");

        for i in 0..2_001 {
            store.put(&Path::from(format!("obj/{i:05}")), "x".into()).await.unwrap();
        }
        let before = counts.snapshot();
        let all: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(all.len(), 2_001);
        assert_eq!((counts.snapshot() - before).list, 3);

        // Counted as consumed: reading 1,000 entries needs only the first page.
        let before = counts.snapshot();
        let first: Vec<_> = store.list(None).take(1_000).try_collect().await.unwrap();
        assert_eq!(first.len(), 1_000);
        assert_eq!((counts.snapshot() - before).list, 1);

        let before = counts.snapshot();
        let rest: Vec<_> = store.list_with_offset(None, &Path::from("obj/00999")).try_collect().await.unwrap();
        assert_eq!(rest.len(), 1_001);
        assert_eq!((counts.snapshot() - before).list, 2);

        // A stream never polled sends no request.
        let before = counts.snapshot();
        drop(store.list(None));
        assert_eq!(counts.snapshot() - before, RequestCountsSnapshot::default());
    }

    #[tokio::test]
    async fn delete_stream_counts_each_location() {
        let store = store();
        let counts = store.counts();
        let paths: Vec<Path> = (0..5).map(|i| Path::from(format!("d/{i}"))).collect();
        for path in &paths {
            store.put(path, "x".into()).await.unwrap();
        }
        let before = counts.snapshot();
        let locations = stream::iter(paths.into_iter().map(Ok)).boxed();
        let deleted: Vec<_> = store.delete_stream(locations).try_collect().await.unwrap();
        assert_eq!(deleted.len(), 5);
        assert_eq!(counts.snapshot() - before, snapshot(0, 0, 0, 0, 5));
    }

    #[tokio::test]
    async fn multipart_and_rename() {
        let store = store();
        let counts = store.counts();
        let path = Path::from("big");
        let mut upload = store.put_multipart(&path).await.unwrap();
        upload.put_part("one".into()).await.unwrap();
        upload.put_part("two".into()).await.unwrap();
        upload.complete().await.unwrap();
        assert_eq!(counts.snapshot(), snapshot(4, 0, 0, 0, 0));

        store.rename(&path, &Path::from("moved")).await.unwrap();
        assert_eq!(counts.snapshot(), snapshot(5, 0, 0, 0, 1));
        assert_eq!(store.to_string(), "Counting(InMemory)");
    }
}
