//! Dispatch: each committed output reaches the sink with a stable id, a crash before the
//! cursor advance redelivers with the same ids, two dispatchers never both advance, and the
//! SQS and event-log sinks work against moto and a directory.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::{Counter, Recorder, seeded_log};
use serde_json::{Value, json};
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{Engine, EngineSettings, EventLog, Storage};
use weir_functions::AwsClients;
use weir_functions::config::DispatchConfig;
use weir_functions::dispatch::DispatchFunction;
use weir_functions::sink::{Sink, SinkTarget, SnsSink, SqsSink, WebhookSink};
use weir_functions::work::{Deadline, PartitionRequest};
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::backends::{Backend, fresh_storage};

/// A store with `events` events over `partitions`, processed by the counter in batches of
/// ten: one output per event, in several commits per partition.
async fn committed(backend: Backend, partitions: u32, events: usize) -> (Storage, Option<TempDir>) {
    let (storage, dir) = fresh_storage(backend);
    seeded_log(&storage, partitions, events).await;
    let settings = EngineSettings { max_batch_events: 10, ..Default::default() };
    let engine = Engine::builder(storage.clone(), "counter", Arc::new(Counter)).settings(settings).build().unwrap();
    assert_eq!(engine.drain().await.unwrap().outputs, events);
    (storage, dir)
}

fn dispatcher(storage: &Storage, target: SinkTarget, sink: Sink, partitions: u32) -> DispatchFunction {
    let config = DispatchConfig {
        storage: storage.clone(),
        agent: "counter".into(),
        sink: target,
        partitions,
        deadline_margin: Duration::from_secs(10),
        metrics: Default::default(),
        approval_links: None,
    };
    DispatchFunction::new(config, sink)
}

fn webhook(storage: &Storage, url: &str) -> DispatchFunction {
    dispatcher(storage, SinkTarget::Webhook { url: url.into() }, Sink::Webhook(WebhookSink::new(url)), 2)
}

fn far() -> Deadline {
    Deadline::new(SystemTime::now() + Duration::from_secs(3600), Duration::from_secs(10))
}

/// Each delivery id with the body it came with; panics if one id came with two bodies.
fn by_id(received: &[common::Received]) -> BTreeMap<String, Value> {
    let mut deliveries = BTreeMap::new();
    for request in received {
        let id = request.headers["idempotency-key"].to_str().unwrap().to_string();
        if let Some(earlier) = deliveries.insert(id.clone(), request.body.clone()) {
            assert_eq!(earlier, request.body, "delivery {id} changed between attempts");
        }
    }
    deliveries
}

#[tokio::test]
async fn webhook_receives_each_output_once_with_stable_ids() {
    let (storage, _dir) = committed(Backend::Memory, 2, 40).await;
    let receiver = Recorder::start(StatusCode::OK).await;
    let dispatch = webhook(&storage, &receiver.url);

    let report = dispatch.handle(PartitionRequest::default(), far()).await.unwrap();
    assert_eq!(report.delivered, 40);
    let received = receiver.received();
    let deliveries = by_id(&received);
    assert_eq!((received.len(), deliveries.len()), (40, 40), "each output once");
    assert!(deliveries.keys().all(|id| id.starts_with("counter-p0000")), "{deliveries:?}");
    let counts: BTreeSet<(String, u64)> =
        deliveries.values().map(|b| (b["key"].as_str().unwrap().into(), b["count"].as_u64().unwrap())).collect();
    assert_eq!(counts.len(), 40, "every output of the counter, each once");

    let links_before = dispatch.cursor(0).await.unwrap().links().await.unwrap().len();
    let again = dispatch.handle(PartitionRequest::default(), far()).await.unwrap();
    assert_eq!((again.delivered, receiver.received().len()), (0, 40));
    assert_eq!(dispatch.cursor(0).await.unwrap().links().await.unwrap().len(), links_before, "idle writes nothing");
}

#[tokio::test]
async fn a_failure_at_any_request_leads_to_redelivery_with_the_same_ids() {
    let expected = {
        let (storage, _dir) = committed(Backend::Memory, 2, 40).await;
        let receiver = Recorder::start(StatusCode::OK).await;
        webhook(&storage, &receiver.url).handle(PartitionRequest::default(), far()).await.unwrap();
        by_id(&receiver.received())
    };
    let plan = Arc::new(FaultPlan::none());
    let requests = {
        let (storage, _dir) = committed(Backend::Memory, 2, 40).await;
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let receiver = Recorder::start(StatusCode::OK).await;
        webhook(&faulty, &receiver.url).handle(PartitionRequest::default(), far()).await.unwrap();
        plan.requests()
    };
    let mut redelivered = 0;
    for n in 1..=requests {
        let (storage, _dir) = committed(Backend::Memory, 2, 40).await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Error));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan)));
        let receiver = Recorder::start(StatusCode::OK).await;
        let _ = webhook(&faulty, &receiver.url).handle(PartitionRequest::default(), far()).await;
        webhook(&storage, &receiver.url).handle(PartitionRequest::default(), far()).await.unwrap();
        let received = receiver.received();
        assert_eq!(by_id(&received), expected, "fault at request {n}");
        redelivered += usize::from(received.len() > expected.len());
    }
    assert!(redelivered > 0, "some fault fell between a delivery and its cursor advance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_at_once_never_both_advance_the_cursor() {
    for seed in 0..4 {
        let (storage, _dir) = committed(Backend::Memory, 1, 60).await;
        // Random latency makes the two interleave differently in each round.
        let plan = Arc::new(FaultPlan::random(seed, 0.5, vec![Fault::Latency(Duration::from_millis(3))]));
        let slow = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan)));
        let receiver = Recorder::start(StatusCode::OK).await;
        let (a, b) = (webhook(&slow, &receiver.url), webhook(&slow, &receiver.url));
        let (ra, rb) =
            tokio::join!(a.handle(PartitionRequest::default(), far()), b.handle(PartitionRequest::default(), far()));
        ra.unwrap();
        rb.unwrap();

        let links = a.cursor(0).await.unwrap().links().await.unwrap();
        for pair in links.windows(2) {
            let (before, link) = (&pair[0], &pair[1]);
            assert_eq!(link.n, before.n + 1);
            if link.writer != before.writer {
                assert_eq!(
                    (link.next, link.outputs_before),
                    (before.next, before.outputs_before),
                    "a claim moves nothing"
                );
            }
        }
        assert_eq!(links.last().unwrap().outputs_before, 60);
        assert_eq!(by_id(&receiver.received()).len(), 60, "seed {seed}");
    }
}

async fn moto_aws() -> AwsClients {
    let endpoint = weir_tests::moto::shared().endpoint();
    AwsClients::load(AwsClients::defaults().endpoint_url(endpoint).test_credentials()).await
}

/// Every message in the queue: `weir-delivery-id` to body.
async fn drain_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<(String, Value)> {
    let mut messages = Vec::new();
    loop {
        let receive = sqs.receive_message().queue_url(queue_url).max_number_of_messages(10);
        let answer = receive.message_attribute_names("All").send().await.unwrap();
        let batch = answer.messages();
        if batch.is_empty() {
            return messages;
        }
        for message in batch {
            let id = message.message_attributes().unwrap()["weir-delivery-id"].string_value().unwrap().to_string();
            messages.push((id, serde_json::from_str(message.body().unwrap()).unwrap()));
            let handle = message.receipt_handle().unwrap();
            sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await.unwrap();
        }
    }
}

#[tokio::test]
async fn sqs_fifo_sink_on_moto_delivers_each_output_once_even_when_redelivered() {
    let (storage, _dir) = committed(Backend::Memory, 1, 16).await;
    let aws = moto_aws().await;
    let sqs = aws.sqs(None);
    let name = format!("weir-{:08x}.fifo", fastrand::u32(..));
    let fifo = aws_sdk_sqs::types::QueueAttributeName::FifoQueue;
    let created = sqs.create_queue().queue_name(name).attributes(fifo, "true").send().await.unwrap();
    let queue_url = created.queue_url().unwrap().to_string();
    let target = SinkTarget::Sqs { queue_url: queue_url.clone() };
    let deliver = || dispatcher(&storage, target.clone(), Sink::Sqs(SqsSink::new(&queue_url, &aws)), 1);

    assert_eq!(deliver().handle(PartitionRequest::default(), far()).await.unwrap().delivered, 16);
    forget_cursors(&storage).await;
    assert_eq!(deliver().handle(PartitionRequest::default(), far()).await.unwrap().delivered, 16, "redelivered");

    let messages = drain_queue(&sqs, &queue_url).await;
    let ids: BTreeSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!((messages.len(), ids.len()), (16, 16), "the FIFO queue dropped the repeats by their ids");
    assert!(messages.iter().all(|(_, body)| body["count"].is_u64()));
}

#[tokio::test]
async fn sns_sink_on_moto_publishes_each_output_with_its_delivery_id() {
    let (storage, _dir) = committed(Backend::Memory, 1, 12).await;
    let aws = moto_aws().await;
    let suffix = format!("{:08x}", fastrand::u32(..));
    let topic = aws.sns().create_topic().name(format!("weir-{suffix}")).send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_string();
    // SNS keeps nothing: a queue subscribed with raw delivery receives what was published.
    let sqs = aws.sqs(None);
    let queue_url = sqs.create_queue().queue_name(format!("weir-sns-{suffix}")).send().await.unwrap();
    let queue_url = queue_url.queue_url().unwrap().to_string();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:weir-sns-{suffix}");
    let subscribe = aws.sns().subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn);
    subscribe.attributes("RawMessageDelivery", "true").return_subscription_arn(true).send().await.unwrap();

    let target = SinkTarget::Sns { topic_arn: topic_arn.clone() };
    let sink = Sink::Sns(SnsSink::new(&topic_arn, &aws));
    let report = dispatcher(&storage, target, sink, 1).handle(PartitionRequest::default(), far()).await.unwrap();
    assert_eq!(report.delivered, 12);

    let messages = drain_queue(&sqs, &queue_url).await;
    let ids: BTreeSet<&str> = messages.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!((messages.len(), ids.len()), (12, 12), "{messages:?}");
    assert!(ids.iter().all(|id| id.starts_with("counter-p00000-")), "{ids:?}");
}

#[tokio::test]
async fn a_missing_queue_or_topic_fails_the_batch_as_a_configuration_error() {
    let (storage, _dir) = committed(Backend::Memory, 1, 3).await;
    let aws = moto_aws().await;
    let queue_url =
        format!("{}/123456789012/weir-absent-{:08x}", weir_tests::moto::shared().endpoint(), fastrand::u32(..));
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:weir-absent-{:08x}", fastrand::u32(..));
    let sinks = [
        (SinkTarget::Sqs { queue_url: queue_url.clone() }, Sink::Sqs(SqsSink::new(&queue_url, &aws))),
        (SinkTarget::Sns { topic_arn: topic_arn.clone() }, Sink::Sns(SnsSink::new(&topic_arn, &aws))),
    ];
    for (target, sink) in sinks {
        let batch =
            [weir_functions::sink::Delivery { id: "counter-p00000-1-0".into(), key: "k".into(), payload: json!({}) }];
        let error = sink.deliver(&batch).await.unwrap_err();
        assert_eq!(error.kind(), weir_engine::ErrorKind::InvalidInput, "{target:?}: {error}");
        let failed = dispatcher(&storage, target, sink, 1).handle(PartitionRequest::default(), far()).await;
        assert!(failed.is_err(), "the partition's failure is the invocation's");
    }
}

/// Deletes every cursor, as if the dispatcher had crashed before any advance.
async fn forget_cursors(storage: &Storage) {
    let links = storage.list_after(&storage.path("agents/counter/dispatch"), None).await.unwrap();
    storage.delete_all(links.into_iter().map(|o| o.location).collect()).await.unwrap();
}

#[tokio::test]
async fn log_sink_stores_each_output_once_even_when_redelivered() {
    let (storage, _dir) = committed(Backend::Memory, 2, 30).await;
    let (downstream, _downstream_dir) = fresh_storage(Backend::File);
    let url = format!("file://{}", _downstream_dir.as_ref().unwrap().path().display());
    let target = SinkTarget::parse(&format!("weir:{url}")).unwrap();
    for _ in 0..2 {
        let sink = Sink::open(&target, 3, async || -> AwsClients { unreachable!("no AWS for a log") }).await.unwrap();
        let report = dispatcher(&storage, target.clone(), sink, 2).handle(PartitionRequest::default(), far()).await;
        assert_eq!(report.unwrap().delivered, 30);
        forget_cursors(&storage).await;
    }
    let log = EventLog::open(downstream).await.unwrap();
    assert_eq!(log.partitions(), 3, "created by the sink");
    let mut events = Vec::new();
    for p in 0..3 {
        for seq in log.segments(p).await.unwrap() {
            events.extend(log.read_segment(p, seq).await.unwrap().unwrap().events);
        }
    }
    assert_eq!(events.len(), 30, "the second delivery was absorbed by the log's batch ids");
}
