//! An [`ObjectStore`] wrapper that injects faults, for deterministic crash tests.
//!
//! Every request gets a sequence number, from 1, in the order it is issued: each trait
//! call, each location of a `delete_stream`, each part, completion and abort of a
//! multipart upload. A [`FaultPlan`] says which numbers fail and how. The usual test
//! runs the invocation once without faults, reads [`FaultPlan::requests`], then runs it
//! again for every `N` in `1..=requests` with a fault at `N`, checking after each run
//! that the durable state is one the protocol allows.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, pending};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, future};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, Error, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};
use tokio::sync::watch;

/// The `store` named in injected [`Error::Generic`] errors.
const STORE_NAME: &str = "faulty";

/// What happens to the request a [`FaultPlan`] picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The request fails without reaching the inner store.
    Error,
    /// The request is applied to the inner store, then fails as if its response had been
    /// lost: the caller cannot tell whether it took effect.
    AppliedThenError,
    /// A `PutMode::Create` put (or `CopyMode::Create` copy) is applied, then reports
    /// [`Error::AlreadyExists`]: what a client sees when its conditional PUT won, the
    /// response was lost, and its retry found the object it had itself written. On any
    /// other request this behaves like [`Fault::AppliedThenError`].
    AppliedThenAlreadyExists,
    /// The request waits this long, then fails without being applied.
    Timeout(Duration),
    /// The request waits this long, then runs normally.
    Latency(Duration),
    /// The process dies here: this request and every later one never complete, nor does
    /// any earlier request still in flight. Use [`FaultPlan::wait_crashed`] to learn when
    /// to abort the task running the invocation.
    Crash,
}

impl Fault {
    /// Whether a request with this fault reaches the inner store.
    fn applies(&self) -> bool {
        match self {
            Fault::AppliedThenError | Fault::AppliedThenAlreadyExists | Fault::Latency(_) => true,
            Fault::Error | Fault::Timeout(_) | Fault::Crash => false,
        }
    }
}

/// Which requests fail.
#[derive(Debug)]
enum Schedule {
    None,
    At(BTreeMap<u64, Fault>),
    Every(Fault),
    Random { seed: u64, probability: f64, faults: Vec<Fault> },
}

impl Schedule {
    fn fault_for(&self, request: u64) -> Option<Fault> {
        match self {
            Schedule::None => None,
            Schedule::At(faults) => faults.get(&request).cloned(),
            Schedule::Every(fault) => Some(fault.clone()),
            Schedule::Random { seed, probability, faults } => {
                // Seeded from (seed, request) rather than one shared stream, so request N's
                // fault does not depend on which requests happened to be issued before it.
                let mut rng = XorShift64::new(seed ^ request.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                if faults.is_empty() || rng.next_f64() >= *probability {
                    return None;
                }
                let index = rng.next_u64() % faults.len() as u64;
                faults.get(usize::try_from(index).ok()?).cloned()
            }
        }
    }
}

/// A tiny xorshift64* generator, so random plans are reproducible without a `rand`
/// dependency.
#[derive(Debug)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        // Scramble the seed (splitmix64's finaliser) so nearby seeds give unrelated
        // streams, and keep the state non-zero, where xorshift would stay forever.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Which requests of a [`FaultyStore`] fail and how, and what happened so far.
///
/// Shared between the store and the test through an `Arc`, so the test can read the
/// request count and wait for a crash while the store is in use.
#[derive(Debug)]
pub struct FaultPlan {
    schedule: Schedule,
    issued: AtomicU64,
    crashed: watch::Sender<bool>,
    injected: Mutex<Vec<(u64, Fault)>>,
}

impl FaultPlan {
    fn with_schedule(schedule: Schedule) -> Self {
        Self {
            schedule,
            issued: AtomicU64::new(0),
            crashed: watch::Sender::new(false),
            injected: Mutex::new(Vec::new()),
        }
    }

    /// No faults: every request runs normally and is only counted.
    pub fn none() -> Self {
        Self::with_schedule(Schedule::None)
    }

    /// `fault` at request `request` (counted from 1), none elsewhere.
    pub fn at(request: u64, fault: Fault) -> Self {
        Self::scripted([(request, fault)])
    }

    /// Each listed fault at its request number, none elsewhere.
    pub fn scripted(faults: impl IntoIterator<Item = (u64, Fault)>) -> Self {
        Self::with_schedule(Schedule::At(faults.into_iter().collect()))
    }

    /// `fault` at every request, e.g. `Fault::Latency` to slow the whole store.
    pub fn every(fault: Fault) -> Self {
        Self::with_schedule(Schedule::Every(fault))
    }

    /// Each request fails with `probability`, with a fault picked from `faults`, and the
    /// same `seed` picks the same fault for the same request number on every run.
    pub fn random(seed: u64, probability: f64, faults: Vec<Fault>) -> Self {
        Self::with_schedule(Schedule::Random { seed, probability, faults })
    }

    /// How many requests have been issued so far, including failed and hung ones.
    pub fn requests(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// The faults injected so far, by request number, to tell which request a failing
    /// random run broke. Requests hung after a crash are not listed.
    pub fn injected(&self) -> Vec<(u64, Fault)> {
        self.injected.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether a [`Fault::Crash`] has been reached.
    pub fn crashed(&self) -> bool {
        *self.crashed.borrow()
    }

    /// Waits until a [`Fault::Crash`] is reached; returns at once if it already was.
    pub async fn wait_crashed(&self) {
        let mut crashed = self.crashed.subscribe();
        // Cannot fail: `self` owns the sender, so it outlives this borrow.
        let _ = crashed.wait_for(|crashed| *crashed).await;
    }

    /// Numbers a request and picks its fault, at the moment it is issued.
    fn issue(&self, kind: &'static str) -> Ticket {
        let request = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crashed() {
            return Ticket { request, fault: Some(Fault::Crash) };
        }
        let fault = self.schedule.fault_for(request);
        if let Some(fault) = &fault {
            tracing::debug!(request, kind, ?fault, "injecting object store fault");
            self.injected.lock().unwrap_or_else(PoisonError::into_inner).push((request, fault.clone()));
            if *fault == Fault::Crash {
                // Marked at issue time, not when the request is polled, so every request
                // issued after this one hangs too.
                self.crashed.send_replace(true);
            }
        }
        Ticket { request, fault }
    }

    /// Runs `op`, the request to the inner store, under the ticket's fault. `created` is
    /// the path when the request is a create-if-absent write.
    async fn perform<T>(
        &self,
        ticket: Ticket,
        created: Option<&Path>,
        op: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let request = ticket.request;
        let result = match ticket.fault {
            None => op.await,
            Some(Fault::Error) => Err(injected(format!("injected error at request {request}"))),
            Some(Fault::AppliedThenError) => {
                let _ = op.await;
                Err(lost_response(request))
            }
            Some(Fault::AppliedThenAlreadyExists) => match (created, op.await) {
                (Some(path), Ok(_)) => Err(Error::AlreadyExists {
                    path: path.to_string(),
                    source: format!(
                        "injected at request {request}: the create was applied and its \
                         response lost"
                    )
                    .into(),
                }),
                // A create that genuinely failed reports its own error.
                (Some(_), Err(e)) => Err(e),
                (None, _) => Err(lost_response(request)),
            },
            Some(Fault::Timeout(delay)) => {
                tokio::time::sleep(delay).await;
                Err(injected(format!("injected timeout at request {request} after {delay:?}")))
            }
            Some(Fault::Latency(delay)) => {
                tokio::time::sleep(delay).await;
                op.await
            }
            Some(Fault::Crash) => pending().await,
        };
        // A dead process reads no responses, including those of requests issued before
        // the crash that finish after it.
        if self.crashed() {
            return pending().await;
        }
        result
    }
}

/// A request's number and the fault it was given.
#[derive(Debug)]
struct Ticket {
    request: u64,
    fault: Option<Fault>,
}

impl Ticket {
    fn applies(&self) -> bool {
        self.fault.as_ref().is_none_or(Fault::applies)
    }
}

fn injected(message: String) -> Error {
    Error::Generic { store: STORE_NAME, source: message.into() }
}

fn lost_response(request: u64) -> Error {
    injected(format!("injected error after applying request {request} (response lost)"))
}

/// An [`ObjectStore`] that forwards to `inner` and injects the faults of a [`FaultPlan`].
///
/// `rename_opts` is not forwarded whole: it runs as a copy then a delete, two requests,
/// as on S3, so a crash can fall between them.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    plan: Arc<FaultPlan>,
}

impl FaultyStore {
    /// Wraps `inner`; keep a clone of `plan` to read the request count or wait for a
    /// crash.
    pub fn new(inner: Arc<dyn ObjectStore>, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }

    /// Runs a list request: the fault strikes when the list is called, and reaches the
    /// caller as the stream's only item.
    fn faulty_list(&self, objects: BoxStream<'static, Result<ObjectMeta>>) -> BoxStream<'static, Result<ObjectMeta>> {
        let ticket = self.plan.issue("list");
        let plan = Arc::clone(&self.plan);
        stream::once(async move {
            // Listing changes nothing, so "applied" only means the stream was started.
            match plan.perform(ticket, None, async { Ok(objects) }).await {
                Ok(objects) => hang_after_crash(plan, objects),
                Err(e) => stream::once(future::ready(Err(e))).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// Makes `items` stop yielding once the plan has crashed.
fn hang_after_crash<T: Send + 'static>(
    plan: Arc<FaultPlan>,
    items: BoxStream<'static, Result<T>>,
) -> BoxStream<'static, Result<T>> {
    items
        .then(move |item| {
            let plan = Arc::clone(&plan);
            async move {
                if plan.crashed() {
                    return pending().await;
                }
                item
            }
        })
        .boxed()
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let ticket = self.plan.issue("put");
        let created = matches!(opts.mode, PutMode::Create).then_some(location);
        let op = self.inner.put_opts(location, payload, opts);
        self.plan.perform(ticket, created, op).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let ticket = self.plan.issue("put_multipart");
        let op = self.inner.put_multipart_opts(location, opts);
        let upload = self.plan.perform(ticket, None, op).await?;
        Ok(Box::new(FaultyUpload { inner: upload, plan: Arc::clone(&self.plan) }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let kind = if options.head { "head" } else { "get" };
        let ticket = self.plan.issue(kind);
        let op = self.inner.get_opts(location, options);
        // The body is not gated: a response that arrived before a crash is the caller's.
        self.plan.perform(ticket, None, op).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let ticket = self.plan.issue("get_ranges");
        let op = self.inner.get_ranges(location, ranges);
        self.plan.perform(ticket, None, op).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let inner = Arc::clone(&self.inner);
        let plan = Arc::clone(&self.plan);
        // One location at a time, each its own request, so a fault hits exactly one
        // object; batching is the inner store's business and irrelevant to these tests.
        locations
            .then(move |location| {
                let inner = Arc::clone(&inner);
                let plan = Arc::clone(&plan);
                async move {
                    let location = location?;
                    let ticket = plan.issue("delete");
                    let one = stream::once(future::ready(Ok(location))).boxed();
                    let op = async move {
                        inner.delete_stream(one).next().await.unwrap_or_else(|| {
                            Err(injected("inner delete_stream yielded nothing for one location".into()))
                        })
                    };
                    plan.perform(ticket, None, op).await
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.faulty_list(self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.faulty_list(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let ticket = self.plan.issue("list");
        let op = self.inner.list_with_delimiter(prefix);
        self.plan.perform(ticket, None, op).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let ticket = self.plan.issue("copy");
        let created = matches!(options.mode, CopyMode::Create).then_some(to);
        let op = self.inner.copy_opts(from, to, options);
        self.plan.perform(ticket, created, op).await
    }
}

/// A multipart upload whose parts, completion and abort are requests of the plan.
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    plan: Arc<FaultPlan>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let ticket = self.plan.issue("put_part");
        // Decided now, not when the future runs: starting the inner part uploads it.
        let part = ticket.applies().then(|| self.inner.put_part(data));
        let plan = Arc::clone(&self.plan);
        Box::pin(async move {
            let op = async move {
                match part {
                    Some(part) => part.await,
                    // Not reached: `perform` does not run `op` for faults that skip it.
                    None => Ok(()),
                }
            };
            plan.perform(ticket, None, op).await
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let ticket = self.plan.issue("complete_multipart");
        let op = self.inner.complete();
        self.plan.perform(ticket, None, op).await
    }

    async fn abort(&mut self) -> Result<()> {
        let ticket = self.plan.issue("abort_multipart");
        let op = self.inner.abort();
        self.plan.perform(ticket, None, op).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use tokio::time::Instant;

    fn setup(plan: FaultPlan) -> (Arc<InMemory>, FaultyStore, Arc<FaultPlan>) {
        let inner = Arc::new(InMemory::new());
        let plan = Arc::new(plan);
        let store = FaultyStore::new(inner.clone(), Arc::clone(&plan));
        (inner, store, plan)
    }

    async fn exists(store: &InMemory, path: &str) -> bool {
        match store.head(&Path::from(path)).await {
            Ok(_) => true,
            Err(Error::NotFound { .. }) => false,
            Err(e) => panic!("head {path}: {e}"),
        }
    }

    fn generic_message(err: &Error) -> String {
        match err {
            Error::Generic { store, source } => {
                assert_eq!(*store, STORE_NAME);
                source.to_string()
            }
            other => panic!("expected a Generic error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn error_fails_without_applying() {
        let (inner, store, plan) = setup(FaultPlan::at(2, Fault::Error));
        store.put(&Path::from("a"), "1".into()).await.unwrap();
        let err = store.put(&Path::from("b"), "2".into()).await.unwrap_err();
        assert_eq!(generic_message(&err), "injected error at request 2");
        store.put(&Path::from("c"), "3".into()).await.unwrap();

        assert!(exists(&inner, "a").await);
        assert!(!exists(&inner, "b").await);
        assert!(exists(&inner, "c").await);
        assert_eq!(plan.requests(), 3);
        assert_eq!(plan.injected(), vec![(2, Fault::Error)]);
    }

    #[tokio::test]
    async fn applied_then_error_applies_and_fails() {
        let (inner, store, _plan) = setup(FaultPlan::at(1, Fault::AppliedThenError));
        let err = store.put(&Path::from("a"), "1".into()).await.unwrap_err();
        assert_eq!(generic_message(&err), "injected error after applying request 1 (response lost)");
        assert!(exists(&inner, "a").await);
    }

    #[tokio::test]
    async fn applied_then_already_exists_on_create() {
        let plan = FaultPlan::scripted([(1, Fault::AppliedThenAlreadyExists), (2, Fault::AppliedThenAlreadyExists)]);
        let (inner, store, _plan) = setup(plan);
        let path = Path::from("claim");
        let err = store.put_opts(&path, "mine".into(), PutMode::Create.into()).await.unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
        // The write won although the caller was told it lost.
        let body = inner.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(body.as_ref(), b"mine");

        // Not a create: the lost-response error.
        let err = store.get(&path).await.unwrap_err();
        assert!(generic_message(&err).contains("response lost"));
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_waits_then_fails_unapplied() {
        let (inner, store, _plan) = setup(FaultPlan::at(1, Fault::Timeout(Duration::from_secs(30))));
        let start = Instant::now();
        let err = store.put(&Path::from("a"), "1".into()).await.unwrap_err();
        assert!(start.elapsed() >= Duration::from_secs(30));
        assert!(generic_message(&err).starts_with("injected timeout at request 1"));
        assert!(!exists(&inner, "a").await);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_waits_then_succeeds() {
        let (inner, store, plan) = setup(FaultPlan::every(Fault::Latency(Duration::from_millis(50))));
        let start = Instant::now();
        store.put(&Path::from("a"), "1".into()).await.unwrap();
        store.head(&Path::from("a")).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(exists(&inner, "a").await);
        assert_eq!(plan.requests(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn crash_hangs_this_and_every_later_request() {
        let (inner, store, plan) = setup(FaultPlan::at(2, Fault::Crash));
        let store = Arc::new(store);
        let invocation = tokio::spawn({
            let store = Arc::clone(&store);
            async move {
                store.put(&Path::from("a"), "1".into()).await?;
                store.put(&Path::from("b"), "2".into()).await?;
                store.put(&Path::from("c"), "3".into()).await
            }
        });
        plan.wait_crashed().await;
        invocation.abort();
        assert!(invocation.await.unwrap_err().is_cancelled());

        assert!(plan.crashed());
        assert!(exists(&inner, "a").await);
        assert!(!exists(&inner, "b").await);
        assert!(!exists(&inner, "c").await);

        // Anything after the crash hangs too, reads included.
        let a = Path::from("a");
        let late = tokio::time::timeout(Duration::from_secs(60), store.head(&a)).await;
        assert!(late.is_err());
        let mut listing = store.list(None);
        let late = tokio::time::timeout(Duration::from_secs(60), listing.next()).await;
        assert!(late.is_err());
        assert_eq!(plan.requests(), 4);
        assert_eq!(plan.injected(), vec![(2, Fault::Crash)]);
    }

    #[tokio::test]
    async fn delete_stream_numbers_each_location() {
        let (inner, store, plan) = setup(FaultPlan::at(5, Fault::Error));
        for name in ["x", "y", "z"] {
            store.put(&Path::from(name), "v".into()).await.unwrap();
        }
        let locations = stream::iter(["x", "y", "z"].map(|p| Ok(Path::from(p)))).boxed();
        let results: Vec<_> = store.delete_stream(locations).collect().await;
        assert!(results[0].is_ok());
        assert_eq!(generic_message(results[1].as_ref().unwrap_err()), "injected error at request 5");
        assert!(results[2].is_ok());
        assert!(!exists(&inner, "x").await);
        assert!(exists(&inner, "y").await);
        assert!(!exists(&inner, "z").await);
        assert_eq!(plan.requests(), 6);
    }

    #[tokio::test]
    async fn list_fault_is_the_streams_only_item() {
        let (_inner, store, plan) = setup(FaultPlan::at(3, Fault::Error));
        store.put(&Path::from("p/1"), "v".into()).await.unwrap();
        store.put(&Path::from("p/2"), "v".into()).await.unwrap();

        let items: Vec<_> = store.list(Some(&Path::from("p"))).collect().await;
        assert_eq!(items.len(), 1);
        assert!(generic_message(items[0].as_ref().unwrap_err()).contains("request 3"));

        let after: Vec<_> =
            store.list_with_offset(Some(&Path::from("p")), &Path::from("p/1")).try_collect().await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].location, Path::from("p/2"));
        store.list_with_delimiter(None).await.unwrap();
        assert_eq!(plan.requests(), 5);
    }

    #[tokio::test]
    async fn multipart_and_rename_are_several_requests() {
        let (inner, store, plan) = setup(FaultPlan::at(3, Fault::Error));
        let mut upload = store.put_multipart(&Path::from("big")).await.unwrap(); // 1
        upload.put_part("a".into()).await.unwrap(); // 2
        upload.put_part("b".into()).await.unwrap_err(); // 3
        upload.abort().await.unwrap(); // 4
        assert!(!exists(&inner, "big").await);

        store.put(&Path::from("from"), "v".into()).await.unwrap(); // 5
        store.rename(&Path::from("from"), &Path::from("to")).await.unwrap(); // 6, 7
        assert_eq!(plan.requests(), 7);
        assert_eq!(store.to_string(), "Faulty(InMemory)");
    }

    /// The pattern crash tests follow: count a clean run, then fault each request.
    #[tokio::test]
    async fn fault_every_request_of_a_workload() {
        async fn workload(store: &FaultyStore) -> Result<()> {
            store.put_opts(&Path::from("m"), "1".into(), PutMode::Create.into()).await?;
            store.copy(&Path::from("m"), &Path::from("n")).await?;
            store.delete(&Path::from("m")).await
        }

        let (_inner, store, plan) = setup(FaultPlan::none());
        workload(&store).await.unwrap();
        let requests = plan.requests();
        assert_eq!(requests, 3);

        for n in 1..=requests {
            let (inner, store, _plan) = setup(FaultPlan::at(n, Fault::Error));
            assert!(workload(&store).await.is_err(), "fault at request {n}");
            // Each prefix of the workload leaves its own durable state.
            let expect_m = n >= 2;
            assert_eq!(exists(&inner, "m").await, expect_m, "request {n}");
            assert_eq!(exists(&inner, "n").await, n == 3, "request {n}");
        }
    }

    #[tokio::test]
    async fn random_plans_are_reproducible() {
        async fn run(seed: u64) -> Vec<(u64, Fault)> {
            let faults = vec![Fault::Error, Fault::AppliedThenError];
            let (_inner, store, plan) = setup(FaultPlan::random(seed, 0.3, faults));
            for i in 0..200 {
                let _ = store.put(&Path::from(format!("k{i}")), "v".into()).await;
            }
            plan.injected()
        }

        let first = run(7).await;
        assert_eq!(first, run(7).await);
        assert_ne!(first, run(8).await);
        // Roughly the asked-for rate: 30% of 200.
        assert!((30..=90).contains(&first.len()), "{}", first.len());
    }
}
