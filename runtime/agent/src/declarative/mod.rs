//! Declarative agents: a YAML or TOML file declares a ReAct or workflow agent made of
//! built-ins (models, prompts, HTTP, MCP and knowledge-base tools, output schemas), so an agent ships with no
//! Rust code.
//!
//! ```yaml
//! name: review-triage
//! kind: react
//! models:
//!   default: {provider: openai, options: {model: gpt-4o-mini}}
//! prompt: "Score this review of {id} from 1 to 5 with reasons: {review}"
//! tools:
//!   - http: {name: notify, description: Notifies the team., url: "https://hooks.example.com/notify"}
//!   - knowledge_base: {name: product-faq}   # `search_product_faq`, over `weir kb add product-faq …`
//!   - knowledge_base: {name: policies, context: 3}   # also `{knowledge.policies}` in the prompts
//!   - knowledge_base:                       # an AWS S3 Vectors index (feature `s3-vectors`)
//!       name: manuals
//!       store: s3vectors://support-vectors
//!       embedding: {provider: openai, options: {model: text-embedding-3-small}}
//! output_schema:
//!   type: object
//!   required: [score, reasons]
//!   properties: {score: {type: integer, minimum: 1, maximum: 5}, reasons: {type: array, items: {type: string}}}
//! ```
//!
//! Errors name the file, the field and the line.

mod build;
mod file;

pub use build::{DeclaredAgent, Loader, load};
pub use file::{
    AgentFile, AgentKind, KnowledgeBaseRef, McpPromptRef, McpToolsRef, MemorySetDecl, ModelDecl, PromptDecl, StepDecl,
    ToolDecl,
};
