//! The runbook knowledge base: the Markdown runbooks shipped in `runbooks/`, searched by BM25
//! (no model), or a knowledge base of the store that `weir kb add` filled.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use weir_agent::{Document, VectorStore};
use weir_engine::Storage;
use weir_search::{AddOptions, DocumentKind, KnowledgeBase, SearchError, SearchQuery, SourceDocument};

/// The runbook search tool's name.
pub const SEARCH_RUNBOOKS: &str = "search_runbooks";

/// The runbooks built into the binary, as `runbooks/NAME.md`.
const SHIPPED: [(&str, &str); 12] = [
    ("runbooks/certificate-expired.md", include_str!("../runbooks/certificate-expired.md")),
    ("runbooks/cron-missed.md", include_str!("../runbooks/cron-missed.md")),
    ("runbooks/database-connections.md", include_str!("../runbooks/database-connections.md")),
    ("runbooks/deploy-rollback.md", include_str!("../runbooks/deploy-rollback.md")),
    ("runbooks/disk-full.md", include_str!("../runbooks/disk-full.md")),
    ("runbooks/dns-resolution.md", include_str!("../runbooks/dns-resolution.md")),
    ("runbooks/gpu-xid.md", include_str!("../runbooks/gpu-xid.md")),
    ("runbooks/heartbeat-timeout.md", include_str!("../runbooks/heartbeat-timeout.md")),
    ("runbooks/kafka-consumer-lag.md", include_str!("../runbooks/kafka-consumer-lag.md")),
    ("runbooks/oom.md", include_str!("../runbooks/oom.md")),
    ("runbooks/replication-lag.md", include_str!("../runbooks/replication-lag.md")),
    ("runbooks/s3-throttling.md", include_str!("../runbooks/s3-throttling.md")),
];

/// The shipped runbooks in an in-memory knowledge base, built on the first search and kept
/// for the life of the process (a warm Lambda container builds it once).
#[derive(Debug, Default)]
pub struct ShippedRunbooks {
    kb: OnceCell<KnowledgeBase>,
}

impl ShippedRunbooks {
    async fn kb(&self) -> Result<&KnowledgeBase, SearchError> {
        self.kb
            .get_or_try_init(|| async {
                let kb = KnowledgeBase::new(Storage::from_url("memory://")?, "runbooks")?;
                let documents =
                    SHIPPED.iter().map(|(id, text)| SourceDocument::new(*id, DocumentKind::Markdown, *text));
                kb.add(documents.collect(), AddOptions::default(), &()).await?;
                Ok(kb)
            })
            .await
    }
}

#[async_trait]
impl VectorStore for ShippedRunbooks {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Document>, SearchError> {
        VectorStore::search(self.kb().await?, query).await
    }
}

/// The runbooks to search: the knowledge base `WEIR_RUNBOOKS_KB` of the store `WEIR_STORE`
/// when both are set (filled by `weir kb add NAME functions/ops-diagnosis/runbooks`), else
/// the shipped ones.
pub fn runbooks_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn VectorStore>, SearchError> {
    match (env("WEIR_RUNBOOKS_KB"), env("WEIR_STORE")) {
        (Some(name), Some(store)) if !name.trim().is_empty() => {
            Ok(Arc::new(KnowledgeBase::new(Storage::from_url(&store)?, &name)?))
        }
        _ => Ok(Arc::new(ShippedRunbooks::default())),
    }
}
