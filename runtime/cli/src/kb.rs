//! `weir kb`: knowledge bases under the store: add documents, search, list, collect, drop.

use std::path::PathBuf;
use std::sync::Arc;

use weir_agent::{S3VectorsStore, VectorStore};
use weir_models::LocalEmbeddings;
use weir_search::{
    AddOptions, AddProgress, Chunk, ChunkingOptions, KnowledgeBase, MetadataFilter, SearchMode, SearchQuery,
    chunk_document, read_paths,
};

use crate::error::{CliError, Result};
use crate::store::Store;
use crate::table;

/// `weir kb` and its subcommands.
#[derive(Debug, clap::Args)]
pub struct KbArgs {
    #[command(subcommand)]
    command: KbCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KbCommand {
    /// Adds Markdown, text and JSON-lines files (and directories of them) to a knowledge base,
    /// creating it: unchanged documents cost nothing, changed ones replace their chunks.
    Add(AddArgs),
    /// Searches a knowledge base: BM25 without a model, hybrid with one.
    Search(SearchArgs),
    /// Lists the knowledge bases under the store.
    List,
    /// Deletes a knowledge base.
    Drop {
        /// The knowledge base.
        name: String,
    },
    /// Deletes a knowledge base's superseded manifests and the segments none of the others
    /// names, once older than the grace.
    Gc {
        /// The knowledge base.
        name: String,
        /// Nothing superseded or written more recently is deleted: longer than any reader
        /// runs (a Lambda invocation: 15 minutes).
        #[arg(long, default_value_t = 20 * 60)]
        grace_secs: u64,
    },
}

/// The embedding model: the directory of a model run in-process, or none (words only).
#[derive(Debug, clap::Args)]
struct ModelArgs {
    /// A sentence-embedding model's directory (config.json, model.safetensors, tokenizer.json:
    /// all-MiniLM-L6-v2 as sentence-transformers saves it) to embed chunks and queries with.
    #[arg(long, env = "WEIR_EMBEDDING_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// The knowledge base is the index NAME of this AWS S3 vector bucket, not one under the
    /// store (needs --model-dir; AWS configuration from the environment).
    #[arg(long, value_name = "BUCKET")]
    s3_vectors: Option<String>,
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The knowledge base.
    name: String,
    /// Files and directories to add.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The paths given are the whole knowledge base: documents not among them are removed.
    #[arg(long)]
    sync: bool,
    /// The longest chunk, in characters.
    #[arg(long, default_value_t = ChunkingOptions::default().max_chars)]
    chunk_chars: usize,
    /// How many characters neighbouring chunks share.
    #[arg(long, default_value_t = ChunkingOptions::default().overlap_chars)]
    overlap_chars: usize,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Debug, clap::Args)]
struct SearchArgs {
    /// The knowledge base.
    name: String,
    /// What to look for.
    query: String,
    /// How many chunks to show.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Only chunks whose metadata has this value (`key=value`; repeat for several).
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// How to rank: auto (hybrid with a model, else BM25), bm25, vector or hybrid.
    #[arg(long, default_value = "auto", value_parser = parse_mode)]
    mode: SearchMode,
    /// Print each hit as a JSON line instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

fn parse_mode(mode: &str) -> std::result::Result<SearchMode, String> {
    serde_json::from_value(serde_json::Value::String(mode.to_string()))
        .map_err(|_| format!("`{mode}` is not one of auto, bm25, vector, hybrid"))
}

/// Runs `weir kb …`.
pub async fn run(args: KbArgs, store: Store) -> Result<()> {
    match args.command {
        KbCommand::Add(args) => add(args, store).await,
        KbCommand::Search(args) => search(args, store).await,
        KbCommand::List => list(store).await,
        KbCommand::Gc { name, grace_secs } => {
            let kb = KnowledgeBase::new(store.storage, &name)?;
            let now_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            let report = weir_search::collect(&kb, grace_secs.saturating_mul(1000), now_ms).await?;
            say!("kb `{name}` gc: deleted {} manifests, {} segments", report.manifests, report.segments);
            Ok(())
        }
        KbCommand::Drop { name } => {
            let existed = KnowledgeBase::new(store.storage, &name)?.drop_all().await?;
            if !existed {
                return Err(weir_search::SearchError::MissingKnowledgeBase(name).into());
            }
            say!("dropped knowledge base `{name}`");
            Ok(())
        }
    }
}

fn open(store: Store, name: &str, model: &ModelArgs) -> Result<KnowledgeBase> {
    let kb = KnowledgeBase::new(store.storage, name)?;
    Ok(match &model.model_dir {
        Some(dir) => {
            kb.with_embedder(Arc::new(LocalEmbeddings::load(dir).map_err(|e| CliError::Input(e.to_string()))?))
        }
        None => kb,
    })
}

/// A progress bar over the chunks embedded and written.
struct ProgressBar(indicatif::ProgressBar);

impl AddProgress for ProgressBar {
    fn started(&self, total: u64) {
        self.0.set_length(total);
    }

    fn advanced(&self, count: u64) {
        self.0.inc(count);
    }
}

async fn add(args: AddArgs, store: Store) -> Result<()> {
    let documents = read_paths(&args.paths)?;
    if args.model.s3_vectors.is_some() {
        return add_to_s3_vectors(args, documents).await;
    }
    let kb = open(store, &args.name, &args.model)?;
    let options = AddOptions {
        chunking: ChunkingOptions { max_chars: args.chunk_chars, overlap_chars: args.overlap_chars },
        sync: args.sync,
    };
    let progress = ProgressBar(indicatif::ProgressBar::new(0).with_message("embedding chunks"));
    let report = kb.add(documents, options, &progress).await?;
    progress.0.finish_and_clear();
    say!(
        "kb `{}` version {}: {} added, {} replaced, {} unchanged, {} removed; {} chunks written{}",
        args.name,
        report.version,
        report.added,
        report.replaced,
        report.unchanged,
        report.removed,
        report.chunks_written,
        if report.compacted { "; segments compacted" } else { "" }
    );
    Ok(())
}

/// Chunks `documents` and puts them into the S3 Vectors index `args.name`: a chunk put again
/// replaces itself; the index keeps no list of documents, so there is nothing to sync.
async fn add_to_s3_vectors(args: AddArgs, documents: Vec<weir_search::SourceDocument>) -> Result<()> {
    if args.sync {
        return Err(CliError::Input(
            "--sync needs a knowledge base under the store: an S3 Vectors index keeps no list of documents to remove from"
                .into(),
        ));
    }
    let store = s3_vectors(&args.name, &args.model).await?;
    let chunking = ChunkingOptions { max_chars: args.chunk_chars, overlap_chars: args.overlap_chars };
    let chunks: Vec<Chunk> = documents.iter().flat_map(|document| chunk_document(document, chunking)).collect();
    let progress = ProgressBar(indicatif::ProgressBar::new(0).with_message("embedding chunks"));
    let put = store.put(&chunks, &progress).await?;
    progress.0.finish_and_clear();
    say!("{}: {} documents, {put} chunks put", store.url(), documents.len());
    Ok(())
}

/// The S3 Vectors index `name` of the bucket `--s3-vectors` names, with the model's vectors.
async fn s3_vectors(name: &str, model: &ModelArgs) -> Result<S3VectorsStore> {
    let bucket = model.s3_vectors.clone().expect("asked for S3 Vectors");
    let dir = model.model_dir.as_ref().ok_or_else(|| {
        CliError::Input("--s3-vectors needs --model-dir: the model the index's vectors come from".into())
    })?;
    let embedder = LocalEmbeddings::load(dir).map_err(|e| CliError::Input(e.to_string()))?;
    Ok(S3VectorsStore::from_env(bucket, name, Arc::new(embedder)).await)
}

async fn search(args: SearchArgs, store: Store) -> Result<()> {
    if args.model.s3_vectors.is_some() {
        return search_s3_vectors(args).await;
    }
    let kb = open(store, &args.name, &args.model)?;
    let query =
        SearchQuery::new(&args.query).top_k(args.top_k).mode(args.mode).filter(MetadataFilter::parse(&args.filters)?);
    let hits = kb.search(&query).await?;
    if args.json {
        return json_lines(&hits);
    }
    let rows: Vec<[String; 4]> = hits
        .iter()
        .map(|hit| {
            let section = hit.chunk.metadata.get("section").map(String::as_str).unwrap_or_default();
            let text = table::shorten(&hit.chunk.text.replace('\n', " "), 70);
            [format!("{:.4}", hit.score), hit.chunk.document.clone(), table::shorten(section, 40), text]
        })
        .collect();
    say!("{}", table::render(["score", "document", "section", "text"], &rows, &[0]));
    Ok(())
}

async fn search_s3_vectors(args: SearchArgs) -> Result<()> {
    let store = s3_vectors(&args.name, &args.model).await?;
    let query =
        SearchQuery::new(&args.query).top_k(args.top_k).mode(args.mode).filter(MetadataFilter::parse(&args.filters)?);
    let documents = store.search(&query).await?;
    if args.json {
        return json_lines(&documents);
    }
    let rows: Vec<[String; 3]> = documents
        .iter()
        .map(|d| [format!("{:.4}", d.score), d.id.clone(), table::shorten(&d.content.replace('\n', " "), 70)])
        .collect();
    say!("{}", table::render(["score", "key", "text"], &rows, &[0]));
    Ok(())
}

/// Prints each of `found` as a JSON line.
fn json_lines<T: serde::Serialize>(found: &[T]) -> Result<()> {
    for item in found {
        say!("{}", serde_json::to_string(item).expect("a search result serializes"));
    }
    Ok(())
}

async fn list(store: Store) -> Result<()> {
    let summaries = KnowledgeBase::list(&store.storage).await?;
    let rows: Vec<[String; 6]> = summaries
        .iter()
        .map(|kb| {
            [
                kb.name.clone(),
                kb.version.to_string(),
                kb.documents.to_string(),
                kb.chunks.to_string(),
                kb.segments.to_string(),
                kb.embedding_model
                    .clone()
                    .map_or("none (BM25)".into(), |m| format!("{m} ({})", kb.dimensions.unwrap_or(0))),
            ]
        })
        .collect();
    say!("{}", table::render(["name", "version", "documents", "chunks", "segments", "vectors"], &rows, &[1, 2, 3, 4]));
    Ok(())
}
