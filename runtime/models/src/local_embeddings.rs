//! A sentence-embedding model run in-process: a BERT encoder (all-MiniLM-L6-v2 and its family)
//! on the CPU with candle, mean-pooled and L2-normalised as sentence-transformers does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::chat::EmbeddingModel;
use crate::config::LocalEmbeddingConfig;
use crate::error::ModelError;

/// The longest input, in tokens, that sentence-transformers gives all-MiniLM-L6-v2
/// (`max_seq_length` in its `sentence_bert_config.json`); longer texts are truncated, as there.
const DEFAULT_MAX_TOKENS: usize = 256;

/// A BERT sentence-embedding model loaded from a directory holding `config.json`,
/// `model.safetensors` and `tokenizer.json` (the layout sentence-transformers saves), run on
/// the CPU with no network: vectors are the mean of the last layer's token states over the
/// attention mask, scaled to unit length.
///
/// ```no_run
/// use weir_models::{EmbeddingModel, LocalEmbeddings};
///
/// # async fn run() -> Result<(), weir_models::ModelError> {
/// let model = LocalEmbeddings::load("models/all-MiniLM-L6-v2")?;
/// let vectors = model.embed(&["a review".to_owned()]).await?;
/// assert_eq!(vectors[0].len(), 384);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalEmbeddings {
    inner: Arc<Loaded>,
}

struct Loaded {
    name: String,
    dir: PathBuf,
    model: BertModel,
    tokenizer: Tokenizer,
    dimensions: usize,
    batch_size: usize,
}

impl std::fmt::Debug for LocalEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbeddings")
            .field("name", &self.inner.name)
            .field("dir", &self.inner.dir)
            .field("dimensions", &self.inner.dimensions)
            .finish()
    }
}

impl LocalEmbeddings {
    /// Loads the model in `dir`, named after the directory, embedding 32 texts per forward pass.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, ModelError> {
        Self::from_config(&LocalEmbeddingConfig { model_dir: dir.as_ref().to_path_buf(), batch_size: None })
    }

    /// Loads the model `config` names.
    pub fn from_config(config: &LocalEmbeddingConfig) -> Result<Self, ModelError> {
        let dir = &config.model_dir;
        let problem = |what: &str, detail: String| ModelError::Config(format!("{what} in {}: {detail}", dir.display()));
        let read = |file: &str| {
            std::fs::read(dir.join(file)).map_err(|e| problem(&format!("cannot read {file}"), e.to_string()))
        };

        let bert_config: BertConfig =
            serde_json::from_slice(&read("config.json")?).map_err(|e| problem("invalid config.json", e.to_string()))?;
        let weights = read("model.safetensors")?;
        // Buffered, not memory-mapped: mapping is `unsafe` (the file could change under us).
        let variables = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| problem("invalid model.safetensors", e.to_string()))?;
        let model = BertModel::load(variables, &bert_config)
            .map_err(|e| problem("model.safetensors does not fit config.json", e.to_string()))?;

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| problem("cannot load tokenizer.json", e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: DEFAULT_MAX_TOKENS, ..Default::default() }))
            .map_err(|e| problem("invalid truncation", e.to_string()))?;

        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "local".to_owned());
        let dimensions = bert_config.hidden_size;
        let batch_size = config.batch_size.unwrap_or(32).max(1);
        Ok(LocalEmbeddings {
            inner: Arc::new(Loaded { name, dir: dir.clone(), model, tokenizer, dimensions, batch_size }),
        })
    }

    /// The length of every vector this model makes.
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }
}

impl Loaded {
    /// The vectors of one batch of texts: one forward pass over the batch padded to its
    /// longest text, the padding masked out of the mean.
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        let failed = |e: &dyn std::fmt::Display| ModelError::Malformed {
            provider: self.name.clone(),
            message: format!("local inference failed: {e}"),
        };
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| failed(&e))?;
        let rows = |field: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, ModelError> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(field(e), &Device::Cpu))
                .collect::<Result<_, _>>()
                .map_err(|e| failed(&e))?;
            Tensor::stack(&rows, 0).map_err(|e| failed(&e))
        };
        let ids = rows(|e| e.get_ids())?;
        let type_ids = rows(|e| e.get_type_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;

        let pooled = (|| -> candle_core::Result<Tensor> {
            let states = self.model.forward(&ids, &type_ids, Some(&mask))?;
            // Mean over the real tokens only: padding is zeroed and left out of the count.
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = states.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            mean.broadcast_div(&norms)
        })()
        .map_err(|e| failed(&e))?;
        pooled.to_vec2::<f32>().map_err(|e| failed(&e))
    }
}

#[async_trait]
impl EmbeddingModel for LocalEmbeddings {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        // Inference is CPU-bound for milliseconds to seconds: off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(inner.batch_size) {
                vectors.extend(inner.embed_batch(batch)?);
            }
            Ok(vectors)
        })
        .await
        .map_err(|e| ModelError::Malformed {
            provider: self.inner.name.clone(),
            message: format!("inference task: {e}"),
        })?
    }
}
