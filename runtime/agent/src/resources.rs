//! What an agent's actions may use, by name: models, tools, prompts, vector stores,
//! configuration, and any other shared value.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use weir_models::{ChatModel, EmbeddingModel};

use crate::error::AgentError;
use crate::prompt::Prompt;
use crate::retrieval::VectorStore;
use crate::tool_binding::ToolBinding;

/// An agent's named resources. The tools registered are the agent's allow-list: a model may
/// call no other.
#[derive(Default)]
pub struct Resources {
    pub(crate) models: BTreeMap<String, Arc<dyn ChatModel>>,
    pub(crate) embeddings: BTreeMap<String, Arc<dyn EmbeddingModel>>,
    pub(crate) tools: BTreeMap<String, ToolBinding>,
    pub(crate) prompts: BTreeMap<String, Prompt>,
    pub(crate) vector_stores: BTreeMap<String, Arc<dyn VectorStore>>,
    pub(crate) config: Map<String, Value>,
    pub(crate) values: BTreeMap<String, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .field("embeddings", &self.embeddings.keys().collect::<Vec<_>>())
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("prompts", &self.prompts.keys().collect::<Vec<_>>())
            .field("vector_stores", &self.vector_stores.keys().collect::<Vec<_>>())
            .field("config", &self.config.keys().collect::<Vec<_>>())
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn find<'r, T>(map: &'r BTreeMap<String, T>, kind: &'static str, name: &str) -> Result<&'r T, AgentError> {
    map.get(name).ok_or_else(|| AgentError::UnknownResource { kind, name: name.to_string() })
}

impl Resources {
    /// The chat model registered as `name`.
    pub fn model(&self, name: &str) -> Result<&Arc<dyn ChatModel>, AgentError> {
        find(&self.models, "chat model", name)
    }

    /// The embedding model registered as `name`.
    pub fn embedding(&self, name: &str) -> Result<&Arc<dyn EmbeddingModel>, AgentError> {
        find(&self.embeddings, "embedding model", name)
    }

    /// The tool registered as `name`.
    pub fn tool(&self, name: &str) -> Result<&ToolBinding, AgentError> {
        find(&self.tools, "tool", name)
    }

    /// The prompt registered as `name`.
    pub fn prompt(&self, name: &str) -> Result<&Prompt, AgentError> {
        find(&self.prompts, "prompt", name)
    }

    /// The vector store registered as `name`.
    pub fn vector_store(&self, name: &str) -> Result<&Arc<dyn VectorStore>, AgentError> {
        find(&self.vector_stores, "vector store", name)
    }

    /// The configuration entry `name`, decoded.
    pub fn config<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, AgentError> {
        self.config
            .get(name)
            .map(|v| T::deserialize(v).map_err(|e| AgentError::Decode { what: format!("config `{name}`"), source: e }))
            .transpose()
    }

    /// The shared value registered as `name`, of type `T`.
    pub fn value<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>, AgentError> {
        let value = find(&self.values, "value", name)?.clone();
        value
            .downcast::<T>()
            .map_err(|_| AgentError::UnknownResource { kind: "value of the requested type", name: name.to_string() })
    }
}
