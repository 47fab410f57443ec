//! The embedding clients against fake OpenAI and Ollama servers.

use serde_json::json;
use weir_models::{
    ApiKey, EmbeddingModel, ModelError, OllamaEmbeddingConfig, OllamaEmbeddings, OpenAiEmbeddingConfig,
    OpenAiEmbeddings,
};

use crate::fake::{FakeServer, KEY, Reply, test_http};

fn openai(server: &FakeServer) -> OpenAiEmbeddings {
    let mut config = OpenAiEmbeddingConfig::embeddings("text-embedding-3-small");
    config.base_url = Some(format!("{}/v1", server.url));
    config.http = test_http();
    config.options.dimensions = Some(3);
    OpenAiEmbeddings::new(&config, ApiKey::new(KEY)).unwrap()
}

fn ollama(server: &FakeServer) -> OllamaEmbeddings {
    let config = OllamaEmbeddingConfig {
        base_url: Some(server.url.clone()),
        http: test_http(),
        ..OllamaEmbeddingConfig::embeddings("all-minilm")
    };
    OllamaEmbeddings::new(&config, None).unwrap()
}

fn texts(count: usize) -> Vec<String> {
    (0..count).map(|at| format!("review {at}")).collect()
}

#[tokio::test]
async fn openai_embeddings_send_the_texts_and_return_vectors_by_index() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/embeddings_reply.json")]).await;
    let model = openai(&server);

    let vectors = model.embed(&texts(1)).await.unwrap();

    assert_eq!(vectors, vec![vec![0.0023064255, -0.009327292, -0.0028842222]]);
    let sent = server.only_request();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let expected =
        json!({"model": "text-embedding-3-small", "input": ["review 0"], "encoding_format": "float", "dimensions": 3});
    assert_eq!(sent.body, expected);
    assert_eq!(model.stats().calls, 1);
}

#[tokio::test]
async fn openai_vectors_out_of_order_are_put_back_in_order() {
    let reply = json!({"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": [1.0]},
        {"object": "embedding", "index": 0, "embedding": [0.0]},
    ]});
    let server = FakeServer::start(vec![Reply::json(200, &reply)]).await;
    assert_eq!(openai(&server).embed(&texts(2)).await.unwrap(), vec![vec![0.0], vec![1.0]]);
}

#[tokio::test]
async fn a_vector_count_that_does_not_match_the_texts_is_malformed() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/embeddings_reply.json")]).await;
    let error = openai(&server).embed(&texts(2)).await.unwrap_err();
    assert!(matches!(error, ModelError::Malformed { .. }), "{error}");

    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/embed_reply.json")]).await;
    let error = ollama(&server).embed(&texts(3)).await.unwrap_err();
    assert!(matches!(error, ModelError::Malformed { .. }), "{error}");
}

#[tokio::test]
async fn ollama_embeddings_send_the_texts_and_return_the_vectors() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/embed_reply.json")]).await;

    let vectors = ollama(&server).embed(&texts(2)).await.unwrap();

    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0][..2], [0.010071029, -0.0017594862]);
    assert_eq!(vectors[1][9], 0.09072481);
    let sent = server.only_request();
    assert_eq!(sent.path, "/api/embed");
    assert_eq!(sent.body, json!({"model": "all-minilm", "input": ["review 0", "review 1"]}));
}

#[tokio::test]
async fn no_texts_need_no_request() {
    let server = FakeServer::start(vec![Reply::raw(500, "")]).await;
    assert!(openai(&server).embed(&[]).await.unwrap().is_empty());
    assert!(ollama(&server).embed(&[]).await.unwrap().is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_reply_missing_its_vectors_is_malformed() {
    let server = FakeServer::start(vec![Reply::json(200, &json!({"object": "list", "data": [{"index": 0}]}))]).await;
    let error = openai(&server).embed(&texts(1)).await.unwrap_err();
    crate::assert_malformed(&error, "openai", "data[0]: missing field `embedding`");

    let server = FakeServer::start(vec![Reply::json(200, &json!({"model": "all-minilm", "embedding": [0.5]}))]).await;
    let error = ollama(&server).embed(&texts(1)).await.unwrap_err();
    crate::assert_malformed(&error, "ollama", "missing field `embeddings`");
}
