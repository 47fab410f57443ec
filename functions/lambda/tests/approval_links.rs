//! Approve and deny links through the HTTP ingest: a link's answer is appended once as a
//! signal of the waiting key; the other link of the pair, a forged or expired token and a
//! token for another agent are refused with a reason. Time is a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir_agent::approval::{ApprovalAnswer, ApprovalToken, Decision};
use weir_engine::{LogEvent, ManualClock, Signal, Storage};
use weir_functions::config::IngestConfig;
use weir_functions::ingest::IngestFunction;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-approvals";
const NOW_MS: u64 = 1_700_000_000_000;

async fn ingest(secret: Option<&[u8]>) -> (IngestFunction, Arc<ManualClock>) {
    let config = IngestConfig {
        storage: Storage::from_url("memory://").unwrap(),
        partitions: 2,
        key_field: "/key".into(),
        process_function: None,
        agent: Some("ops".into()),
        metrics: Default::default(),
        approval_secret: secret.map(<[u8]>::to_vec),
        approvals_only: false,
    };
    let clock = ManualClock::new(NOW_MS);
    (IngestFunction::new(config).await.unwrap().with_clock(clock.clone()), clock)
}

/// A function URL request following a link.
fn follow(token: &str) -> Value {
    json!({
        "requestContext": {"requestId": "r-1", "timeEpoch": 0, "http": {"method": "GET"}},
        "queryStringParameters": {"approval": token},
        "isBase64Encoded": false
    })
}

fn link(agent: &str, decision: Decision, secret: &[u8]) -> String {
    ApprovalToken::new(agent, "job-7", "req-1", decision, NOW_MS + 3_600_000).sign(secret).unwrap()
}

async fn answer(ingest: &IngestFunction, token: &str) -> (u64, String) {
    let response = ingest.handle(follow(token)).await.unwrap();
    (response["statusCode"].as_u64().unwrap(), response["body"].as_str().unwrap().to_string())
}

/// The events the log holds for `key`, in order.
async fn events(ingest: &IngestFunction, key: &str) -> Vec<LogEvent> {
    let log = ingest.log();
    let partition = log.partition_of(key);
    let mut events = Vec::new();
    for seq in log.segments(partition).await.unwrap() {
        events.extend(log.read_segment(partition, seq).await.unwrap().unwrap().events);
    }
    events.into_iter().filter(|e| e.key == key).collect()
}

#[tokio::test]
async fn a_link_records_its_answer_once_and_the_other_link_is_refused() {
    let (ingest, _) = ingest(Some(SECRET)).await;
    let approve = link("ops", Decision::Approve, SECRET);
    assert_eq!(answer(&ingest, &approve).await.0, 200);
    assert_eq!(answer(&ingest, &approve).await.0, 200, "the same link again changes nothing");
    let (status, body) = answer(&ingest, &link("ops", Decision::Deny, SECRET)).await;
    assert_eq!(status, 409);
    assert!(body.contains("request req-1 was answered already: \\\"approve\\\""), "{body}");

    let stored = events(&ingest, "job-7").await;
    assert_eq!(stored.len(), 1, "one answer per request");
    let payload: Value = serde_json::from_slice(&stored[0].payload).unwrap();
    let signal = Signal::from_payload(&payload).unwrap().unwrap();
    assert_eq!((signal.kind.as_str(), signal.correlation_id.as_str()), ("approval", "req-1"));
    assert_eq!(ApprovalAnswer::from_signal(&signal.payload).unwrap().decision, Decision::Approve);
}

#[tokio::test]
async fn forged_expired_and_misdirected_links_are_refused_with_a_reason() {
    let (ingest, clock) = ingest(Some(SECRET)).await;
    let forged = link("ops", Decision::Approve, b"another secret of at least 32 bytes....");
    let (status, body) = answer(&ingest, &forged).await;
    assert_eq!(status, 403);
    assert!(body.contains("signature does not match"), "{body}");

    // A deny link's signature under an approve link's claims: altered.
    let (deny, approve) = (link("ops", Decision::Deny, SECRET), link("ops", Decision::Approve, SECRET));
    let altered = format!("{}.{}", approve.split('.').next().unwrap(), deny.split('.').nth(1).unwrap());
    assert_eq!(answer(&ingest, &altered).await.0, 403);
    assert_eq!(answer(&ingest, "not-a-token").await.0, 400);

    let (status, body) = answer(&ingest, &link("billing", Decision::Approve, SECRET)).await;
    assert_eq!(status, 403);
    assert!(body.contains("the link answers agent `billing`; this ingest feeds `ops`"), "{body}");

    clock.advance(Duration::from_millis(3_600_001));
    let (status, body) = answer(&ingest, &link("ops", Decision::Approve, SECRET)).await;
    assert_eq!(status, 410);
    assert!(body.contains("expired"), "{body}");
    assert!(events(&ingest, "job-7").await.is_empty(), "nothing was appended");
}

#[tokio::test]
async fn links_are_refused_where_no_secret_is_configured() {
    let (ingest, _) = ingest(None).await;
    let (status, body) = answer(&ingest, &link("ops", Decision::Approve, SECRET)).await;
    assert_eq!(status, 404);
    assert!(body.contains("WEIR_APPROVAL_SECRET is not set"), "{body}");
}

#[test]
fn a_short_secret_is_refused_at_configuration() {
    use weir_functions::config::FromVariables;
    let vars = |name: &str| match name {
        "WEIR_STORE" => Some("memory://".to_string()),
        "WEIR_APPROVAL_SECRET" => Some("too short".to_string()),
        _ => None,
    };
    let error = IngestConfig::from_lookup(vars).unwrap_err().to_string();
    assert!(error.contains("WEIR_APPROVAL_SECRET"), "{error}");
}

/// The public approvals URL on AWS (`WEIR_INGEST_ACCEPT=approvals`): links are followed, and
/// anything else, records posted to it or another source's event, is refused and stores
/// nothing; it cannot be configured without a secret, nor with an unknown value.
#[tokio::test]
async fn an_approvals_only_ingest_follows_links_and_takes_nothing_else() {
    use weir_functions::config::FromVariables;
    let vars = |accept: &'static str, secret: Option<&'static str>| {
        move |name: &str| match name {
            "WEIR_STORE" => Some("memory://".to_string()),
            "WEIR_AGENT" => Some("ops".to_string()),
            "WEIR_INGEST_ACCEPT" => Some(accept.to_string()),
            "WEIR_APPROVAL_SECRET" => secret.map(str::to_string),
            _ => None,
        }
    };
    let secret = std::str::from_utf8(SECRET).unwrap();
    let config = IngestConfig::from_lookup(vars("approvals", Some(secret))).unwrap();
    assert!(config.approvals_only);
    let no_secret = IngestConfig::from_lookup(vars("approvals", None)).unwrap_err().to_string();
    assert!(no_secret.contains("WEIR_APPROVAL_SECRET"), "{no_secret}");
    let unknown = IngestConfig::from_lookup(vars("everything", Some(secret))).unwrap_err().to_string();
    assert!(unknown.contains("WEIR_INGEST_ACCEPT") && unknown.contains("everything"), "{unknown}");

    let ingest = IngestFunction::new(config).await.unwrap().with_clock(ManualClock::new(NOW_MS));
    let posted = json!({
        "headers": {"idempotency-key": "k-1"},
        "requestContext": {"requestId": "r-2", "timeEpoch": 0, "http": {"method": "POST"}},
        "body": "{\"key\": \"job-7\", \"n\": 1}",
        "isBase64Encoded": false
    });
    let refused = ingest.handle(posted).await.unwrap();
    assert_eq!(refused["statusCode"], 403, "{refused}");
    assert!(refused["body"].as_str().unwrap().contains("approval links only"), "{refused}");
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": "{\"key\": \"job-7\"}"}]});
    let error = ingest.handle(sqs).await.unwrap_err().to_string();
    assert!(error.contains("approval links only"), "{error}");
    assert!(events(&ingest, "job-7").await.is_empty(), "nothing stored");

    let (status, body) = answer(&ingest, &link("ops", Decision::Approve, SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(events(&ingest, "job-7").await.len(), 1, "the answer, once");
}
