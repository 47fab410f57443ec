//! Turning a parsed file into a running agent: models built, MCP servers connected, tools
//! and prompts resolved, every reference checked.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use weir_engine::Storage;
use weir_models::{ChatModel, ModelConfig, OutputSchema};
use weir_search::KnowledgeBase;
use weir_tools::mcp::McpClient;
use weir_tools::{HttpTool, Tool};

use super::file::{AgentFile, AgentKind, KnowledgeBaseRef, ModelDecl, PromptDecl, ToolDecl, line_of};
use crate::chain::{Chain, ChainKnowledge, ChainMemory, ChainStep};
use crate::error::AgentError;
use crate::knowledge_tool::knowledge_base_tool;
use crate::long_term::MemorySetConfig;
use crate::prompt::{Prompt, PromptMessage};
use crate::retrieval::VectorStore;
use crate::tool_binding::ToolBinding;
use crate::workflow::{WorkflowAgent, WorkflowAgentBuilder};

/// An agent loaded from a file.
#[derive(Debug)]
pub struct DeclaredAgent {
    /// The name the file gives it.
    pub name: String,
    /// The agent, ready for [`weir_engine::Engine::builder`].
    pub agent: WorkflowAgent,
}

/// Loads agent files; models may be replaced by name (fakes in tests, a shared client).
///
/// ```no_run
/// # async fn demo() -> Result<(), weir_agent::AgentError> {
/// let declared = weir_agent::declarative::load(std::path::Path::new("agent.yaml")).await?;
/// println!("loaded agent {}", declared.name);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Loader {
    models: BTreeMap<String, Arc<dyn ChatModel>>,
    environment: Option<Environment>,
    /// How S3 Vectors knowledge bases reach AWS; the environment's configuration when absent.
    #[cfg(feature = "s3-vectors")]
    aws: Option<aws_config::SdkConfig>,
}

/// A source of variables: a name's value, if set.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where `environment` models read their variables, when not the process environment.
struct Environment(Arc<Lookup>);

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment(..)")
    }
}

/// Loads the agent file at `path`.
pub async fn load(path: &Path) -> Result<DeclaredAgent, AgentError> {
    Loader::default().load(path).await
}

/// Builds errors that name the file, the line of `needle` and the field.
struct Problems<'f> {
    file: String,
    text: &'f str,
}

impl Problems<'_> {
    fn at(&self, field: &str, needle: &str, message: impl std::fmt::Display) -> AgentError {
        let line = line_of(self.text, needle).map(|l| format!("line {l}: ")).unwrap_or_default();
        AgentError::Declaration(format!("{}: {line}field `{field}`: {message}", self.file))
    }
}

impl Loader {
    /// A loader that builds every model from the file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `model` for the file's model `name` instead of building it.
    pub fn model(mut self, name: impl Into<String>, model: Arc<dyn ChatModel>) -> Self {
        self.models.insert(name.into(), model);
        self
    }

    /// Builds the file's `environment` models from the variables `env` answers (`WEIR_MODEL_*`,
    /// the providers' API keys) instead of the process environment: a function that reads
    /// its key from a secret answers for the key variables.
    pub fn environment(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.environment = Some(Environment(Arc::new(env)));
        self
    }

    /// Reaches the S3 Vectors indexes the file names (`store: s3vectors://BUCKET`) through
    /// `config` (an endpoint, credentials) instead of the environment's AWS configuration.
    #[cfg(feature = "s3-vectors")]
    pub fn aws_config(mut self, config: aws_config::SdkConfig) -> Self {
        self.aws = Some(config);
        self
    }

    /// The variable `name`, from the environment given or the process's.
    fn variable(&self, name: &str) -> Option<String> {
        match &self.environment {
            Some(Environment(env)) => env(name),
            None => std::env::var(name).ok(),
        }
    }

    /// Reads, checks and builds the agent file at `path` (YAML or TOML by extension).
    pub async fn load(&self, path: &Path) -> Result<DeclaredAgent, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AgentError::Declaration(format!("{}: cannot read: {e}", path.display())))?;
        let file = AgentFile::parse(path, &text)?;
        self.build(file, &Problems { file: path.display().to_string(), text: &text }).await
    }

    async fn build(&self, file: AgentFile, problems: &Problems<'_>) -> Result<DeclaredAgent, AgentError> {
        let models = self.models(&file, problems)?;
        let default_model = match models.keys().collect::<Vec<_>>().as_slice() {
            [only] => Some((*only).clone()),
            _ => models.contains_key("default").then(|| "default".to_string()),
        };
        let servers = connect(&file, problems).await?;
        let mut builder = WorkflowAgent::builder();
        let mut allowed = Vec::new();
        let mut knowledge = Vec::new();
        for (i, decl) in file.tools.iter().enumerate() {
            for binding in tools(decl, i, &servers, self, problems).await? {
                let tool = binding.spec().name.clone();
                if let Some(reference) = decl.knowledge_base.as_ref().filter(|r| r.context.is_some()) {
                    let top_k = reference.context.unwrap_or_default();
                    if top_k == 0 {
                        let field = format!("tools[{i}].knowledge_base.context");
                        return Err(problems.at(&field, "context", "give how many passages, at least 1"));
                    }
                    knowledge.push(ChainKnowledge {
                        name: reference.name.replace('-', "_"),
                        tool: tool.clone(),
                        top_k,
                    });
                }
                allowed.push(tool);
                builder = builder.tool_binding(binding);
            }
        }
        let model_for = |field: &str, name: &Option<String>| -> Result<String, AgentError> {
            let name = name
                .clone()
                .or_else(|| default_model.clone())
                .ok_or_else(|| problems.at(field, "models:", "several models and none named `default`: say which"))?;
            match models.contains_key(&name) {
                true => Ok(name),
                false => Err(problems.at(field, &name, format!("no model named `{name}` in `models`"))),
            }
        };
        let retries = file.max_output_retries.unwrap_or(2);
        let (builder, steps) = match file.kind {
            AgentKind::React => {
                if !file.steps.is_empty() {
                    return Err(problems.at("steps", "steps:", "a react agent has no steps (use kind: workflow)"));
                }
                let model = model_for("models", &None)?;
                let prompt = match &file.prompt {
                    Some(prompt) => Some(resolve_prompt(prompt, "prompt", &servers, problems).await?),
                    None => None,
                };
                let schema = file.output_schema.clone().map(|schema| OutputSchema::new("output", schema));
                let step = ChainStep { name: "answer".into(), model, prompt, tools: allowed.clone(), schema };
                (builder, vec![step])
            }
            AgentKind::Workflow => {
                for (field, set) in [("prompt", file.prompt.is_some()), ("output_schema", file.output_schema.is_some())]
                {
                    if set {
                        return Err(problems.at(field, &format!("{field}:"), "a workflow sets this per step"));
                    }
                }
                if file.steps.is_empty() {
                    return Err(problems.at("steps", "kind:", "a workflow needs at least one step"));
                }
                let mut steps = Vec::new();
                for (i, step) in file.steps.iter().enumerate() {
                    let field = format!("steps[{i}]");
                    if file.steps[..i].iter().any(|s| s.name == step.name) {
                        return Err(problems.at(&format!("{field}.name"), &step.name, "two steps have this name"));
                    }
                    for tool in &step.tools {
                        if !allowed.contains(tool) {
                            let message =
                                format!("no tool named `{tool}` in `tools` (there are: {})", allowed.join(", "));
                            return Err(problems.at(&format!("{field}.tools"), tool, message));
                        }
                    }
                    let prompt = resolve_prompt(&step.prompt, &format!("{field}.prompt"), &servers, problems).await?;
                    let schema = step.output_schema.clone().map(|schema| OutputSchema::new(step.name.clone(), schema));
                    steps.push(ChainStep {
                        name: step.name.clone(),
                        model: model_for(&format!("{field}.model"), &step.model)?,
                        prompt: Some(prompt),
                        tools: step.tools.clone(),
                        schema,
                    });
                }
                (builder, steps)
            }
        };
        let (builder, memories) = memory_sets(builder, &file, &models, &|name| self.variable(name), problems)?;
        let chain = Chain::new(steps, retries, memories, knowledge)
            .map_err(|e| problems.at("output_schema", "output_schema", e))?;
        let mut builder = finish(builder, &file, models, servers);
        for action in chain.actions() {
            builder = builder.action(action);
        }
        let agent = builder.build().map_err(|e| AgentError::Declaration(format!("{}: {e}", problems.file)))?;
        Ok(DeclaredAgent { name: file.name, agent })
    }

    fn models(
        &self,
        file: &AgentFile,
        problems: &Problems<'_>,
    ) -> Result<BTreeMap<String, Arc<dyn ChatModel>>, AgentError> {
        let mut models = BTreeMap::new();
        let env = |name: &str| self.variable(name);
        for (name, decl) in &file.models {
            let field = format!("models.{name}");
            let model = match (self.models.get(name), decl) {
                (Some(model), _) => model.clone(),
                (None, ModelDecl::Config(config)) => {
                    config.build_with_env(&env).map_err(|e| problems.at(&field, name, e))?
                }
                (None, ModelDecl::Environment(_)) => {
                    let config = ModelConfig::from_environment(&env).map_err(|e| problems.at(&field, name, e))?;
                    let config = config.ok_or_else(|| {
                        problems.at(&field, name, "`environment`, but no provider is configured (set OPENAI_API_KEY, ANTHROPIC_API_KEY, OLLAMA_HOST or WEIR_MODEL_PROVIDER)")
                    })?;
                    config.build_with_env(&env).map_err(|e| problems.at(&field, name, e))?
                }
            };
            models.insert(name.clone(), model);
        }
        if models.is_empty() {
            return Err(problems.at("models", "models", "declare at least one model"));
        }
        Ok(models)
    }
}

/// The file's long-term memory sets: each declared on the agent (its embedding model
/// registered as `memory:<set>`), and what the steps recall of it and remember in it.
fn memory_sets(
    mut builder: WorkflowAgentBuilder,
    file: &AgentFile,
    models: &BTreeMap<String, Arc<dyn ChatModel>>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &Problems<'_>,
) -> Result<(WorkflowAgentBuilder, Vec<ChainMemory>), AgentError> {
    let mut memories = Vec::new();
    for (set, decl) in &file.memory_sets {
        let field = format!("memory_sets.{set}");
        if let Some(model) = decl.summarizer.as_ref().filter(|model| !models.contains_key(*model)) {
            return Err(problems.at(
                &format!("{field}.summarizer"),
                model,
                format!("no model named `{model}` in `models`"),
            ));
        }
        let embedding = match &decl.embedding {
            Some(config) => {
                let model =
                    config.build_with_env(env).map_err(|e| problems.at(&format!("{field}.embedding"), set, e))?;
                let name = format!("memory:{set}");
                builder = builder.embedding(name.clone(), model);
                Some(name)
            }
            None => None,
        };
        let remember = decl.remember.as_ref().map(|text| Prompt::Text(text.clone()));
        if let Some(template) = &remember {
            template.validate().map_err(|e| problems.at(&format!("{field}.remember"), "remember", e))?;
        }
        let config = MemorySetConfig {
            capacity: decl.capacity,
            ttl_ms: decl.ttl_ms,
            summarizer: decl.summarizer.clone(),
            embedding,
        };
        builder = builder.memory_set(set.clone(), config);
        memories.push(ChainMemory { set: set.clone(), recall: decl.recall.unwrap_or(5), remember });
    }
    Ok((builder, memories))
}

/// Registers the models, MCP clients (kept alive with the agent) and settings.
fn finish(
    mut builder: WorkflowAgentBuilder,
    file: &AgentFile,
    models: BTreeMap<String, Arc<dyn ChatModel>>,
    servers: BTreeMap<String, Arc<McpClient>>,
) -> WorkflowAgentBuilder {
    for (name, model) in models {
        builder = builder.model(name, model);
    }
    for (name, client) in servers {
        builder = builder.value(format!("mcp:{name}"), client);
    }
    for (name, value) in &file.config {
        builder = builder.config(name.clone(), value.clone());
    }
    if let Some(steps) = file.max_steps {
        builder = builder.max_chat_steps(steps);
    }
    if let Some(ttl) = file.memory_ttl_ms {
        builder = builder.memory_ttl(std::time::Duration::from_millis(ttl));
    }
    builder = builder.trace_settings(file.trace.clone());
    for (model, price) in &file.prices {
        builder = builder.price(model.clone(), *price);
    }
    if let Some(budget) = &file.key_budget {
        builder = builder.key_budget(budget.clone());
    }
    if let Some(budget) = &file.agent_budget {
        builder = builder.agent_budget(budget.clone());
    }
    builder
}

async fn connect(file: &AgentFile, problems: &Problems<'_>) -> Result<BTreeMap<String, Arc<McpClient>>, AgentError> {
    let mut servers = BTreeMap::new();
    for (i, config) in file.mcp_servers.iter().enumerate() {
        let field = format!("mcp_servers[{i}]");
        if servers.contains_key(&config.name) {
            return Err(problems.at(&format!("{field}.name"), &config.name, "two MCP servers have this name"));
        }
        let client = McpClient::connect(config).await.map_err(|e| problems.at(&field, &config.name, e))?;
        servers.insert(config.name.clone(), Arc::new(client));
    }
    Ok(servers)
}

fn server<'s>(
    servers: &'s BTreeMap<String, Arc<McpClient>>,
    name: &str,
    field: &str,
    problems: &Problems<'_>,
) -> Result<&'s Arc<McpClient>, AgentError> {
    servers.get(name).ok_or_else(|| problems.at(field, name, format!("no MCP server named `{name}` in `mcp_servers`")))
}

/// The scheme of a knowledge base's `store` that names an S3 vector bucket.
const S3_VECTORS_SCHEME: &str = "s3vectors://";

/// The search tool over the knowledge base `reference` names: weir's own, in its store or the
/// agent's, or an S3 Vectors index (`store: s3vectors://BUCKET`, the index named `name`).
async fn knowledge_base(
    reference: &KnowledgeBaseRef,
    field: &str,
    loader: &Loader,
    problems: &Problems<'_>,
) -> Result<Arc<dyn Tool>, AgentError> {
    let env = |name: &str| loader.variable(name);
    let store = reference.store.clone().or_else(|| env("WEIR_STORE")).ok_or_else(|| {
        problems.at(field, &reference.name, "no `store`, and WEIR_STORE is not set: say which store holds it")
    })?;
    let embedder = match &reference.embedding {
        Some(embedding) => Some(
            embedding.build_with_env(&env).map_err(|e| problems.at(&format!("{field}.embedding"), "embedding", e))?,
        ),
        None => None,
    };
    let name = reference.tool.clone().unwrap_or_else(|| format!("search_{}", reference.name.replace('-', "_")));
    let searched: Arc<dyn VectorStore> = match store.strip_prefix(S3_VECTORS_SCHEME) {
        Some(bucket) => s3_vectors(bucket, reference, embedder, &format!("{field}.store"), loader, problems).await?,
        None => {
            let storage = Storage::from_url(&store).map_err(|e| problems.at(&format!("{field}.store"), &store, e))?;
            let kb =
                KnowledgeBase::new(storage, &reference.name).map_err(|e| problems.at(field, &reference.name, e))?;
            Arc::new(match embedder {
                Some(model) => kb.with_embedder(model),
                None => kb,
            })
        }
    };
    Ok(Arc::new(knowledge_base_tool(name, searched)))
}

/// The S3 Vectors index `reference.name` of `bucket`, searched by the vectors of `embedder`.
async fn s3_vectors(
    bucket: &str,
    reference: &KnowledgeBaseRef,
    embedder: Option<Arc<dyn weir_models::EmbeddingModel>>,
    field: &str,
    loader: &Loader,
    problems: &Problems<'_>,
) -> Result<Arc<dyn VectorStore>, AgentError> {
    if bucket.is_empty() || bucket.contains('/') {
        return Err(problems.at(
            field,
            S3_VECTORS_SCHEME,
            "write `s3vectors://BUCKET`: the vector bucket alone (`name` is the index)",
        ));
    }
    let embedder = embedder.ok_or_else(|| {
        problems.at(field, S3_VECTORS_SCHEME, "an S3 Vectors index needs `embedding`: the model its vectors come from")
    })?;
    #[cfg(feature = "s3-vectors")]
    {
        let store = match &loader.aws {
            Some(config) => crate::S3VectorsStore::new(config, bucket, &reference.name, embedder),
            None => crate::S3VectorsStore::from_env(bucket, &reference.name, embedder).await,
        };
        Ok(Arc::new(store))
    }
    #[cfg(not(feature = "s3-vectors"))]
    {
        let _ = (reference, embedder, loader);
        Err(problems.at(
            field,
            S3_VECTORS_SCHEME,
            "this build has no S3 Vectors support (weir-agent's feature `s3-vectors`)",
        ))
    }
}

async fn tools(
    decl: &ToolDecl,
    index: usize,
    servers: &BTreeMap<String, Arc<McpClient>>,
    loader: &Loader,
    problems: &Problems<'_>,
) -> Result<Vec<ToolBinding>, AgentError> {
    let field = format!("tools[{index}]");
    let found: Vec<Arc<dyn Tool>> = match (&decl.http, &decl.mcp) {
        (Some(_), _) | (_, Some(_)) if decl.knowledge_base.is_some() => {
            return Err(problems.at(&field, "knowledge_base", "give exactly one of `http`, `mcp` or `knowledge_base`"));
        }
        (Some(http), None) => {
            let tool = HttpTool::new(http).map_err(|e| problems.at(&format!("{field}.http"), &http.name, e))?;
            vec![Arc::new(tool)]
        }
        (None, Some(mcp)) => {
            let client = server(servers, &mcp.server, &format!("{field}.mcp.server"), problems)?;
            let offered = client.tools().await.map_err(|e| problems.at(&format!("{field}.mcp"), &mcp.server, e))?;
            match &mcp.tools {
                None => offered,
                Some(names) => {
                    let mut chosen = Vec::new();
                    for name in names {
                        let tool = offered.iter().find(|t| &t.spec().name == name).ok_or_else(|| {
                            let available: Vec<String> = offered.iter().map(|t| t.spec().name).collect();
                            let message = format!(
                                "server `{}` has no tool `{name}` (it has: {})",
                                mcp.server,
                                available.join(", ")
                            );
                            problems.at(&format!("{field}.mcp.tools"), name, message)
                        })?;
                        chosen.push(tool.clone());
                    }
                    chosen
                }
            }
        }
        (None, None) if decl.knowledge_base.is_some() => {
            let reference = decl.knowledge_base.as_ref().expect("checked");
            vec![knowledge_base(reference, &format!("{field}.knowledge_base"), loader, problems).await?]
        }
        _ => return Err(problems.at(&field, "tools:", "give exactly one of `http`, `mcp` or `knowledge_base`")),
    };
    Ok(found
        .into_iter()
        .map(|tool| {
            decl.hide.iter().fold(ToolBinding::new(tool), |b, (name, source)| b.hide(name.clone(), source.clone()))
        })
        .collect())
}

/// A placeholder argument travels to the MCP server as a marker no prompt contains, so that
/// the rendered text's own braces can be escaped and the placeholders put back.
const MARK: char = '\u{1}';

async fn resolve_prompt(
    decl: &PromptDecl,
    field: &str,
    servers: &BTreeMap<String, Arc<McpClient>>,
    problems: &Problems<'_>,
) -> Result<Prompt, AgentError> {
    let prompt = match (decl.local(), decl) {
        (Some(prompt), _) => prompt,
        (None, PromptDecl::Mcp { mcp }) => {
            let client = server(servers, &mcp.server, &format!("{field}.mcp.server"), problems)?;
            let marked =
                mcp.arguments.iter().map(|(k, v)| (k.clone(), v.replace('{', &MARK.to_string()).replace('}', "\u{2}")));
            let messages = client
                .get_prompt(&mcp.name, marked)
                .await
                .map_err(|e| problems.at(&format!("{field}.mcp"), &mcp.name, e))?;
            let template =
                |text: &str| text.replace('{', "{{").replace('}', "}}").replace(MARK, "{").replace('\u{2}', "}");
            Prompt::Messages(
                messages.iter().map(|m| PromptMessage { role: m.role, content: template(&m.content) }).collect(),
            )
        }
        (None, _) => unreachable!("only MCP prompts are not local"),
    };
    prompt.validate().map_err(|e| problems.at(field, "prompt", e))?;
    Ok(prompt)
}
