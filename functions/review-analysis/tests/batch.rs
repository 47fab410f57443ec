//! The review-analysis agent with its model answering through OpenAI's Batch API (a fake
//! from the published wire format, docs/batch-calls.md): the same outputs as ordinary calls,
//! one provider batch per round of waiting calls and no ordinary call; a batch that
//! expires, fails or refuses a request falls back to ordinary calls; crashes and failures at
//! every request of the submit and poll path, and two invocations tending at once, leave
//! each output once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{notifier, sample};
use serde_json::{Value, json};
use weir_agent::testing::AgentTest;
use weir_agent::{BATCH_ATTRIBUTE, WorkflowAgent};
use weir_engine::store::{Fault, FaultPlan, FaultyStore};
use weir_engine::{CommittedReader, EngineSettings, Output, SpanKind, Storage};
use weir_models::{ApiKey, ChatModel, OpenAiChat, OpenAiConfig};
use weir_review_analysis::{NOTIFY_TOOL, agent};
use weir_tests::fake_openai_batch::FakeOpenAiBatch;

/// The text of the last message of `role` in a Chat Completions body.
fn last(body: &Value, role: &str) -> Option<String> {
    let messages = body["messages"].as_array()?;
    messages.iter().rev().find(|m| m["role"] == role).and_then(|m| m["content"].as_str()).map(str::to_string)
}

/// A scorer that answers as a model would: a shipping complaint calls the notify tool first,
/// then every review gets a score that depends on its text only.
fn scorer(body: &Value) -> Result<Value, String> {
    let prompt = last(body, "user").ok_or("no user message")?;
    let id = prompt.lines().find_map(|l| l.strip_prefix("Product: ")).unwrap_or("unknown").to_string();
    let review = prompt.lines().find_map(|l| l.strip_prefix("Review: ")).unwrap_or_default().to_lowercase();
    let notified = body["messages"].as_array().unwrap().iter().any(|m| m["role"] == "tool");
    let shipping = ["shipping", "delivery", "arrived"].iter().any(|w| review.contains(w));
    if shipping && !notified {
        let arguments = json!({"id": id, "summary": "a shipping complaint"}).to_string();
        let call =
            json!({"id": "call_1", "type": "function", "function": {"name": NOTIFY_TOOL, "arguments": arguments}});
        return Ok(json!({"content": null, "tool_calls": [call]}));
    }
    let score = 1 + review.len() % 5;
    Ok(
        json!({"content": json!({"id": id, "score": score, "reasons": [format!("{} words", review.split(' ').count())]}).to_string()}),
    )
}

fn model(fake: &FakeOpenAiBatch, batch: bool) -> Arc<dyn ChatModel> {
    let config = OpenAiConfig { base_url: Some(fake.base_url().into()), batch, ..OpenAiConfig::chat("gpt-4o-mini") };
    Arc::new(OpenAiChat::new(&config, ApiKey::new("sk-test")).unwrap())
}

fn review_agent(fake: &FakeOpenAiBatch, batch: bool) -> Arc<WorkflowAgent> {
    Arc::new(agent(model(fake, batch), notifier()).unwrap())
}

fn settings() -> EngineSettings {
    EngineSettings { journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() }
}

fn memory() -> Storage {
    Storage::from_url("memory://").unwrap()
}

async fn test_on(storage: &Storage, agent: Arc<WorkflowAgent>) -> AgentTest {
    AgentTest::on(storage.clone(), agent, settings()).await.unwrap()
}

/// The outputs committed, in log order, and the keys still waiting.
async fn committed(storage: &Storage) -> (Vec<Output>, usize) {
    let reader = CommittedReader::new(storage.clone(), "agent-under-test", 0).unwrap();
    let mut outputs = reader.outputs().await.unwrap();
    outputs.sort_by_key(|o| (o.event, o.index));
    (outputs, reader.waits().await.unwrap().len())
}

/// What a run with ordinary calls commits.
async fn ordinary_outputs(fake: &FakeOpenAiBatch) -> Vec<Output> {
    let storage = memory();
    let test = test_on(&storage, review_agent(fake, false)).await;
    let run = test.run(sample()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    let (outputs, waiting) = committed(&storage).await;
    assert_eq!((outputs.len(), waiting), (sample().len(), 0));
    outputs
}

/// Rounds of tend (submit), `end` (the provider's work), tend (results), drain, until no
/// key waits; returns how many rounds.
async fn rounds(test: &AgentTest, storage: &Storage, fake: &FakeOpenAiBatch, end: impl Fn(&FakeOpenAiBatch)) -> u32 {
    let mut rounds = 0;
    while committed(storage).await.1 > 0 {
        rounds += 1;
        assert!(rounds < 40, "the keys never stop waiting");
        test.tend().await.unwrap();
        end(fake);
        test.tend().await.unwrap();
        let run = test.drain().await.unwrap();
        assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_calls_give_the_outputs_of_ordinary_calls_with_one_provider_batch_per_round() {
    let fake = FakeOpenAiBatch::start(scorer).await;
    let expected = ordinary_outputs(&fake).await;
    let ordinary = fake.counts();
    assert_eq!(ordinary.chat, sample().len() as u64 + 3, "a call per review, one more per shipping complaint");

    let storage = memory();
    let agent = review_agent(&fake, true);
    let test = test_on(&storage, agent.clone()).await;
    let first = test.run(sample()).await.unwrap();
    assert!(first.outputs.is_empty(), "every key waits on its first review's call");
    assert_eq!(committed(&storage).await.1, 4, "one waiting key per product");
    let rounds = rounds(&test, &storage, &fake, FakeOpenAiBatch::complete).await;
    assert_eq!(committed(&storage).await.0, expected, "the same outputs as ordinary calls");

    let batched = fake.counts();
    assert_eq!(batched.chat, ordinary.chat, "no ordinary call");
    assert_eq!(batched.creates, u64::from(rounds), "one provider batch per round of waiting calls");
    assert_eq!(batched.uploads, batched.creates);
    assert_eq!(batched.batched_requests, ordinary.chat, "every call answered once, in a batch");
    // Later reviews of a product wait behind its first: a round holds one call per product.
    assert!(rounds < ordinary.chat as u32, "{rounds} rounds");

    let traces = test.committed().await.unwrap().traces;
    let models: Vec<_> = traces.iter().flat_map(|t| &t.spans).filter(|s| s.kind == SpanKind::Model).collect();
    assert_eq!(models.len() as u64, ordinary.chat, "a span per model call");
    for span in models {
        assert_eq!(span.attributes.get(BATCH_ATTRIBUTE), Some(&json!(true)), "{span:?}");
        assert!(span.attributes["weir.batch.id"].as_str().unwrap().starts_with("batch_"));
        assert_eq!(span.usage.as_ref().unwrap().input_tokens, 100);
    }
}

/// Runs the agent with every provider batch ended by `end`: each call falls back to an
/// ordinary one, once, and the outputs are those of ordinary calls.
async fn every_call_falls_back(end: fn(&FakeOpenAiBatch)) {
    let fake = FakeOpenAiBatch::start(scorer).await;
    let expected = ordinary_outputs(&fake).await;
    let ordinary = fake.counts().chat;
    let storage = memory();
    let test = test_on(&storage, review_agent(&fake, true)).await;
    test.run(sample()).await.unwrap();
    rounds(&test, &storage, &fake, end).await;
    assert_eq!(committed(&storage).await.0, expected);
    let counts = fake.counts();
    assert_eq!(counts.chat - ordinary, ordinary, "every call fell back to an ordinary one, once");
    assert_eq!(counts.batched_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_batch_falls_back_to_ordinary_calls() {
    every_call_falls_back(FakeOpenAiBatch::expire).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_falls_back_to_ordinary_calls() {
    every_call_falls_back(FakeOpenAiBatch::fail).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_batch_refuses_falls_back_alone() {
    // The batch refuses the kettle's calls; the ordinary call answers them.
    let in_batch = Arc::new(AtomicBool::new(false));
    let refusing = in_batch.clone();
    let fake = FakeOpenAiBatch::start(move |body: &Value| {
        if refusing.load(Ordering::SeqCst) && last(body, "user").is_some_and(|p| p.contains("Product: kettle")) {
            return Err("the fake refuses kettles in a batch".into());
        }
        scorer(body)
    })
    .await;
    let expected = ordinary_outputs(&fake).await;
    let before = fake.counts().chat;
    let storage = memory();
    let test = test_on(&storage, review_agent(&fake, true)).await;
    test.run(sample()).await.unwrap();
    let complete_refusing = |fake: &FakeOpenAiBatch| {
        in_batch.store(true, Ordering::SeqCst);
        fake.complete();
        in_batch.store(false, Ordering::SeqCst);
    };
    rounds(&test, &storage, &fake, complete_refusing).await;
    assert_eq!(committed(&storage).await.0, expected);
    let kettles = sample().iter().filter(|(key, _)| key == "kettle").count() as u64;
    assert_eq!(fake.counts().chat - before, kettles, "only the refused calls were made again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invocations_tending_at_once_resume_each_key_once() {
    let fake = FakeOpenAiBatch::start(scorer).await;
    let expected = ordinary_outputs(&fake).await;
    let ordinary = fake.counts().chat;
    let storage = memory();
    let (one, two) =
        (test_on(&storage, review_agent(&fake, true)).await, test_on(&storage, review_agent(&fake, true)).await);
    one.run(sample()).await.unwrap();
    let mut rounds = 0;
    while committed(&storage).await.1 > 0 {
        rounds += 1;
        assert!(rounds < 40);
        let (a, b) = tokio::join!(one.tend(), two.tend());
        a.unwrap();
        b.unwrap();
        fake.complete();
        let (a, b) = tokio::join!(one.tend(), two.tend());
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(one.drain(), two.drain());
        for run in [a.unwrap(), b.unwrap()] {
            assert!(run.dead_letters.is_empty(), "a result reached a key twice: {:?}", run.dead_letters);
        }
    }
    assert_eq!(committed(&storage).await.0, expected);
    assert_eq!(fake.counts().chat, ordinary, "no ordinary call");
}

/// A fresh store where every key waits on its first review's call; `polling`: that call is
/// submitted and its provider batch has ended, for a tend to poll.
async fn waiting(fake: &FakeOpenAiBatch, polling: bool) -> (Storage, AgentTest) {
    let storage = memory();
    let test = test_on(&storage, review_agent(fake, true)).await;
    test.run(sample()).await.unwrap();
    if polling {
        test.tend().await.unwrap();
        fake.complete();
    }
    (storage, test)
}

/// Runs one tend on a store that fails as `plan` says, until it ends or crashes.
async fn faulty_tend(storage: &Storage, fake: &FakeOpenAiBatch, plan: Arc<FaultPlan>) {
    let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
    let tend = async {
        let test = AgentTest::on(faulty, review_agent(fake, true), settings()).await?;
        test.tend().await
    };
    tokio::select! {
        result = tend => { let _ = result; }
        () = plan.wait_crashed() => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_or_failure_at_every_store_request_of_submitting_and_polling_leaves_each_output_once() {
    let fake = FakeOpenAiBatch::start(scorer).await;
    let expected = ordinary_outputs(&fake).await;
    // How many store requests a submitting tend and a polling tend make.
    let (submit_requests, poll_requests) = {
        let storage = memory();
        let test = test_on(&storage, review_agent(&fake, true)).await;
        test.run(sample()).await.unwrap();
        let plan = Arc::new(FaultPlan::none());
        faulty_tend(&storage, &fake, plan.clone()).await;
        fake.complete();
        let polled = Arc::new(FaultPlan::none());
        faulty_tend(&storage, &fake, polled.clone()).await;
        (plan.requests(), polled.requests())
    };
    assert!(submit_requests > 3 && poll_requests > 3, "{submit_requests} {poll_requests}");
    for fault in [Fault::Crash, Fault::AppliedThenError, Fault::AppliedThenAlreadyExists] {
        for (polling, requests) in [(false, submit_requests), (true, poll_requests)] {
            for n in 1..=requests {
                let (storage, test) = waiting(&fake, polling).await;
                faulty_tend(&storage, &fake, Arc::new(FaultPlan::at(n, fault.clone()))).await;
                let chat = fake.counts().chat;
                rounds(&test, &storage, &fake, FakeOpenAiBatch::complete).await;
                let what = format!(
                    "{fault:?} at store request {n} of a {} tend",
                    if polling { "polling" } else { "submitting" }
                );
                assert_eq!(committed(&storage).await.0, expected, "{what}");
                assert_eq!(fake.counts().chat, chat, "{what}: a call fell back");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_fails_at_every_step_of_submitting_and_polling_leaves_each_output_once() {
    let fake = FakeOpenAiBatch::start(scorer).await;
    let expected = ordinary_outputs(&fake).await;
    for (step, polling) in [("/v1/files", false), ("/v1/batches", false), ("/v1/batches", true), ("/v1/files", true)] {
        let (storage, test) = waiting(&fake, polling).await;
        fake.refuse(step);
        assert_eq!(test.tend().await.unwrap(), 0, "{step}: nothing answered while the provider fails");
        fake.recover();
        let chat = fake.counts().chat;
        rounds(&test, &storage, &fake, FakeOpenAiBatch::complete).await;
        assert_eq!(
            committed(&storage).await.0,
            expected,
            "{step} failing while {}",
            if polling { "polling" } else { "submitting" }
        );
        assert_eq!(fake.counts().chat, chat, "{step}: a call fell back");
    }
}
