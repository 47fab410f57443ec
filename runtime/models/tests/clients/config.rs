//! Models built from configuration as an agent file gives it, with the environment filling in.

use serde_json::json;
use weir_models::{ChatMessage, ChatRequest, EmbeddingConfig, HttpSettings, ModelConfig, ModelError};

use crate::fake::{FakeServer, KEY, Reply};

fn env(pairs: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs = pairs.to_vec();
    move |name| pairs.iter().find(|(var, _)| *var == name).map(|(_, value)| value.clone())
}

fn hello() -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::user("Hello")], ..ChatRequest::default() }
}

#[tokio::test]
async fn openai_defaults_come_from_openai_variables() {
    let server = FakeServer::start(vec![Reply::fixture(200, "openai/chat_reply.json")]).await;
    let config: ModelConfig =
        serde_json::from_value(json!({"provider": "openai", "options": {"model": "gpt-4o-mini"}})).unwrap();
    let env = env(&[("OPENAI_BASE_URL", format!("{}/v1", server.url)), ("OPENAI_API_KEY", KEY.to_owned())]);

    let model = config.build_with_env(&env).unwrap();
    model.chat(&hello()).await.unwrap();

    let sent = server.only_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(model.stats().calls, 1, "stats pass through the trait object");
}

#[tokio::test]
async fn anthropic_reads_its_key_from_the_named_variable() {
    let server = FakeServer::start(vec![Reply::fixture(200, "anthropic/message_reply.json")]).await;
    let config: ModelConfig = serde_json::from_value(json!({
        "provider": "anthropic",
        "options": {"model": "claude-sonnet-4-5"},
        "base_url": server.url,
        "api_key_env": "TEAM_ANTHROPIC_KEY",
    }))
    .unwrap();

    let model = config.build_with_env(&env(&[("TEAM_ANTHROPIC_KEY", KEY.to_owned())])).unwrap();
    model.chat(&hello()).await.unwrap();

    assert_eq!(server.only_request().header("x-api-key"), Some(KEY));
}

#[tokio::test]
async fn ollama_host_may_be_a_bare_host_and_port() {
    let server = FakeServer::start(vec![Reply::fixture(200, "ollama/embed_reply.json")]).await;
    let config: EmbeddingConfig =
        serde_json::from_value(json!({"provider": "ollama", "options": {"model": "all-minilm"}})).unwrap();
    let host = server.url.trim_start_matches("http://").to_owned();

    let model = config.build_with_env(&env(&[("OLLAMA_HOST", host)])).unwrap();
    model.embed(&["a".to_owned(), "b".to_owned()]).await.unwrap();

    assert_eq!(server.only_request().path, "/api/embed");
}

#[test]
fn a_missing_key_names_its_variable() {
    for (config, var) in [
        (json!({"provider": "openai", "options": {"model": "m"}}), "OPENAI_API_KEY"),
        (json!({"provider": "anthropic", "options": {"model": "m"}}), "ANTHROPIC_API_KEY"),
        (json!({"provider": "ollama", "options": {"model": "m"}, "api_key_env": "PROXY_TOKEN"}), "PROXY_TOKEN"),
    ] {
        let config: ModelConfig = serde_json::from_value(config).unwrap();
        let error = config.build_with_env(&|_| None).unwrap_err();
        assert!(matches!(&error, ModelError::Config(message) if message.contains(var)), "{error}");
    }
    let config: EmbeddingConfig =
        serde_json::from_value(json!({"provider": "openai", "options": {"model": "m"}})).unwrap();
    let error = config.build_with_env(&|_| None).unwrap_err();
    assert!(matches!(&error, ModelError::Config(message) if message.contains("OPENAI_API_KEY")), "{error}");
}

#[test]
fn unknown_fields_and_providers_are_rejected() {
    for config in [
        json!({"provider": "openai", "options": {"model": "m"}, "base_uri": "x"}),
        json!({"provider": "anthropic", "options": {"model": "m"}, "http": {"retries": 3}}),
        json!({"provider": "ollama", "options": {"model": "m", "temprature": 0.1}}),
        json!({"provider": "gemini", "options": {"model": "m"}}),
    ] {
        assert!(serde_json::from_value::<ModelConfig>(config.clone()).is_err(), "{config}");
    }
}

#[test]
fn bad_settings_are_configuration_errors() {
    let zero = json!({"provider": "ollama", "options": {"model": "m"}, "http": {"max_concurrency": 0}});
    let error = serde_json::from_value::<ModelConfig>(zero).unwrap().build_with_env(&|_| None).unwrap_err();
    assert!(matches!(&error, ModelError::Config(message) if message.contains("max_concurrency")), "{error}");
    let bad_url = json!({"provider": "ollama", "options": {"model": "m"}, "base_url": "not a url"});
    let error = serde_json::from_value::<ModelConfig>(bad_url).unwrap().build_with_env(&|_| None).unwrap_err();
    assert!(matches!(&error, ModelError::Config(message) if message.contains("not a url")), "{error}");
}

#[test]
fn configurations_round_trip_through_serde() {
    let config = json!({
        "provider": "openai",
        "options": {"model": "gpt-4o-mini", "temperature": 0.2},
        "base_url": "https://example.openai.azure.com/openai/deployments/d",
        "api_key_env": "AZURE_OPENAI_API_KEY",
        "auth": "api-key",
        "query": {"api-version": "2024-10-21"},
        "http": {"max_retries": 5},
    });
    let parsed: ModelConfig = serde_json::from_value(config).unwrap();
    let ModelConfig::OpenAi(openai) = &parsed else { panic!("{parsed:?}") };
    assert_eq!(openai.http, HttpSettings { max_retries: 5, ..HttpSettings::default() });
    let again: ModelConfig = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
}
