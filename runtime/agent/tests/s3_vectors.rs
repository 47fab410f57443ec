//! AWS S3 Vectors behind the `VectorStore` trait, against a fake of the service's wire format
//! (weir-tests' `FakeS3Vectors`) and the fake OpenAI server's embeddings: chunks put and found
//! by meaning with filters, the errors that name what was wrong, and an agent file naming an
//! index as its knowledge base.

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::json;
use weir_agent::declarative::Loader;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_agent::{S3VectorsStore, VectorStore};
use weir_models::{ApiKey, EmbeddingModel, OpenAiEmbeddingConfig, OpenAiEmbeddings};
use weir_search::{Chunk, MetadataFilter, SearchError, SearchMode, SearchQuery};
use weir_tests::fake_openai::{FakeOpenAi, LETTERS};
use weir_tests::fake_s3_vectors::FakeS3Vectors;

const BUCKET: &str = "ops-vectors";

async fn aws(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .test_credentials()
        .load()
        .await
}

fn letters(openai: &FakeOpenAi) -> Arc<dyn EmbeddingModel> {
    let mut config = OpenAiEmbeddingConfig::embeddings("letters");
    config.base_url = Some(openai.base_url().to_string());
    Arc::new(OpenAiEmbeddings::new(&config, ApiKey::new("sk-test")).unwrap())
}

fn query(text: &str, top_k: usize, filter: MetadataFilter) -> SearchQuery {
    SearchQuery::new(text).top_k(top_k).filter(filter)
}

fn chunk(document: &str, ordinal: u32, text: &str, genre: &str) -> Chunk {
    Chunk {
        document: document.into(),
        ordinal,
        text: text.into(),
        metadata: [("genre".to_string(), genre.to_string())].into(),
    }
}

/// Texts whose letters tell them apart.
fn chunks() -> Vec<Chunk> {
    vec![
        chunk("jazz.md", 0, "jazz quiz fizz buzz", "music"),
        chunk("jazz.md", 1, "zydeco jazz pizzazz", "music"),
        chunk("banana.md", 0, "banana bandana cabana", "food"),
        chunk("kiwi.md", 0, "kiwi wiki twig", "food"),
    ]
}

#[tokio::test]
async fn chunks_put_into_an_index_are_found_by_meaning_and_filtered_in_its_syntax() {
    let (service, openai) = (FakeS3Vectors::start().await, FakeOpenAi::start("unused").await);
    service.create_index(BUCKET, "notes", LETTERS, "cosine", &["text"]);
    let store = S3VectorsStore::new(&aws(service.url()).await, BUCKET, "notes", letters(&openai));

    assert_eq!(store.put(&chunks(), &()).await.unwrap(), 4);
    assert_eq!(service.keys(BUCKET, "notes"), ["banana.md#0", "jazz.md#0", "jazz.md#1", "kiwi.md#0"]);
    store.put(&chunks(), &()).await.unwrap();
    assert_eq!(service.keys(BUCKET, "notes").len(), 4, "putting a chunk again replaces it");

    let found = store.search(&query("zzz jazz", 2, MetadataFilter::default())).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["jazz.md#1", "jazz.md#0"]);
    assert_eq!(found[1].content, "jazz quiz fizz buzz", "the text comes back as the content");
    assert_eq!(found[1].metadata, json!({"document": "jazz.md", "genre": "music"}));
    assert!(found[0].score > found[1].score && found[0].score <= 1.0);

    let food = store.search(&query("zzz jazz", 3, MetadataFilter::default().and("genre", "food"))).await.unwrap();
    let documents: Vec<&str> = food.iter().map(|d| d.metadata["document"].as_str().unwrap()).collect();
    assert_eq!(documents.len(), 2);
    assert!(documents.iter().all(|d| *d == "banana.md" || *d == "kiwi.md"), "{documents:?}");
    let both = MetadataFilter::default().and("genre", "food").and("document", "kiwi.md");
    assert_eq!(store.search(&query("banana", 3, both)).await.unwrap()[0].id, "kiwi.md#0");

    let queries: Vec<serde_json::Value> =
        service.requests().into_iter().filter(|(op, _)| op == "QueryVectors").map(|(_, body)| body).collect();
    assert_eq!(queries[0]["topK"], 2);
    assert_eq!(queries[0]["queryVector"]["float32"].as_array().unwrap().len(), LETTERS);
    assert!(queries[0].get("filter").is_none(), "no filter when there is no condition");
    assert_eq!(queries[1]["filter"], json!({"genre": {"$eq": "food"}}));
    assert_eq!(queries[2]["filter"], json!({"$and": [{"genre": {"$eq": "food"}}, {"document": {"$eq": "kiwi.md"}}]}));
    let gets = service.requests().iter().filter(|(op, _)| op == "GetIndex").count();
    assert_eq!(gets, 1, "the index's dimensions are asked once");
}

#[tokio::test]
async fn a_top_k_past_a_page_is_read_across_pages() {
    let (service, openai) = (FakeS3Vectors::start().await, FakeOpenAi::start("unused").await);
    service.create_index(BUCKET, "many", LETTERS, "cosine", &["text"]);
    let store = S3VectorsStore::new(&aws(service.url()).await, BUCKET, "many", letters(&openai));
    let many: Vec<Chunk> = (0..150).map(|i| chunk("many.md", i, &format!("note {i} abc"), "misc")).collect();
    store.put(&many, &()).await.unwrap();
    let found = store.search(&query("abc", 120, MetadataFilter::default())).await.unwrap();
    assert_eq!(found.len(), 120);
    let pages = service.requests().iter().filter(|(op, _)| op == "QueryVectors").count();
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn errors_name_the_index_and_what_was_wrong() {
    let (service, openai) = (FakeS3Vectors::start().await, FakeOpenAi::start("unused").await);
    let config = aws(service.url()).await;

    let missing = S3VectorsStore::new(&config, BUCKET, "nowhere", letters(&openai));
    let error = missing.search(&query("jazz", 3, MetadataFilter::default())).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("s3vectors://ops-vectors/nowhere") && message.contains("does not exist"), "{message}");
    assert!(!error.is_unavailable(), "a missing index is the configuration's fault: {message}");

    service.create_index(BUCKET, "small", 8, "cosine", &["text"]);
    let small = S3VectorsStore::new(&config, BUCKET, "small", letters(&openai));
    let error = small.search(&query("jazz", 3, MetadataFilter::default())).await.unwrap_err();
    assert!(
        matches!(error, SearchError::DimensionMismatch { expected: 8, got: 26, ref kb, .. } if kb == "s3vectors://ops-vectors/small"),
        "{error}"
    );
    assert!(error.to_string().contains("`letters`"), "the model is named: {error}");
    let error = small.put(&chunks(), &()).await.unwrap_err();
    assert!(matches!(error, SearchError::DimensionMismatch { .. }), "{error}");
    assert!(service.keys(BUCKET, "small").is_empty(), "nothing of a refused put is stored");

    service.create_index(BUCKET, "all-filterable", LETTERS, "cosine", &[]);
    let all_filterable = S3VectorsStore::new(&config, BUCKET, "all-filterable", letters(&openai));
    let long = chunk("long.md", 0, &"a long paragraph of runbook text ".repeat(80), "misc");
    let message = all_filterable.put(&[long], &()).await.unwrap_err().to_string();
    assert!(message.contains("PutVectors") && message.contains("filterable metadata"), "{message}");

    service.create_index(BUCKET, "notes", LETTERS, "cosine", &["text"]);
    let notes = S3VectorsStore::new(&config, BUCKET, "notes", letters(&openai));
    notes.put(&chunks(), &()).await.unwrap();
    service.deny("GetVectors");
    let message = notes.search(&query("jazz", 3, MetadataFilter::default())).await.unwrap_err().to_string();
    assert!(message.contains("access denied") && message.contains("s3vectors:GetVectors"), "{message}");
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable_so_the_event_waits() {
    let openai = FakeOpenAi::start("unused").await;
    let store = S3VectorsStore::new(&aws("http://127.0.0.1:9").await, BUCKET, "notes", letters(&openai));
    let error = store.search(&query("jazz", 3, MetadataFilter::default())).await.unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    let words = store.search(&query("jazz", 3, MetadataFilter::default()).mode(SearchMode::Bm25)).await.unwrap_err();
    assert!(matches!(words, SearchError::InvalidQuery(_)) && words.to_string().contains("by vector only"), "{words}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_file_names_an_s3_vectors_index_as_its_knowledge_base() {
    let (service, openai) = (FakeS3Vectors::start().await, FakeOpenAi::start("unused").await);
    service.create_index(BUCKET, "notes", LETTERS, "cosine", &["text"]);
    let config = aws(service.url()).await;
    S3VectorsStore::new(&config, BUCKET, "notes", letters(&openai)).put(&chunks(), &()).await.unwrap();

    let yaml = format!(
        r#"
name: librarian
kind: react
models:
  default: environment
prompt: "Which note is about {{topic}}?"
tools:
  - knowledge_base:
      name: notes
      store: s3vectors://{BUCKET}
      embedding: {{provider: openai, base_url: "{}", options: {{model: letters}}}}
"#,
        openai.base_url()
    );
    let dir = std::env::temp_dir().join(format!("weir-s3-vectors-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("librarian.yaml");
    std::fs::write(&path, &yaml).unwrap();

    let replies = std::sync::Mutex::new(vec![
        FakeModel::tool_call("c1", "search_notes", json!({"query": "zzz jazz", "top_k": 1})),
        FakeModel::text("jazz.md"),
    ]);
    let model = Arc::new(FakeModel::answering("fake", move |_| Ok(replies.lock().unwrap().remove(0))));
    let loader = Loader::new()
        .model("default", model.clone())
        .environment(|name| (name == "OPENAI_API_KEY").then(|| "sk-test".to_string()))
        .aws_config(config);
    let declared = loader.load(&path).await.unwrap();
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("reader-1", json!({"topic": "jazz"}))]).await.unwrap();
    assert_eq!(run.outputs().len(), 1);
    let tool_reply: serde_json::Value =
        serde_json::from_str(&model.requests()[1].messages.last().unwrap().content).unwrap();
    assert_eq!(tool_reply["passages"][0]["document"], "jazz.md", "{tool_reply}");
    assert_eq!(tool_reply["passages"][0]["text"], "zydeco jazz pizzazz");

    let without_model = yaml.replace(
        &format!(
            "      embedding: {{provider: openai, base_url: \"{}\", options: {{model: letters}}}}\n",
            openai.base_url()
        ),
        "",
    );
    std::fs::write(&path, without_model).unwrap();
    let message = Loader::new().model("default", model).load(&path).await.unwrap_err().to_string();
    assert!(message.contains("needs `embedding`") && message.contains("knowledge_base.store"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}
