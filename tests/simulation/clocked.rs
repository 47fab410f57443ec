//! An object store whose objects are as old as the simulated clock says: every write is
//! stamped with the clock's time, so that collection's grace and retention, which read
//! objects' ages, see simulated time.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, Result,
};
use weir_engine::Clock;

#[derive(Debug, Clone)]
pub struct ClockedStore {
    inner: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    written_ms: Arc<Mutex<HashMap<Path, u64>>>,
}

impl ClockedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, clock: Arc<dyn Clock>) -> Self {
        ClockedStore { inner, clock, written_ms: Arc::default() }
    }

    fn stamp(&self, mut meta: ObjectMeta) -> ObjectMeta {
        if let Some(ms) = self.written_ms.lock().unwrap().get(&meta.location) {
            meta.last_modified = chrono::DateTime::from_timestamp_millis(*ms as i64).expect("a time");
        }
        meta
    }

    fn stamped(&self, list: BoxStream<'static, Result<ObjectMeta>>) -> BoxStream<'static, Result<ObjectMeta>> {
        let this = self.clone();
        list.map(move |meta| meta.map(|meta| this.stamp(meta))).boxed()
    }
}

impl fmt::Display for ClockedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clocked({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ClockedStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.written_ms.lock().unwrap().insert(location.clone(), self.clock.now_ms());
        Ok(result)
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.written_ms.lock().unwrap().insert(location.clone(), self.clock.now_ms());
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let mut result = self.inner.get_opts(location, options).await?;
        result.meta = self.stamp(result.meta);
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.stamped(self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.stamped(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects = result.objects.into_iter().map(|meta| self.stamp(meta)).collect();
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        self.written_ms.lock().unwrap().insert(to.clone(), self.clock.now_ms());
        Ok(())
    }
}
