//! Retrieval over a knowledge base: the built-in retrieval action (journaled, filtered) in a
//! workflow agent, through a crash at every request, and the knowledge-base tool a ReAct
//! agent calls and cites.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::json;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{
    Action, ActionError, Context, Document, Event, InputEvent, Prompt, ReActAgent, RetrievalRequestEvent,
    RetrievalResponseEvent, VectorStore, WorkflowAgent, knowledge_base_tool,
};
use weir_engine::Storage;
use weir_search::{AddOptions, KnowledgeBase, SearchError, SearchQuery, read_paths};

async fn runbooks() -> KnowledgeBase {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions/ops-diagnosis/runbooks"));
    let kb = KnowledgeBase::new(Storage::from_url("memory://").unwrap(), "runbooks").unwrap();
    kb.add(read_paths(&[dir]).unwrap(), AddOptions::default(), &()).await.unwrap();
    kb
}

/// A knowledge base that counts its searches.
#[derive(Debug)]
struct Counted {
    kb: KnowledgeBase,
    searches: AtomicUsize,
}

#[async_trait]
impl VectorStore for Counted {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError> {
        self.searches.fetch_add(1, Ordering::SeqCst);
        VectorStore::search(&self.kb, query).await
    }
}

async fn ask(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let input: InputEvent = event.decode()?;
    let mut request: RetrievalRequestEvent = serde_json::from_value(json!({
        "store": "runbooks",
        "query": input.input["error"],
        "max_results": 2,
    }))?;
    if let Some(section) = input.input["section"].as_str() {
        request.filter.insert("section".into(), section.into());
    }
    ctx.send(request)?;
    Ok(())
}

async fn cite(event: &Event, ctx: &mut Context<'_>) -> Result<(), ActionError> {
    let response: RetrievalResponseEvent = event.decode()?;
    let documents: Vec<String> = response
        .documents
        .iter()
        .map(|d| d.metadata["document"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    let sections: Vec<&str> = response.documents.iter().map(|d| d.metadata["section"].as_str().unwrap()).collect();
    ctx.output(&json!({"documents": documents, "sections": sections}))?;
    Ok(())
}

/// A workflow agent that asks the retrieval action and outputs what it found, searching
/// `kb` through a counter.
fn retrieving_agent(kb: KnowledgeBase) -> (Arc<WorkflowAgent>, Arc<Counted>) {
    let store = Arc::new(Counted { kb, searches: AtomicUsize::new(0) });
    let agent = WorkflowAgent::builder()
        .vector_store("runbooks", store.clone())
        .action(Action::new("ask", ask).on::<InputEvent>())
        .action(Action::new("cite", cite).on::<RetrievalResponseEvent>())
        .build()
        .unwrap();
    (Arc::new(agent), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retrieval_action_searches_the_knowledge_base_once_per_request_with_its_filter() {
    let (agent, store) = retrieving_agent(runbooks().await);
    let test = AgentTest::new(agent).await;
    let run = test
        .run([
            ("job-1", json!({"error": "No space left on device"})),
            ("job-2", json!({"error": "Out of memory: Killed process", "section": "Job killed for running out of memory > Remediation"})),
        ])
        .await
        .unwrap();
    let outputs = run.outputs();
    assert_eq!(outputs[0]["documents"][0], "disk-full.md");
    assert_eq!(outputs[1]["documents"], json!(["oom.md"]), "the filter leaves one section of one runbook");
    assert_eq!(outputs[1]["sections"], json!(["Job killed for running out of memory > Remediation"]));
    assert_eq!(store.searches.load(Ordering::SeqCst), 2, "one search per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_react_agent_searches_runbooks_with_the_tool_and_cites_one() {
    let tool = knowledge_base_tool("search_runbooks", Arc::new(runbooks().await));
    let replies = std::sync::Mutex::new(vec![
        FakeModel::tool_call("c1", "search_runbooks", json!({"query": "x509 certificate has expired", "top_k": 2})),
        FakeModel::text("{\"runbook\": \"certificate-expired.md\"}"),
    ]);
    let model = Arc::new(FakeModel::answering("fake", move |_| Ok(replies.lock().unwrap().remove(0))));
    let agent = ReActAgent::builder("fake", model.clone())
        .prompt(Prompt::text("The job failed with: {error}. Which runbook applies?"))
        .tool(Arc::new(tool))
        .build()
        .unwrap();
    let test = AgentTest::new(Arc::new(agent)).await;
    let run = test.run([("job-9", json!({"error": "x509: certificate has expired"}))]).await.unwrap();
    assert_eq!(run.outputs().len(), 1);
    let requests = model.requests();
    let spec = requests[0].tools.iter().find(|t| t.name == "search_runbooks").expect("the tool is offered");
    assert!(spec.description.contains("knowledge base"), "{}", spec.description);
    let tool_reply = &requests[1].messages.last().unwrap().content;
    let reply: serde_json::Value = serde_json::from_str(tool_reply).unwrap();
    assert!(reply["passages"][0]["document"].as_str().unwrap().ends_with("certificate-expired.md"), "{reply}");
    assert_eq!(reply["passages"].as_array().unwrap().len(), 2);
}

/// A crash at every request of a run whose actions retrieve: the committed outputs are those
/// of a run without one, each input's once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrievals_survive_a_crash_at_every_request_with_each_output_once() {
    use object_store::memory::InMemory;
    use weir_engine::store::{Fault, FaultPlan, FaultyStore};
    use weir_engine::{CommittedReader, Engine, EngineSettings, EventLog, LogEvent};

    let settings =
        EngineSettings { max_batch_events: 3, journal_flush_window_ms: 1, retry_backoff_ms: 1, ..Default::default() };
    let kb = runbooks().await;
    let agent = || retrieving_agent(kb.clone());
    let errors = ["No space left on device", "x509: certificate has expired", "SlowDown: reduce your request rate"];
    let seeded = || async {
        let storage = weir_engine::Storage::new(Arc::new(InMemory::new()), "");
        let log = EventLog::create(storage.clone(), 1).await.unwrap();
        let events: Vec<LogEvent> =
            (0..6).map(|i| LogEvent::json(format!("job-{i}"), &json!({"error": errors[i % 3]}))).collect();
        log.append("failures", &events).await.unwrap();
        storage
    };
    let committed = |storage: weir_engine::Storage| async move {
        let outputs = CommittedReader::new(storage, "retrieving", 0).unwrap().outputs().await.unwrap();
        outputs.into_iter().map(|o| o.payload).collect::<Vec<_>>()
    };

    let baseline_storage = seeded().await;
    let plan = Arc::new(FaultPlan::none());
    let counted =
        baseline_storage.with_store(Arc::new(FaultyStore::new(baseline_storage.store().clone(), plan.clone())));
    let (baseline_agent, _) = agent();
    Engine::builder(counted, "retrieving", baseline_agent)
        .settings(settings.clone())
        .build()
        .unwrap()
        .drain_partition(0)
        .await
        .unwrap();
    let baseline = committed(baseline_storage).await;
    assert_eq!(baseline.len(), 6);

    for n in 1..=plan.requests() {
        let storage = seeded().await;
        let plan = Arc::new(FaultPlan::at(n, Fault::Crash));
        let faulty = storage.with_store(Arc::new(FaultyStore::new(storage.store().clone(), plan.clone())));
        let (crashing_agent, _) = agent();
        let crashing = async {
            Engine::builder(faulty, "retrieving", crashing_agent)
                .settings(settings.clone())
                .build()?
                .drain_partition(0)
                .await
        };
        tokio::select! {
            result = crashing => { let _ = result; }
            () = plan.wait_crashed() => {}
        }
        let (rerun_agent, _) = agent();
        let rerun =
            Engine::builder(storage.clone(), "retrieving", rerun_agent).settings(settings.clone()).build().unwrap();
        rerun.drain_partition(0).await.unwrap();
        assert_eq!(committed(storage).await, baseline, "crash at request {n}");
    }
}
