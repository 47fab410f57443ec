//! A tool that searches a knowledge base, for ReAct agents and chat models.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_tools::FunctionTool;

use crate::retrieval::{VectorStore, query_of};

/// The most chunks one call returns, whatever the model asks.
const MAX_TOP_K: usize = 20;

/// Searches the knowledge base for passages relevant to a question; returns the best ones with
/// the document each comes from, so that the answer can cite it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct KnowledgeSearch {
    /// What to look for, in words likely to appear in the passage.
    pub query: String,
    /// How many passages to return (default 3, at most 20).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Only passages whose metadata has these values.
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

/// One passage found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgePassage {
    /// The document it comes from: what to cite.
    pub document: String,
    /// Its text.
    pub text: String,
    /// Its score: higher is better.
    pub score: f32,
    /// Its metadata (`section` for Markdown).
    pub metadata: serde_json::Value,
}

/// A tool named `name` searching `store` (a [`KnowledgeBase`](weir_search::KnowledgeBase) or
/// any [`VectorStore`]); the chat loop journals its calls like every tool's.
///
/// ```
/// use std::sync::Arc;
/// use weir_agent::knowledge_base_tool;
/// use weir_engine::Storage;
/// use weir_search::KnowledgeBase;
/// use weir_tools::Tool;
///
/// let kb = KnowledgeBase::new(Storage::from_url("memory://").unwrap(), "runbooks").unwrap();
/// let tool = knowledge_base_tool("search_runbooks", Arc::new(kb));
/// assert_eq!(tool.spec().name, "search_runbooks");
/// ```
pub fn knowledge_base_tool(name: impl Into<String>, store: Arc<dyn VectorStore>) -> FunctionTool {
    FunctionTool::new(name, move |search: KnowledgeSearch| {
        let store = store.clone();
        async move {
            let top_k = search.top_k.unwrap_or(3).clamp(1, MAX_TOP_K);
            let documents = store.search(&query_of(&search.query, top_k, &search.filter)).await?;
            let passages: Vec<KnowledgePassage> = documents
                .into_iter()
                .map(|d| KnowledgePassage {
                    document: d.metadata.get("document").and_then(|v| v.as_str()).map_or(d.id.clone(), str::to_string),
                    text: d.content,
                    score: d.score,
                    metadata: d.metadata,
                })
                .collect();
            Ok::<_, weir_search::SearchError>(serde_json::json!({ "passages": passages }))
        }
    })
    .with_read_only()
}
