//! Ingest on AWS's sample events: each source appends its records once and reports the
//! ones it refuses the way that source expects.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use object_store::aws::AmazonS3Builder;
use serde_json::{Value, json};
use weir_engine::{EventLog, Storage};
use weir_functions::config::IngestConfig;
use weir_functions::ingest::IngestFunction;
use weir_tests::backends::tempfile_guard::TempDir;
use weir_tests::backends::{Backend, fresh_storage};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Ingest into a fresh log of four partitions; keep the directory guard alive.
async fn fresh_ingest(backend: Backend) -> (IngestFunction, Option<TempDir>) {
    let (storage, dir) = fresh_storage(backend);
    let config = IngestConfig {
        storage,
        partitions: 4,
        key_field: "/key".into(),
        process_function: None,
        agent: None,
        metrics: Default::default(),
        approval_secret: None,
        approvals_only: false,
    };
    (IngestFunction::new(config).await.unwrap(), dir)
}

/// The records `{"key": "a", "n": 1}` and `{"key": "b", "n": 2}`, as stored.
fn a_and_b() -> Vec<(String, Value)> {
    vec![("a".into(), json!({"key": "a", "n": 1})), ("b".into(), json!({"key": "b", "n": 2}))]
}

/// Every stored event as `(key, payload)`, and how many segments hold them.
async fn stored(log: &EventLog) -> (Vec<(String, Value)>, usize) {
    let (mut events, mut segments) = (Vec::new(), 0);
    for p in 0..log.partitions() {
        for seq in log.segments(p).await.unwrap() {
            segments += 1;
            for event in log.read_segment(p, seq).await.unwrap().unwrap().events {
                events.push((event.key, serde_json::from_slice(&event.payload).unwrap()));
            }
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0));
    (events, segments)
}

fn failures(answer: &Value) -> Vec<&str> {
    answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn sqs_message_appends_once_however_often_it_is_delivered() {
    let (ingest, _dir) = fresh_ingest(Backend::File).await;
    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["body"] = json!(r#"[{"key": "a", "n": 1}, {"key": "b", "n": 2}]"#);

    for _ in 0..3 {
        let answer = ingest.handle(event.clone()).await.unwrap();
        assert!(failures(&answer).is_empty(), "{answer}");
    }
    let (events, _) = stored(ingest.log()).await;
    assert_eq!(events, a_and_b());
}

#[tokio::test]
async fn sqs_bad_record_is_a_batch_item_failure_and_the_rest_is_stored() {
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    // AWS's sample body, "Message Body", is not JSON.
    let bad = fixture("example-sqs-event.json")["Records"][0].clone();
    let mut good = bad.clone();
    good["messageId"] = json!("MessageID_2");
    good["body"] = json!(r#"{"key": "c", "n": 3}"#);
    let mut no_key = bad.clone();
    no_key["messageId"] = json!("MessageID_3");
    no_key["body"] = json!(r#"{"id": "c"}"#);

    let answer = ingest.handle(json!({"Records": [bad, good, no_key]})).await.unwrap();
    let mut failed = failures(&answer);
    failed.sort();
    assert_eq!(failed, ["MessageID_1", "MessageID_3"]);
    assert_eq!(stored(ingest.log()).await.0, vec![("c".into(), json!({"key": "c", "n": 3}))]);
}

#[tokio::test]
async fn kinesis_records_are_decoded_and_appended_once() {
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    let raw = fixture("example-kinesis-event.json");
    let answer = ingest.handle(raw.clone()).await.unwrap();
    let sequences: Vec<&str> =
        raw["Records"].as_array().unwrap().iter().map(|r| r["kinesis"]["sequenceNumber"].as_str().unwrap()).collect();
    assert_eq!(failures(&answer), sequences, "\"Hello World\" is not a record");

    let mut event = raw.clone();
    for (i, record) in event["Records"].as_array_mut().unwrap().iter_mut().enumerate() {
        let data = json!({"key": format!("k{i}"), "n": i}).to_string();
        record["kinesis"]["data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    for _ in 0..2 {
        assert!(failures(&ingest.handle(event.clone()).await.unwrap()).is_empty());
    }
    let keys: Vec<String> = stored(ingest.log()).await.0.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["k0", "k1"]);
}

fn body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn function_url_post_is_stored_once_per_idempotency_key() {
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    let mut request = fixture("lambda_function_url_request.json");
    assert_eq!(ingest.handle(request.clone()).await.unwrap()["statusCode"], 405, "the sample is a GET");

    request["requestContext"]["http"]["method"] = json!("POST");
    request["headers"]["idempotency-key"] = json!("upload-1");
    request["body"] = json!("{\"key\": \"a\"}\n{\"key\": \"b\"}\n\n{\"key\": 3}\n");
    for _ in 0..2 {
        let answer = ingest.handle(request.clone()).await.unwrap();
        assert_eq!((answer["statusCode"].clone(), body(&answer)), (json!(200), json!({"accepted": 3})));
    }
    let (events, segments) = stored(ingest.log()).await;
    assert_eq!(events.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["3", "a", "b"]);
    let partitions =
        events.iter().map(|(k, _)| ingest.log().partition_of(k)).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(segments, partitions.len(), "one segment per partition: the retry stored nothing");
}

#[tokio::test]
async fn function_url_bad_record_is_a_400_naming_it_and_nothing_is_stored() {
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    let mut request = fixture("example-apigw-v2-request-no-authorizer.json");
    request["requestContext"]["http"]["method"] = json!("POST");
    request["body"] = json!(r#"[{"key": "a"}, {"key": "b"}, {"user": "c"}]"#);

    let answer = ingest.handle(request.clone()).await.unwrap();
    assert_eq!(answer["statusCode"], 400);
    let error = body(&answer);
    assert_eq!(error["record"], "element 2", "{error}");
    assert!(error["error"].as_str().unwrap().contains("`/key`"), "{error}");
    assert!(stored(ingest.log()).await.0.is_empty());

    // Without an Idempotency-Key, the request id makes retries of one request idempotent.
    request["body"] = json!(base64::engine::general_purpose::STANDARD.encode(r#"{"key": "a"}"#));
    request["isBase64Encoded"] = json!(true);
    for _ in 0..2 {
        assert_eq!(ingest.handle(request.clone()).await.unwrap()["statusCode"], 200);
    }
    assert_eq!(stored(ingest.log()).await.1, 1);
}

#[tokio::test]
async fn s3_notification_appends_the_json_lines_object_once() {
    let moto = weir_tests::moto::shared();
    let bucket_store = move |bucket: &str| -> weir_engine::Result<Storage> {
        let store = AmazonS3Builder::new()
            .with_endpoint(moto.endpoint())
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_region("us-east-1")
            .build()?;
        Ok(Storage::new(Arc::new(store), object_store::path::Path::default()))
    };
    let key = format!("drop/{:08x} events.jsonl", fastrand::u32(..));
    let object = bucket_store(moto.bucket()).unwrap();
    let lines = "{\"key\": \"a\", \"n\": 1}\nnot json\n{\"key\": \"b\", \"n\": 2}\n";
    object.put(&object.path(&key), lines.into()).await.unwrap();

    let (ingest, _dir) = fresh_ingest(Backend::File).await;
    let ingest = ingest.with_bucket_opener(Arc::new(bucket_store));
    let mut event = fixture("example-s3-event.json");
    event["Records"][0]["s3"]["bucket"]["name"] = json!(moto.bucket());
    event["Records"][0]["s3"]["object"]["key"] = json!(key.replace(' ', "+"));
    for _ in 0..2 {
        let answer = ingest.handle(event.clone()).await.unwrap();
        let object = &answer["objects"][0];
        assert_eq!(object["appended"], 2, "{answer}");
        assert_eq!(object["refused"][0]["record"], "line 2", "{answer}");
    }
    let (events, _) = stored(ingest.log()).await;
    assert_eq!(events, a_and_b());
}

#[tokio::test]
async fn unknown_events_are_refused_with_what_was_expected() {
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    let error = ingest.handle(json!({"detail-type": "Scheduled Event"})).await.unwrap_err();
    assert!(error.to_string().contains("SQS, Kinesis or S3"), "{error}");
}

/// A direct invocation requeues an agent's dead letters into the log, each once however
/// often it runs; one that chooses nothing is refused with what to give.
#[tokio::test]
async fn requeued_dead_letters_are_appended_once() {
    let (ingest, _dir) = fresh_ingest(Backend::File).await;
    let log = ingest.log();
    // A Counter dead-letters what is not JSON.
    log.append("poison", &[weir_engine::LogEvent::new("a", "{oops")]).await.unwrap();
    let engine =
        weir_engine::Engine::builder(log.storage().clone(), "counter", Arc::new(common::Counter)).build().unwrap();
    assert_eq!(engine.drain().await.unwrap().dead_letters, 1);

    let request = json!({"requeue_dead_letters": {"agent": "counter", "reason": "not JSON"}});
    for _ in 0..2 {
        let answer = ingest.handle(request.clone()).await.unwrap();
        assert_eq!(answer["requeued"], 1, "{answer}");
        assert_eq!(answer["dead_letters"][0]["key"], "a", "{answer}");
    }
    let mut segments = 0;
    for p in 0..log.partitions() {
        segments += log.segments(p).await.unwrap().len();
    }
    assert_eq!(segments, 2, "the poison's segment and one requeue, not two");
    assert_eq!(engine.drain().await.unwrap().dead_letters, 1, "processed (and refused) once more, once");

    let refused = ingest.handle(json!({"requeue_dead_letters": {"agent": "counter"}})).await.unwrap_err();
    assert!(refused.to_string().contains("\"all\": true"), "{refused}");
}

/// The trace context each stored event carries (traceparent, tracestate), by key.
async fn trace_parents(log: &EventLog) -> Vec<(String, (Option<String>, Option<String>))> {
    let mut parents = Vec::new();
    for p in 0..log.partitions() {
        for seq in log.segments(p).await.unwrap() {
            let events = log.read_segment(p, seq).await.unwrap().unwrap().events;
            parents.extend(events.into_iter().map(|e| (e.key, (e.trace_parent, e.trace_state))));
        }
    }
    parents.sort();
    parents
}

#[tokio::test]
async fn a_callers_trace_context_is_kept_with_its_records() {
    let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (ingest, _dir) = fresh_ingest(Backend::Memory).await;
    let mut request = fixture("lambda_function_url_request.json");
    request["requestContext"]["http"]["method"] = json!("POST");
    request["headers"]["idempotency-key"] = json!("traced");
    request["headers"]["traceparent"] = json!(w3c);
    request["headers"]["tracestate"] = json!("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    request["body"] = json!("{\"key\": \"a\"}\n{\"key\": \"b\"}\n");
    assert_eq!(ingest.handle(request.clone()).await.unwrap()["statusCode"], 200);
    request["headers"]["idempotency-key"] = json!("bad-state");
    request["headers"]["tracestate"] = json!("Not A State");
    request["body"] = json!("{\"key\": \"e\"}\n");
    assert_eq!(ingest.handle(request.clone()).await.unwrap()["statusCode"], 200, "a malformed tracestate is dropped");
    request["headers"]["idempotency-key"] = json!("malformed");
    request["headers"]["traceparent"] = json!("00-not-a-context-01");
    request["body"] = json!("{\"key\": \"c\"}\n");
    assert_eq!(ingest.handle(request).await.unwrap()["statusCode"], 200, "a malformed traceparent is ignored");

    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["body"] = json!(r#"{"key": "d"}"#);
    event["Records"][0]["attributes"]["AWSTraceHeader"] =
        json!("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1");
    assert!(failures(&ingest.handle(event).await.unwrap()).is_empty());

    let traced = (Some(w3c.to_string()), None);
    let stated = (Some(w3c.to_string()), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_string()));
    let expected = [("a", stated.clone()), ("b", stated), ("c", (None, None)), ("d", traced.clone()), ("e", traced)]
        .map(|(k, p)| (k.to_string(), p));
    assert_eq!(trace_parents(ingest.log()).await, expected);
}

#[tokio::test]
async fn an_invocation_for_a_named_agent_records_its_requests() {
    let (storage, _dir) = fresh_storage(Backend::Memory);
    let config = IngestConfig {
        storage: storage.clone(),
        partitions: 4,
        key_field: "/key".into(),
        process_function: None,
        agent: Some("reviews".into()),
        metrics: Default::default(),
        approval_secret: None,
        approvals_only: false,
    };
    let ingest = IngestFunction::new(config).await.unwrap();
    let mut event = fixture("example-sqs-event.json");
    event["Records"][0]["body"] = json!(r#"[{"key": "a", "n": 1}, {"key": "b", "n": 2}]"#);
    ingest.handle(event).await.unwrap();

    let [usage] = &weir_engine::read_usage(&storage, "reviews", None).await.unwrap()[..] else {
        panic!("one usage record")
    };
    assert_eq!((usage.function.as_str(), usage.events), ("ingest", 2));
    // Each partition touched: a claim and a segment; and the record itself.
    let partitions =
        ["a", "b"].map(|k| ingest.log().partition_of(k)).into_iter().collect::<std::collections::BTreeSet<_>>();
    assert!(usage.requests.put > 2 * partitions.len() as u64, "{:?}", usage.requests);
}
