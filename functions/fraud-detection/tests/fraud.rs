//! The fraud-detection agent end to end on a local directory over the sample transactions:
//! a fake analyst model, the real lookup tools, and a fake at-most-once `hold_card`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use weir_agent::approval::{ApprovalAnswer, ApprovalRequest};
use weir_agent::testing::{AgentTest, FakeModel, FakeTool};
use weir_engine::EngineSettings;
use weir_fraud_detection::{
    CardProfile, DECISIONS, Decision, FraudDecision, FraudTools, HOLD_CARD, HoldCard, OfflineFraudModel, PROFILE,
    ReferenceData, agent,
};
use weir_models::{ChatModel, ChatRequest, Role};
use weir_tests::Backend;
use weir_tests::backends::fresh_storage;

fn sample() -> Vec<(String, Value)> {
    include_str!("../data/transactions.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|transaction| (transaction["card"].as_str().unwrap().to_string(), transaction))
        .collect()
}

fn hold_card() -> Arc<FakeTool> {
    let parameters = weir_tools::parameters_schema::<HoldCard>();
    let tool = FakeTool::new(HOLD_CARD, parameters, |arguments| Ok(json!({"held": arguments["card_id"]})));
    Arc::new(tool.at_most_once())
}

type Decisions = BTreeMap<String, FraudDecision>;

/// Runs the sample through the agent on a `file://` store: the test, the decisions by
/// transaction id, and the store's directory guard.
async fn decide(model: Arc<dyn ChatModel>, hold: Arc<FakeTool>) -> (AgentTest, Decisions, impl Sized) {
    let (storage, dir) = fresh_storage(Backend::File);
    let tools = FraudTools::with_hold_card(ReferenceData::sample(), hold);
    let agent = Arc::new(agent(model, tools).unwrap());
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, agent, settings).await.unwrap();
    let transactions = sample();
    let run = test.run(transactions.clone()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    assert_eq!(run.outputs.len(), transactions.len());
    let decisions = run
        .outputs()
        .into_iter()
        .map(|o| serde_json::from_value::<FraudDecision>(o).unwrap())
        .map(|d| (d.transaction_id.clone(), d))
        .collect();
    (test, decisions, dir)
}

/// A fake analyst: looks the merchant up, holds the card when the merchant is risky, then
/// answers; the case's transaction decides the script, so concurrency cannot reorder it.
fn fake_analyst(request: &ChatRequest) -> Result<weir_models::ChatResponse, weir_models::ModelError> {
    let case = &request.messages.iter().find(|m| m.role == Role::User).unwrap().content;
    let merchant = serde_json::from_str::<Value>(&case["Case: ".len()..]).unwrap()["transaction"]["merchant"].clone();
    let results: Vec<&str> =
        request.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect();
    Ok(match results.as_slice() {
        [] => FakeModel::tool_call("lookup", "lookup_merchant", json!({"merchant": merchant})),
        [merchant] if merchant.contains("\"high\"") => {
            FakeModel::tool_call("hold", HOLD_CARD, json!({"reason": "high-risk merchant", "card_id": "c-0000"}))
        }
        [_] => FakeModel::text(r#"{"decision": "review", "reason": "unusual but plausible"}"#),
        [_, _] => FakeModel::text(r#"{"decision": "hold", "reason": "high-risk merchant"}"#),
        _ => unreachable!("three tool rounds"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_unusual_transactions_reach_the_model_and_a_risky_one_holds_its_card_once() {
    let model = Arc::new(FakeModel::answering("fake", fake_analyst));
    let hold = hold_card();
    let (test, decisions, _dir) = decide(model.clone(), hold.clone()).await;

    let decided = |id: &str| decisions[id].decision;
    // A velocity burst at a gift-card seller, a jump to Lagos with a large amount, a large
    // amount at a crypto exchange: each held; the card's next payments held without a model.
    for id in ["t-015", "t-021", "t-031"] {
        assert_eq!(decided(id), Decision::Hold, "{:?}", decisions[id]);
    }
    assert_eq!(decided("t-016"), Decision::Hold);
    assert_eq!(decisions["t-016"].reason, "the card is held since transaction t-015");
    assert_eq!(decided("t-032"), Decision::Hold);
    let approved = decisions.values().filter(|d| d.decision == Decision::Approve).count();
    assert_eq!(approved, decisions.len() - 5, "everything else passes screening: {decisions:#?}");

    let conversations = model.requests().iter().filter(|r| r.messages.len() == 2).count();
    assert_eq!(conversations, 3, "the model sees only the three unusual transactions");
    let offered = &model.requests()[0].tools;
    let hold_spec = offered.iter().find(|t| t.name == HOLD_CARD).unwrap();
    assert!(hold_spec.parameters["properties"].get("card_id").is_none(), "card_id is hidden: {hold_spec:?}");

    let mut held: Vec<String> =
        hold.calls().iter().map(|c| c.arguments["card_id"].as_str().unwrap().to_string()).collect();
    held.sort();
    assert_eq!(held, ["c-1002", "c-1003", "c-1005"], "once per card, the key winning over the model's guess");
    let profile: CardProfile = test.memory("c-1002").await.unwrap().get(PROFILE).unwrap().unwrap();
    assert_eq!(profile.held_since.as_deref(), Some("t-015"));
    assert_eq!(profile.count, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_the_model_decides_without_placing_it_is_a_review() {
    let model = Arc::new(FakeModel::answering("fake", |_| {
        Ok(FakeModel::text(r#"{"decision": "hold", "reason": "looks like fraud"}"#))
    }));
    let hold = hold_card();
    let (test, decisions, _dir) = decide(model, hold.clone()).await;
    assert!(hold.calls().is_empty());
    let reviews: Vec<&FraudDecision> = decisions.values().filter(|d| d.decision == Decision::Review).collect();
    assert_eq!(reviews.len(), 4, "t-015, t-016, t-021, t-031 are unusual; nothing is held: {decisions:#?}");
    assert!(reviews.iter().all(|d| d.reason == "hold decided but not placed: looks like fraud"));
    let profile: CardProfile = test.memory("c-1002").await.unwrap().get(PROFILE).unwrap().unwrap();
    assert_eq!(profile.held_since, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_model_holds_the_three_fraudulent_cards() {
    let hold = hold_card();
    let (_test, decisions, _dir) = decide(Arc::new(OfflineFraudModel), hold.clone()).await;
    let held: Vec<&str> =
        decisions.values().filter(|d| d.decision == Decision::Hold).map(|d| d.transaction_id.as_str()).collect();
    assert_eq!(held, ["t-015", "t-016", "t-021", "t-031", "t-032"]);
    assert_eq!(hold.calls().len(), 3);
    assert!(decisions["t-031"].reason.contains("merchant blocklisted"), "{:?}", decisions["t-031"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_a_verdict_is_asked_again_then_dead_lettered_with_the_raw_reply() {
    let model = Arc::new(FakeModel::answering("fake", |_| Ok(FakeModel::text("Probably fine?"))));
    let tools = FraudTools::with_hold_card(ReferenceData::sample(), hold_card());
    let test = AgentTest::new(Arc::new(agent(model.clone(), tools).unwrap())).await;
    let large = json!({"card": "c-9", "transaction_id": "t-1", "amount": 5000.0, "merchant": "m-app-store",
        "city": "Oslo", "country": "NO", "ts": 1});
    let run = test.run([("c-9", large)]).await.unwrap();
    assert!(run.outputs.is_empty());
    assert_eq!(model.requests().len(), 2, "asked once more with the problem");
    let reason = &run.dead_letters[0].reason;
    assert!(reason.contains("invalid verdict on t-1") && reason.ends_with("raw reply: Probably fine?"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_past_decisions_are_remembered_and_a_repeat_at_a_reviewed_merchant_is_held() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let hold = hold_card();
    let tools = FraudTools::with_hold_card(ReferenceData::sample(), hold.clone());
    let agent = Arc::new(agent(Arc::new(OfflineFraudModel), tools).unwrap());
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, agent, settings).await.unwrap();
    let transaction = |id: &str, ts: u64, amount: f64| {
        let t = json!({"card": "c-9", "transaction_id": id, "amount": amount, "merchant": "m-corner-shop",
            "city": "Lyon", "country": "FR", "ts": ts});
        ("c-9", t)
    };
    // An ordinary history, then an unusually large amount: one anomaly, a low-risk merchant.
    let usual = (0..4).map(|i| transaction(&format!("u-{i}"), 1_000 + i * 86_400, 20.0));
    let first = test.run(usual.chain([transaction("big-1", 400_000, 900.0)])).await.unwrap();
    let decided: Vec<FraudDecision> = first.outputs().into_iter().map(|o| serde_json::from_value(o).unwrap()).collect();
    assert_eq!(decided.last().unwrap().decision, Decision::Review, "{decided:#?}");
    let memory = test.long_term("c-9").await.unwrap();
    let remembered: Vec<&str> = memory.items(DECISIONS).map(|m| m.text.as_str()).collect();
    assert_eq!(remembered.len(), 1, "only the unusual transaction is remembered: {remembered:?}");
    assert!(remembered[0].starts_with("big-1 review at m-corner-shop in lyon"), "{remembered:?}");

    // The same pattern again at the same merchant: the memory tips it to a hold.
    let second = test.run([transaction("big-2", 500_000, 5_000.0)]).await.unwrap();
    let decision: FraudDecision = serde_json::from_value(second.outputs()[0].clone()).unwrap();
    assert_eq!(decision.decision, Decision::Hold, "{decision:?}");
    assert!(decision.reason.contains("reviewed before at this merchant"), "{decision:?}");
    assert_eq!(hold.calls().len(), 1);
    assert_eq!(test.long_term("c-9").await.unwrap().items(DECISIONS).count(), 2);
}

/// With holds above 1,000 waiting for an analyst: the gift-card burst (150 each) is held at
/// once; the watches in Lagos (1,890) and the crypto exchange (1,250) wait, their cards'
/// later transactions queued behind them. The analyst approves the first and denies the
/// second: the first card is held once, with the transaction's amount (which the model never
/// saw nor set), the second goes to review, and its queued transaction is then decided as
/// the ordinary purchase it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_above_the_threshold_wait_for_an_analyst_and_smaller_ones_do_not() {
    let (storage, _dir) = fresh_storage(Backend::File);
    let hold = hold_card();
    let tools = FraudTools::with_hold_card(ReferenceData::sample(), hold.clone()).hold_approval_above(1000.0);
    let agent = Arc::new(agent(Arc::new(OfflineFraudModel), tools).unwrap());
    let settings = EngineSettings { journal_flush_window_ms: 1, ..Default::default() };
    let test = AgentTest::on(storage, agent, settings).await.unwrap();
    let run = test.run(sample()).await.unwrap();
    assert!(run.dead_letters.is_empty(), "{:?}", run.dead_letters);
    let requests: Vec<ApprovalRequest> = run.outputs().iter().filter_map(ApprovalRequest::from_output).collect();
    let asked: Vec<(&str, &Value)> = requests.iter().map(|r| (r.key.as_str(), &r.arguments["amount"])).collect();
    assert_eq!(asked, [("c-1003", &json!(1890.0)), ("c-1005", &json!(1250.0))]);
    let held: Vec<Value> = hold.calls().iter().map(|call| call.arguments["card_id"].clone()).collect();
    assert_eq!(held, [json!("c-1002")], "the small hold is placed at once, the large ones wait");
    let decided = |outputs: Vec<Value>| -> Decisions {
        let decisions = outputs.into_iter().filter_map(|o| serde_json::from_value::<FraudDecision>(o).ok());
        decisions.map(|d| (d.transaction_id.clone(), d)).collect()
    };
    let first = decided(run.outputs());
    for waiting in ["t-021", "t-031", "t-032"] {
        assert!(!first.contains_key(waiting), "{waiting} is not decided while its card waits");
    }
    assert_eq!(first.len(), sample().len() - 3);

    let approve = ApprovalAnswer::approve("analyst").signal(&requests[0].id);
    let deny = ApprovalAnswer::deny("analyst", "the customer is travelling").signal(&requests[1].id);
    let answered = test.run([("c-1003", approve.to_payload()), ("c-1005", deny.to_payload())]).await.unwrap();
    assert!(answered.dead_letters.is_empty(), "{:?}", answered.dead_letters);
    let second = decided(answered.outputs());
    assert_eq!(second["t-021"].decision, Decision::Hold, "{second:#?}");
    assert_eq!(second["t-031"].decision, Decision::Review, "{second:#?}");
    assert!(second["t-031"].reason.starts_with("hold decided but not placed"), "{:?}", second["t-031"]);
    assert_eq!(second["t-032"].decision, Decision::Approve, "the queued purchase, on a card not held");
    let calls = hold.calls();
    assert_eq!(calls.len(), 2, "the approved hold ran once; the denied one never");
    assert_eq!((&calls[1].arguments["card_id"], &calls[1].arguments["amount"]), (&json!("c-1003"), &json!(1890.0)));
}
