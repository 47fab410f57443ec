//! `kb-bench`: a knowledge base of 100,000 chunks of 384 dimensions: add throughput, recall@10
//! of the IVF search against exact search, warm query latency, memory, and the first query of
//! a fresh process (cold start), on a directory or on moto's S3.
//!
//! ```sh
//! cargo run --release -p weir-bench --bin kb-bench -- --chunks 100000 --store file:///tmp/kb-bench
//! cargo run --release -p weir-bench --bin kb-bench -- --chunks 100000 --store moto
//! ```
//!
//! The vectors are synthetic but not uniform (uniform vectors in 384 dimensions have no
//! neighbours to speak of): 2,000 topics, each chunk its topic's centre plus noise, as
//! embeddings of a corpus cluster by subject. Each chunk's text names its topic, so BM25 has
//! words to rank. Queries are chunks' vectors with fresh noise. The embedding model is a
//! lookup of these precomputed vectors, so the figures are the knowledge base's alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use weir_bench::{peak_memory_mb, percentile, resident_memory_mb};
use weir_engine::Storage;
use weir_models::{EmbeddingModel, ModelError};
use weir_search::{AddOptions, DocumentKind, KnowledgeBase, SearchMode, SearchQuery, SourceDocument};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Chunks in the knowledge base.
    #[arg(long, default_value_t = 100_000)]
    chunks: usize,
    /// Dimensions of each vector.
    #[arg(long, default_value_t = 384)]
    dimensions: usize,
    /// Queries timed (after one that loads the knowledge base).
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// IVF lists scanned per query; unset means the knowledge base's default.
    #[arg(long)]
    nprobe: Option<usize>,
    /// The store: a URL, or `moto` for a moto S3 server this benchmark starts.
    #[arg(long, default_value = "file:///tmp/weir-kb-bench")]
    store: String,
    /// Only time one query of the knowledge base already in the store, in this fresh process.
    #[arg(long)]
    cold_query: bool,
    /// Write the vectors and queries as .npy-free raw f32 files into this directory, for the
    /// LanceDB comparison script.
    #[arg(long)]
    export: Option<std::path::PathBuf>,
}

const TOPICS: usize = 2000;
const KB: &str = "bench";

/// The precomputed vectors, looked up by the chunk number each text starts with.
#[derive(Debug)]
struct Lookup {
    dimensions: usize,
    vectors: Arc<Vec<f32>>,
}

#[async_trait]
impl EmbeddingModel for Lookup {
    fn name(&self) -> &str {
        "lookup"
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(texts
            .iter()
            .map(|text| {
                let id: usize = text
                    .split_whitespace()
                    .next()
                    .and_then(|w| w.strip_prefix("chunk"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                self.vectors[id * self.dimensions..(id + 1) * self.dimensions].to_vec()
            })
            .collect())
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn gaussian(rng: &mut fastrand::Rng) -> f32 {
    // Box–Muller.
    let (u, v) = (rng.f32().max(1e-7), rng.f32());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

/// `n` unit vectors around `TOPICS` centres, and each one's topic.
fn corpus(n: usize, dimensions: usize, rng: &mut fastrand::Rng) -> (Vec<f32>, Vec<usize>) {
    let centres: Vec<Vec<f32>> = (0..TOPICS).map(|_| unit((0..dimensions).map(|_| gaussian(rng)).collect())).collect();
    let mut vectors = Vec::with_capacity(n * dimensions);
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = rng.usize(..TOPICS);
        let noise = 0.9 / (dimensions as f32).sqrt();
        vectors.extend(unit(centres[topic].iter().map(|c| c + noise * gaussian(rng)).collect()));
        topics.push(topic);
    }
    (vectors, topics)
}

fn exact_top10(vectors: &[f32], dimensions: usize, query: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .chunks_exact(dimensions)
        .map(|v| v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>())
        .zip(0..)
        .collect();
    scored.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(10);
    scored.into_iter().map(|(_, i)| i).collect()
}

fn storage(store: &str) -> Result<Storage, Box<dyn std::error::Error>> {
    if store == "moto" {
        // Same objects for the fresh process: the shared server and prefix are fixed per run.
        return Ok(weir_tests::backends::moto_storage("kb-bench"));
    }
    Ok(Storage::from_url(store)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let storage = storage(&args.store)?;
    let d = args.dimensions;
    let mut rng = fastrand::Rng::with_seed(42);
    let (vectors, topics) = corpus(args.chunks, d, &mut rng);
    let queries: Vec<Vec<f32>> = (0..args.queries + 1)
        .map(|_| {
            let i = rng.usize(..args.chunks);
            unit(vectors[i * d..(i + 1) * d].iter().map(|x| x + 0.5 / (d as f32).sqrt() * gaussian(&mut rng)).collect())
        })
        .collect();

    if args.cold_query {
        let started = Instant::now();
        let kb = KnowledgeBase::new(storage, KB)?;
        let hits =
            kb.search(&SearchQuery::new("").vector(queries[0].clone()).mode(SearchMode::Vector).top_k(10)).await?;
        let elapsed = started.elapsed();
        println!(
            "cold query: {:.0} ms ({} hits), resident {:.0} MB",
            elapsed.as_secs_f64() * 1000.0,
            hits.len(),
            resident_memory_mb()
        );
        return Ok(());
    }

    let vectors = Arc::new(vectors);
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir)?;
        let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.join("vectors.f32"), raw(&vectors))?;
        std::fs::write(dir.join("queries.f32"), raw(&queries.concat()))?;
    }
    let kb = KnowledgeBase::new(storage.clone(), KB)?;
    kb.drop_all().await?;
    let kb = kb.with_embedder(Arc::new(Lookup { dimensions: d, vectors: vectors.clone() }));
    let documents: Vec<SourceDocument> = (0..args.chunks)
        .map(|i| {
            SourceDocument::new(
                format!("doc{i:06}"),
                DocumentKind::Text,
                format!("chunk{i} about topic{} and words{}", topics[i], i % 97),
            )
        })
        .collect();
    let started = Instant::now();
    let report = kb.add(documents, AddOptions::default(), &()).await?;
    let add_time = started.elapsed();
    println!(
        "add: {} chunks in {:.1} s = {:.0} chunks/s (chunking, IVF build, encoding, writing; vectors precomputed)",
        report.chunks_written,
        add_time.as_secs_f64(),
        report.chunks_written as f64 / add_time.as_secs_f64()
    );
    let segment_bytes: u64 = storage.list_after(&storage.path("kb/bench"), None).await?.iter().map(|m| m.size).sum();
    println!("stored: {:.1} MB", segment_bytes as f64 / 1e6);

    let fresh = KnowledgeBase::new(storage.clone(), KB)?;
    let started = Instant::now();
    fresh.refresh().await?;
    println!("load in this process: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);

    let mut latencies = Vec::with_capacity(args.queries);
    let mut recall_sum = 0.0;
    for query in &queries[1..] {
        let mut search = SearchQuery::new("").vector(query.clone()).mode(SearchMode::Vector).top_k(10);
        if let Some(nprobe) = args.nprobe {
            search = search.nprobe(nprobe);
        }
        let started = Instant::now();
        let hits = fresh.search(&search).await?;
        latencies.push(started.elapsed());
        let exact = exact_top10(&vectors, d, query);
        let found: Vec<usize> = hits.iter().map(|h| h.chunk.document[3..].parse().unwrap()).collect();
        recall_sum += exact.iter().filter(|i| found.contains(i)).count() as f64 / 10.0;
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "vector queries: recall@10 {:.3}, p50 {:.2} ms, p99 {:.2} ms over {} queries",
        recall_sum / args.queries as f64,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        args.queries
    );
    // The first BM25 search builds the index (docs/search.md): timed apart.
    let started = Instant::now();
    fresh.search(&SearchQuery::new("topic1").mode(SearchMode::Bm25)).await?;
    println!("bm25 index built on first use: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    let mut bm25 = Vec::new();
    for i in 0..args.queries.min(100) {
        let started = Instant::now();
        fresh
            .search(
                &SearchQuery::new(format!("topic{} words{}", i * 7 % TOPICS, i % 97)).mode(SearchMode::Bm25).top_k(10),
            )
            .await?;
        bm25.push(started.elapsed());
    }
    bm25.sort();
    println!("bm25 queries: p50 {:.2} ms, p99 {:.2} ms", ms(percentile(&bm25, 0.5)), ms(percentile(&bm25, 0.99)));
    println!(
        "memory: resident {:.0} MB, peak {:.0} MB (the corpus's own vectors included)",
        resident_memory_mb(),
        peak_memory_mb()
    );
    Ok(())
}
