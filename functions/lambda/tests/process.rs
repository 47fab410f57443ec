//! The process handler: drains partitions with backlog, and when its deadline is near stops
//! and hands the rest to a continuation through the Lambda Invoke API.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::{Counter, Recorder, seeded_log};
use serde_json::json;
use weir_engine::{
    ActionError, Agent, CommittedReader, EngineSettings, ErrorKind, EventContext, LogInput, Storage, Unavailable,
};
use weir_functions::config::ProcessConfig;
use weir_functions::process::ProcessFunction;
use weir_functions::work::{Deadline, PartitionOutcome, PartitionRequest};
use weir_functions::{AwsClients, LambdaInvoker};
use weir_tests::backends::{Backend, fresh_storage};

const EVENTS: usize = 24;

async fn function(storage: &Storage, invoke_api: &str, max_batch_events: usize) -> ProcessFunction {
    function_of(Arc::new(Counter), storage, invoke_api, max_batch_events).await
}

async fn function_of(
    agent: Arc<dyn Agent>,
    storage: &Storage,
    invoke_api: &str,
    max_batch_events: usize,
) -> ProcessFunction {
    let config = ProcessConfig {
        storage: storage.clone(),
        agent: "counter".into(),
        settings: EngineSettings { max_batch_events, ..Default::default() },
        deadline_margin: Duration::from_secs(10),
        continuation_function: "weir-process-test".into(),
        dispatch_function: None,
        metrics: Default::default(),
    };
    let credentials = aws_sdk_lambda::config::Credentials::new("AKIDTEST", "secret", None, None, "test");
    let loader = AwsClients::defaults().endpoint_url(invoke_api).credentials_provider(credentials);
    let aws = AwsClients::load(loader.region(aws_config::Region::new("eu-west-1"))).await;
    ProcessFunction::new(config, agent, LambdaInvoker::new(&aws)).unwrap()
}

fn far() -> Deadline {
    Deadline::new(SystemTime::now() + Duration::from_secs(3600), Duration::from_secs(10))
}

async fn committed_outputs(storage: &Storage, partitions: u32) -> usize {
    let mut outputs = 0;
    for p in 0..partitions {
        outputs += CommittedReader::new(storage.clone(), "counter", p).unwrap().outputs().await.unwrap().len();
    }
    outputs
}

#[tokio::test]
async fn drains_the_partitions_with_backlog_and_then_finds_none() {
    let (storage, _dir) = fresh_storage(Backend::File);
    seeded_log(&storage, 4, EVENTS).await;
    let invoke_api = Recorder::start(StatusCode::ACCEPTED).await;
    let function = function(&storage, &invoke_api.url, 1000).await;

    let report = function.handle(PartitionRequest::default(), far()).await.unwrap();
    assert_eq!(report.events, EVENTS);
    assert!(report.partitions.iter().all(|p| p.outcome == PartitionOutcome::Done), "{report:?}");
    assert!(report.continued.is_empty());
    assert_eq!(committed_outputs(&storage, 4).await, EVENTS);

    let again = function.handle(PartitionRequest::default(), far()).await.unwrap();
    assert!(again.partitions.is_empty(), "no backlog left: {again:?}");
    assert!(invoke_api.received().is_empty(), "no continuation was needed");
}

#[tokio::test]
async fn a_near_deadline_stops_after_one_batch_and_invokes_the_continuation() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let log = seeded_log(&storage, 4, EVENTS).await;
    let invoke_api = Recorder::start(StatusCode::ACCEPTED).await;
    let function = function(&storage, &invoke_api.url, 2).await;
    let with_backlog: Vec<u32> =
        (0..4).filter(|p| (0..8).any(|k| log.partition_of(&format!("key-{k}")) == *p)).collect();

    // Already within the margin: each partition runs its one batch, then stops.
    let near = Deadline::new(SystemTime::now() + Duration::from_secs(5), Duration::from_secs(10));
    let report = function.handle(PartitionRequest::default(), near).await.unwrap();
    assert_eq!(report.batches, with_backlog.len(), "{report:?}");
    assert_eq!(report.events, 2 * with_backlog.len());
    assert_eq!(report.continued, with_backlog);

    let calls = invoke_api.received();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, "/2015-03-31/functions/weir-process-test/invocations");
    assert_eq!(call.headers["x-amz-invocation-type"], "Event");
    let authorization = call.headers["authorization"].to_str().unwrap();
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"), "{authorization}");
    assert!(authorization.contains("/eu-west-1/lambda/aws4_request"), "{authorization}");
    assert_eq!(call.body, json!({"partitions": with_backlog}));

    // The continuation, as Lambda would run it, finishes the work.
    let request: PartitionRequest = serde_json::from_value(call.body.clone()).unwrap();
    let rest = function.handle(request, far()).await.unwrap();
    assert_eq!(report.events + rest.events, EVENTS);
    assert!(rest.continued.is_empty());
    assert_eq!(committed_outputs(&storage, 4).await, EVENTS);
}

/// An Invoke API that refuses every request as Lambda does: status, `x-amzn-ErrorType`
/// and a JSON message. Returns its URL and the count of requests it received.
async fn refusing_invoke_api(status: StatusCode, error_type: &'static str) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let body = json!({"Type": "User", "message": format!("{error_type} from the test")}).to_string();
            (status, [("x-amzn-errortype", error_type), ("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

#[tokio::test]
async fn a_throttled_continuation_is_retried_with_backoff_then_a_retryable_error() {
    let (storage, _dir) = fresh_storage(Backend::Memory);
    seeded_log(&storage, 1, 4).await;
    let (url, requests) = refusing_invoke_api(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException").await;
    let function = function(&storage, &url, 1).await;
    let past = Deadline::new(SystemTime::now(), Duration::from_secs(10));
    let error = function.handle(PartitionRequest::default(), past).await.unwrap_err();
    assert!(error.to_string().contains("TooManyRequestsException"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Retryable, "{error}");
    assert!(requests.load(Ordering::SeqCst) > 1, "a throttled request is retried");
}

#[tokio::test]
async fn a_refused_continuation_is_not_retried_and_says_to_fix_the_configuration() {
    let (storage, _dir) = fresh_storage(Backend::Memory);
    seeded_log(&storage, 1, 4).await;
    let (url, requests) = refusing_invoke_api(StatusCode::FORBIDDEN, "AccessDeniedException").await;
    let function = function(&storage, &url, 1).await;
    let past = Deadline::new(SystemTime::now(), Duration::from_secs(10));
    let error = function.handle(PartitionRequest::default(), past).await.unwrap_err();
    assert!(error.to_string().contains("AccessDeniedException"), "{error}");
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a refusal is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_racing_for_partitions_skip_the_ones_they_lose() {
    let (storage, _dir) = fresh_storage(Backend::Memory);
    seeded_log(&storage, 2, EVENTS).await;
    let invoke_api = Recorder::start(StatusCode::ACCEPTED).await;
    let (a, b) = (function(&storage, &invoke_api.url, 2).await, function(&storage, &invoke_api.url, 2).await);
    let request = || PartitionRequest { partitions: Some(vec![0, 1]), shadow: None };
    let (ra, rb) = tokio::join!(a.handle(request(), far()), b.handle(request(), far()));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let outcomes = ra.partitions.iter().chain(&rb.partitions).map(|p| &p.outcome);
    let skipped = |o: &PartitionOutcome| {
        matches!(o, PartitionOutcome::Done | PartitionOutcome::Fenced | PartitionOutcome::Leased)
    };
    assert!(outcomes.clone().all(skipped), "{ra:?} {rb:?}");
    assert_eq!(committed_outputs(&storage, 2).await, EVENTS, "each event committed once");
}

/// [`Counter`] behind a dependency that can be down: while it is, every event fails with
/// [`Unavailable`].
struct BehindAService {
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl Agent for BehindAService {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Unavailable::new("the scoring service answered 503 after its retries").into());
        }
        Counter.on_event(event, ctx).await
    }
}

/// While a service the events need is down, partitions wait at their last commit: no dead
/// letter, no continuation, no error of the function; once it is back, every event is
/// processed once.
#[tokio::test]
async fn partitions_wait_while_a_service_is_down_and_go_on_once_it_is_back() {
    let (storage, _dir) = fresh_storage(Backend::File);
    seeded_log(&storage, 4, EVENTS).await;
    let invoke_api = Recorder::start(StatusCode::ACCEPTED).await;
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let function = function_of(Arc::new(BehindAService { down: down.clone() }), &storage, &invoke_api.url, 1000).await;

    for _ in 0..2 {
        let report = function.handle(PartitionRequest::default(), far()).await.unwrap();
        assert!(!report.partitions.is_empty());
        let waiting = report
            .partitions
            .iter()
            .all(|p| matches!(&p.outcome, PartitionOutcome::Unavailable(r) if r.contains("503")));
        assert!(waiting, "{report:?}");
        assert_eq!((report.events, report.continued.len()), (0, 0), "{report:?}");
    }
    assert!(invoke_api.received().is_empty(), "no continuation while waiting");

    down.store(false, std::sync::atomic::Ordering::SeqCst);
    let report = function.handle(PartitionRequest::default(), far()).await.unwrap();
    assert!(report.partitions.iter().all(|p| p.outcome == PartitionOutcome::Done), "{report:?}");
    assert_eq!(report.events, EVENTS);
    assert_eq!(committed_outputs(&storage, 4).await, EVENTS);
    for p in 0..4 {
        let dead = CommittedReader::new(storage.clone(), "counter", p).unwrap().dead_letters().await.unwrap();
        assert!(dead.is_empty(), "partition {p}: {dead:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_invocations_submit_and_poll_batch_calls_and_resume_the_keys() {
    use weir_agent::{Prompt, ReActAgent};
    use weir_models::{ApiKey, OpenAiChat, OpenAiConfig};
    use weir_tests::fake_openai_batch::FakeOpenAiBatch;

    let fake = FakeOpenAiBatch::start(|_| Ok(json!({"content": "noted"}))).await;
    let config =
        OpenAiConfig { base_url: Some(fake.base_url().into()), batch: true, ..OpenAiConfig::chat("gpt-4o-mini") };
    let model = Arc::new(OpenAiChat::new(&config, ApiKey::new("sk-test")).unwrap());
    let agent = ReActAgent::builder("model", model).prompt(Prompt::text("Note {note}")).build().unwrap();
    let storage = Storage::from_url("memory://").unwrap();
    let log = weir_engine::EventLog::create(storage.clone(), 2).await.unwrap();
    let notes: Vec<_> = (0..6).map(|i| weir_engine::LogEvent::json(format!("k{i}"), &json!({"note": i}))).collect();
    log.append("notes", &notes).await.unwrap();
    let function = function_of(Arc::new(agent), &storage, "http://127.0.0.1:9", 10).await;
    let scheduled = || PartitionRequest { partitions: None, shadow: None };

    // The first invocation runs the events: every key waits, and its calls are submitted.
    let first = function.handle(scheduled(), far()).await.unwrap();
    assert_eq!((first.events, committed_outputs(&storage, 2).await), (6, 0));
    let submitted = fake.counts();
    assert_eq!((submitted.creates, submitted.chat), (2, 0), "one provider batch per partition, no ordinary call");

    // Nothing new in the log: a scheduled invocation polls, finds the batches at work.
    function.handle(scheduled(), far()).await.unwrap();
    assert_eq!((fake.counts().creates, committed_outputs(&storage, 2).await), (2, 0));

    // Once they end, the next scheduled invocation appends the results and resumes the keys.
    fake.complete();
    function.handle(scheduled(), far()).await.unwrap();
    assert_eq!(committed_outputs(&storage, 2).await, 6);
    let done = fake.counts();
    assert_eq!((done.creates, done.chat, done.batched_requests), (2, 0, 6));
    for p in 0..2 {
        assert!(CommittedReader::new(storage.clone(), "counter", p).unwrap().waits().await.unwrap().is_empty());
    }
}
