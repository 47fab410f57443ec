//! A knowledge base: a named, searchable collection of chunks under the store.

use std::sync::{Arc, RwLock};

use object_store::ObjectStore;
use serde::Serialize;
use weir_engine::Storage;
use weir_models::EmbeddingModel;

use crate::add::{self, AddOptions, AddProgress, AddReport};
use crate::error::{Result, SearchError};
use crate::layout;
use crate::manifest;
use crate::query::{SearchHit, SearchMode, SearchQuery};
use crate::snapshot::Snapshot;
use crate::source::SourceDocument;
use crate::vector::normalized;

/// A knowledge base on object storage (docs/search.md): documents cut into chunks, searched by
/// BM25, by vector or both. Handles are cheap; a handle loads the knowledge base on its first
/// search and keeps it, so that a warm function searches with no request to the store;
/// [`KnowledgeBase::refresh`] sees later versions.
///
/// ```
/// use weir_engine::Storage;
/// use weir_search::{AddOptions, DocumentKind, KnowledgeBase, SearchQuery, SourceDocument};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kb = KnowledgeBase::new(Storage::from_url("memory://")?, "runbooks")?;
/// let runbook = SourceDocument::new("disk.md", DocumentKind::Markdown, "# Disk full\nRotate the WAL archive.");
/// kb.add(vec![runbook.clone()], AddOptions::default(), &()).await?;
/// let again = kb.add(vec![runbook], AddOptions::default(), &()).await?;
/// assert_eq!(again.unchanged, 1, "unchanged documents cost nothing");
/// let hits = kb.search(&SearchQuery::new("WAL archive").top_k(1)).await?;
/// assert_eq!(hits[0].chunk.document, "disk.md");
/// # Ok::<(), weir_search::SearchError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    storage: Storage,
    name: String,
    embedder: Option<Arc<dyn EmbeddingModel>>,
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

/// A knowledge base as `weir kb list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbSummary {
    /// Its name.
    pub name: String,
    /// Its version: how many changes were committed.
    pub version: u64,
    /// Its documents.
    pub documents: usize,
    /// Its live chunks.
    pub chunks: u64,
    /// The model of its vectors, if it has any.
    pub embedding_model: Option<String>,
    /// The length of its vectors, if it has any.
    pub dimensions: Option<usize>,
    /// Its segments.
    pub segments: usize,
}

impl KnowledgeBase {
    /// The knowledge base `name` under `storage`, searched by words only until
    /// [`KnowledgeBase::with_embedder`] gives it a model. It need not exist yet.
    pub fn new(storage: Storage, name: &str) -> Result<Self> {
        if !layout::valid_kb_name(name) {
            return Err(SearchError::InvalidName(name.to_string()));
        }
        Ok(KnowledgeBase { storage, name: name.to_string(), embedder: None, snapshot: Arc::default() })
    }

    /// The same knowledge base, embedding chunks and queries with `model`.
    pub fn with_embedder(mut self, model: Arc<dyn EmbeddingModel>) -> Self {
        self.embedder = Some(model);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store it lives in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Its embedding model, if it has one.
    pub fn embedder(&self) -> Option<&Arc<dyn EmbeddingModel>> {
        self.embedder.as_ref()
    }

    /// Adds `documents`: new ones are chunked (and embedded), changed ones replace their
    /// chunks, unchanged ones cost nothing, and with [`AddOptions::sync`] the documents not
    /// given are removed. All of it becomes visible at once, in one new version, or none of it.
    pub async fn add(
        &self,
        documents: Vec<SourceDocument>,
        options: AddOptions,
        progress: &dyn AddProgress,
    ) -> Result<AddReport> {
        add::add(self, documents, options, progress).await
    }

    /// The chunks best matching `query`, best first.
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let snapshot = self.snapshot().await?;
        let has_vectors = snapshot.manifest.embedding.is_some();
        let can_embed = query.vector.is_some() || self.embedder.is_some();
        let mode = match query.mode {
            SearchMode::Auto if has_vectors && can_embed => SearchMode::Hybrid,
            SearchMode::Auto => SearchMode::Bm25,
            mode => mode,
        };
        let k = query.top_k;
        let found = match mode {
            SearchMode::Bm25 | SearchMode::Auto => snapshot.bm25(&query.text, k, &query.filter),
            SearchMode::Vector => {
                let vector = self.query_vector(&snapshot, query).await?;
                snapshot.nearest(&vector, k, &query.filter, query.nprobe)?
            }
            SearchMode::Hybrid => {
                let vector = self.query_vector(&snapshot, query).await?;
                snapshot.hybrid(&query.text, &vector, k, &query.filter, query.nprobe)?
            }
        };
        Ok(found.into_iter().map(|(score, id)| SearchHit { chunk: snapshot.chunk(id).clone(), score }).collect())
    }

    /// The query's unit vector: the one given, or its text embedded with the knowledge base's
    /// model.
    async fn query_vector(&self, snapshot: &Snapshot, query: &SearchQuery) -> Result<Vec<f32>> {
        let mismatch = |problem: String| SearchError::ModelMismatch { kb: self.name.clone(), problem };
        let Some(info) = &snapshot.manifest.embedding else {
            return Err(mismatch("it holds no vectors: search it with BM25".into()));
        };
        if let Some(vector) = &query.vector {
            return Ok(normalized(vector.clone()));
        }
        let model = self.embedder.as_ref().ok_or_else(|| {
            mismatch(format!("searching by meaning needs its embedding model `{}`, and none was given", info.model))
        })?;
        if model.name() != info.model {
            return Err(mismatch(format!(
                "its vectors come from `{}`, the query's would from `{}`",
                info.model,
                model.name()
            )));
        }
        let vector = model.embed(std::slice::from_ref(&query.text)).await?.pop().unwrap_or_default();
        Ok(normalized(vector))
    }

    /// The loaded version, loading the newest if none is.
    pub(crate) async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        if let Some(snapshot) = self.snapshot.read().expect("snapshot lock").clone() {
            return Ok(snapshot);
        }
        self.load_newest().await
    }

    /// Loads the newest version, for searches from now on.
    pub async fn refresh(&self) -> Result<()> {
        self.load_newest().await.map(drop)
    }

    async fn load_newest(&self) -> Result<Arc<Snapshot>> {
        let manifest = manifest::latest(&self.storage, &self.name)
            .await?
            .ok_or_else(|| SearchError::MissingKnowledgeBase(self.name.clone()))?;
        let snapshot = Arc::new(Snapshot::load(&self.storage, &self.name, manifest).await?);
        *self.snapshot.write().expect("snapshot lock") = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Forgets the loaded version, after this handle committed a newer one.
    pub(crate) fn forget_snapshot(&self) {
        *self.snapshot.write().expect("snapshot lock") = None;
    }

    /// What the knowledge base holds, or `None` if it does not exist.
    pub async fn summary(&self) -> Result<Option<KbSummary>> {
        let Some(manifest) = manifest::latest(&self.storage, &self.name).await? else { return Ok(None) };
        Ok(Some(KbSummary {
            name: self.name.clone(),
            version: manifest.seq,
            documents: manifest.documents.len(),
            chunks: manifest.live_chunks(),
            embedding_model: manifest.embedding.as_ref().map(|e| e.model.clone()),
            dimensions: manifest.embedding.as_ref().map(|e| e.dimensions),
            segments: manifest.segments.len(),
        }))
    }

    /// Every knowledge base under `storage`, by name.
    pub async fn list(storage: &Storage) -> Result<Vec<KbSummary>> {
        let root = storage.path(layout::KB_ROOT);
        let listed = storage.store().list_with_delimiter(Some(&root)).await.map_err(weir_engine::Error::from)?;
        let mut summaries = Vec::new();
        for prefix in listed.common_prefixes {
            let Some(name) = prefix.filename() else { continue };
            let Ok(kb) = KnowledgeBase::new(storage.clone(), name) else { continue };
            summaries.extend(kb.summary().await?);
        }
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(summaries)
    }

    /// Deletes the knowledge base: its manifests first, so that it is gone for readers at once,
    /// then its segments. `false` if it did not exist.
    pub async fn drop_all(&self) -> Result<bool> {
        let manifests = self.storage.list_after(&self.storage.path(&layout::manifest_prefix(&self.name)), None).await?;
        let everything = self.storage.list_after(&self.storage.path(&layout::kb_prefix(&self.name)), None).await?;
        let existed = !manifests.is_empty();
        self.storage.delete_all(manifests.into_iter().map(|m| m.location).collect()).await?;
        self.storage.delete_all(everything.into_iter().map(|m| m.location).collect()).await?;
        self.forget_snapshot();
        Ok(existed)
    }
}
