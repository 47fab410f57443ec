//! A test agent with per-key state, a journaled call on every event, an at-most-once call
//! on some, and failures on request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use weir_engine::{
    ActionError, Agent, CallMode, Durable, DurableError, EventContext, LogEvent, LogInput, Position, SpanEnd, SpanId,
    SpanKind,
};

/// One call the external service received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCall {
    /// Which operation.
    pub name: String,
    /// The key of the event it was made for.
    pub key: String,
    /// The event it was made for.
    pub event: Position,
    /// The idempotency key it carried.
    pub idempotency_key: String,
}

/// A fake external service (a model, a webhook): answers deterministically, records calls.
#[derive(Debug, Default)]
pub struct ExternalService {
    calls: Mutex<Vec<ServiceCall>>,
    attempts: Mutex<HashMap<Position, u32>>,
}

impl ExternalService {
    /// Every call received, in order.
    pub fn calls(&self) -> Vec<ServiceCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Forgets the calls received so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn call(&self, name: &str, event: &LogInput, idempotency_key: String) -> u64 {
        self.calls.lock().unwrap().push(ServiceCall {
            name: name.into(),
            key: event.key.clone(),
            event: event.position,
            idempotency_key,
        });
        // Deterministic: the same call always gets the same answer.
        let text = event.payload.get("review").and_then(|r| r.as_str()).unwrap_or_default();
        (text.len() as u64 % 5) + 1
    }

    fn attempt(&self, event: Position) -> u32 {
        let mut attempts = self.attempts.lock().unwrap();
        let n = attempts.entry(event).or_default();
        *n += 1;
        *n
    }
}

/// Scores each review with a journaled call, counts reviews per key in state, notifies
/// (at most once) on low scores, and fails on request: `{"fail": true}` always,
/// `{"flaky": n}` on its first n attempts.
#[derive(Debug, Clone)]
pub struct TestAgent {
    /// Where its calls go.
    pub service: Arc<ExternalService>,
}

impl TestAgent {
    /// An agent calling a fresh service.
    pub fn new() -> Self {
        TestAgent { service: Arc::default() }
    }
}

impl Default for TestAgent {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Agent for TestAgent {
    async fn on_event(&self, event: &LogInput, ctx: &mut EventContext) -> Result<(), ActionError> {
        let count = ctx.state::<u64>()?.unwrap_or(0) + 1;
        // Spans as an agent's actions and calls record them: the trace must hold each once.
        let action = ctx.trace().start(SpanId::ROOT, SpanKind::Action, "review");
        let service = self.service.clone();
        let call = ctx.trace().start(action, SpanKind::Tool, "score");
        let score: u64 = ctx
            .durable_call("score", CallMode::AtLeastOnce, |key| async move {
                Ok::<_, std::io::Error>(service.call("score", event, key))
            })
            .await?;
        ctx.trace().end(call, SpanEnd::ok().attribute("score", score));
        ctx.trace().end(action, SpanEnd::ok());
        if score == 1 {
            let service = self.service.clone();
            let call = ctx.trace().start(SpanId::ROOT, SpanKind::Tool, "notify");
            let notified = ctx
                .durable_call("notify", CallMode::AtMostOnce, |key| async move {
                    Ok::<_, std::io::Error>(service.call("notify", event, key))
                })
                .await;
            ctx.trace().end(call, SpanEnd::ok());
            // An interrupted notification may or may not have gone out: never send it twice.
            match notified {
                Ok(_) | Err(DurableError::Interrupted { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if event.payload.get("fail").is_some() {
            return Err("this event always fails".into());
        }
        if let Some(n) = event.payload.get("flaky").and_then(|n| n.as_u64())
            && u64::from(self.service.attempt(event.position)) <= n
        {
            return Err("flaky failure".into());
        }
        ctx.set_state(&count)?;
        ctx.emit(&serde_json::json!({"key": event.key, "count": count, "score": score}))?;
        Ok(())
    }
}

/// `n` events from the real product reviews in `shared/data` (cycled if `n` is larger), keyed
/// by product, or by review when `key_per_review`.
pub fn review_events(n: usize, key_per_review: bool) -> Vec<LogEvent> {
    let path = reviews_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let reviews: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("review json")).collect();
    (0..n)
        .map(|i| {
            let review = &reviews[i % reviews.len()];
            let key = if key_per_review { format!("review-{i}") } else { review["id"].as_str().unwrap().to_string() };
            LogEvent::json(key, &serde_json::json!({"review": review["review"], "n": i}))
        })
        .collect()
}

/// Where the shared product reviews are: `$WEIR_REVIEWS`, else `shared/data/product_review.jsonl`
/// beside the repository (or beside any folder above it).
pub fn reviews_path() -> std::path::PathBuf {
    find_reviews().unwrap_or_else(|missing| panic!("{missing}"))
}

/// The shared product reviews' path as [`reviews_path`] finds it, or one line saying what is
/// missing and where to put it, for programs that should not panic over it.
pub fn find_reviews() -> Result<std::path::PathBuf, String> {
    if let Some(path) = std::env::var_os("WEIR_REVIEWS") {
        let path = std::path::PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!(
                "WEIR_REVIEWS names {}, which is not a file: point it at the product reviews (JSON lines \
                 with `id` and `review`)",
                path.display()
            )),
        };
    }
    let relative = std::path::Path::new("shared/data/product_review.jsonl");
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(path) = manifest_dir.ancestors().map(|dir| dir.join(relative)).find(|path| path.exists()) {
        return Ok(path);
    }
    let beside = manifest_dir.parent().and_then(std::path::Path::parent).unwrap_or(manifest_dir).join(relative);
    Err(format!(
        "the product reviews (JSON lines with `id` and `review`) are not found: put them at {} or set \
         WEIR_REVIEWS to their path",
        beside.display()
    ))
}
