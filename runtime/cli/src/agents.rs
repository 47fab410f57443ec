//! `--agent NAME`: a declarative agent file, or an agent built into `weir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_engine::Agent;

use crate::error::{CliError, Result};

/// The agent `--agent` names when it is not given.
pub const DEFAULT_AGENT: &str = "review-analysis";

/// The binary that serves a declarative agent file as the process function.
const DECLARATIVE_PROCESS_BINARY: &str = "weir-process";

/// An agent linked into `weir`, and the process function binary that links the same agent.
#[derive(Debug)]
pub struct BuiltIn {
    /// Its name: `--agent` takes it, and its commits live under `agents/<name>/`.
    pub name: &'static str,
    /// The process function binary serving it, built beside `weir`.
    pub process_binary: &'static str,
    build: fn() -> std::result::Result<Arc<dyn Agent>, String>,
}

/// The agents built into `weir`.
const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "review-analysis",
        process_binary: "review-analysis",
        build: || Ok(Arc::new(weir_review_analysis::agent_from_env().map_err(|e| e.to_string())?)),
    },
    BuiltIn {
        name: "product-suggestions",
        process_binary: "product-suggestions",
        build: || Ok(Arc::new(weir_review_analysis::suggestions_agent_from_env().map_err(|e| e.to_string())?)),
    },
    BuiltIn {
        name: "fraud-detection",
        process_binary: "fraud-detection",
        build: || Ok(Arc::new(weir_fraud_detection::agent_from_env().map_err(|e| e.to_string())?)),
    },
    BuiltIn {
        name: "ops-diagnosis",
        process_binary: "ops-diagnosis",
        build: || Ok(Arc::new(weir_ops_diagnosis::agent_from_env().map_err(|e| e.to_string())?)),
    },
];

/// An agent as `--agent` named it.
#[derive(Debug, Clone)]
pub enum AgentChoice {
    /// One linked into `weir`.
    BuiltIn(&'static BuiltIn),
    /// A declarative agent file (YAML or TOML).
    File(PathBuf),
}

/// A built agent, under the name its commits are kept.
#[derive(Debug, Clone)]
pub struct LoadedAgent {
    /// The agent's name.
    pub name: String,
    pub agent: Arc<dyn Agent>,
}

impl AgentChoice {
    /// A path to a `.yaml`, `.yml` or `.toml` file is a declarative agent; anything else
    /// must be a built-in agent's name.
    pub fn parse(agent: &str) -> Result<Self> {
        let path = Path::new(agent);
        if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "toml")) {
            let path = std::path::absolute(path).map_err(|e| CliError::file(path, e))?;
            return Ok(AgentChoice::File(path));
        }
        match BUILT_IN.iter().find(|b| b.name == agent) {
            Some(built_in) => Ok(AgentChoice::BuiltIn(built_in)),
            None => {
                let known: Vec<&str> = BUILT_IN.iter().map(|b| b.name).collect();
                Err(CliError::Agent {
                    name: agent.into(),
                    reason: format!(
                        "no such built-in agent (built in: {}); or give a .yaml, .yml or .toml file",
                        known.join(", ")
                    ),
                })
            }
        }
    }

    /// Builds the agent; a declarative file is read and checked.
    pub async fn load(&self) -> Result<LoadedAgent> {
        match self {
            AgentChoice::BuiltIn(built_in) => {
                let agent = (built_in.build)().map_err(|reason| self.error(reason))?;
                Ok(LoadedAgent { name: built_in.name.into(), agent })
            }
            AgentChoice::File(path) => {
                let declared = weir_agent::declarative::load(path).await.map_err(|e| self.error(e.to_string()))?;
                Ok(LoadedAgent { name: declared.name, agent: Arc::new(declared.agent) })
            }
        }
    }

    /// The name its commits are kept under; a declarative file is read for it.
    pub async fn name(&self) -> Result<String> {
        match self {
            AgentChoice::BuiltIn(built_in) => Ok(built_in.name.into()),
            AgentChoice::File(_) => Ok(self.load().await?.name),
        }
    }

    /// The process function binary's name, and the variables it needs besides the store
    /// and agent name.
    pub fn process_function(&self) -> (&'static str, Vec<(String, String)>) {
        match self {
            AgentChoice::BuiltIn(built_in) => (built_in.process_binary, Vec::new()),
            AgentChoice::File(path) => {
                (DECLARATIVE_PROCESS_BINARY, vec![("WEIR_AGENT_FILE".into(), path.display().to_string())])
            }
        }
    }

    /// How a person names it: a built-in agent's name, or a file's name.
    pub fn label(&self) -> String {
        match self {
            AgentChoice::BuiltIn(built_in) => built_in.name.into(),
            AgentChoice::File(path) => {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
            }
        }
    }

    fn error(&self, reason: String) -> CliError {
        match self {
            AgentChoice::BuiltIn(built_in) => CliError::Agent { name: built_in.name.into(), reason },
            // The loader's errors name the file, the line and the field.
            AgentChoice::File(_) => CliError::Input(reason),
        }
    }
}
