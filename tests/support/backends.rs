//! The three backends every conformance test runs on.

use std::sync::Arc;

use object_store::path::Path;
use weir_engine::Storage;

/// An object store backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `object_store`'s in-memory store.
    Memory,
    /// A local directory (create-if-absent only, no compare-and-swap).
    File,
    /// moto's S3 server, which enforces conditional writes.
    S3,
}

/// The store under `prefix` in the shared moto server's bucket: what the functions reach at
/// `moto::shared().store_url(prefix)` with `moto::shared().env()`.
pub fn moto_storage(prefix: &str) -> Storage {
    let moto = crate::moto::shared();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(moto.endpoint())
        .with_allow_http(true)
        .with_bucket_name(moto.bucket())
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_region("us-east-1")
        .build()
        .expect("s3 store");
    Storage::new(Arc::new(store), Path::from(prefix))
}

/// Storage on a fresh, empty root of `backend`. Keep the returned guard alive as long as the
/// storage is used (it owns the temporary directory).
pub fn fresh_storage(backend: Backend) -> (Storage, Option<tempfile_guard::TempDir>) {
    match backend {
        Backend::Memory => (Storage::from_url("memory://").expect("memory store"), None),
        Backend::File => {
            let dir = tempfile_guard::TempDir::new();
            let url = format!("file://{}", dir.path().display());
            (Storage::from_url(&url).expect("file store"), Some(dir))
        }
        Backend::S3 => (moto_storage(&format!("test-{:016x}", next_unique())), None),
    }
}

fn next_unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = u64::from(std::process::id());
    (pid << 32) | NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A temporary directory removed on drop, without a dependency outside tests.
pub mod tempfile_guard {
    /// A directory under the system temp dir, removed on drop.
    #[derive(Debug)]
    pub struct TempDir(std::path::PathBuf);

    impl TempDir {
        /// Creates a fresh directory.
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("weir-test-{:016x}", super::next_unique()));
            std::fs::create_dir_all(&path).expect("temp dir");
            TempDir(path)
        }

        /// Its path.
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Default for TempDir {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
