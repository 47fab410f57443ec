//! Declarative agents: YAML and TOML files declaring ReAct and workflow agents of built-ins,
//! run through the engine with fake models; a real MCP server's tools and prompt; errors
//! that name the line and the field.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use weir_agent::declarative::Loader;
use weir_agent::testing::{AgentTest, FakeModel};
use weir_models::Role;

/// Writes `text` to a fresh file named `name` and returns its path.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-declarative-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn load_error(name: &str, text: &str) -> String {
    Loader::new().load(&file(name, text)).await.unwrap_err().to_string()
}

const REACT_YAML: &str = r#"
name: review-scorer
kind: react
models:
  default: {provider: openai, options: {model: gpt-4o-mini}}
prompt:
  - {role: system, content: "You score reviews. Reply as {{\"score\": n}}."}
  - {role: user, content: "Review of {id}: {review}"}
output_schema:
  type: object
  required: [score]
  properties: {score: {type: integer, minimum: 1, maximum: 5}}
max_output_retries: 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_react_agent_runs_end_to_end_with_its_model_replaced_by_a_fake() {
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [FakeModel::text("Sure: {\"score\": 7}"), FakeModel::text("{\"score\": 4}")],
    ));
    let declared = Loader::new().model("default", model.clone()).load(&file("agent.yaml", REACT_YAML)).await.unwrap();
    assert_eq!(declared.name, "review-scorer");
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("kettle", json!({"id": "kettle", "review": "Boils fast."}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!({"score": 4})], "7 is out of range, so the model was asked again");
    let first = &model.requests()[0];
    assert_eq!(first.messages.last().unwrap().content, "Review of kettle: Boils fast.");
    assert!(first.messages.iter().any(|m| m.role == Role::System && m.content.contains("{\"score\": n}")));
    assert!(model.requests()[1].messages.last().unwrap().content.contains("at `/score`"), "the error was fed back");
}

const WORKFLOW_TOML: &str = r#"
name = "triage"
kind = "workflow"

[models.fast]
provider = "ollama"
options = { model = "llama3.2" }

[models.careful]
provider = "anthropic"
options = { model = "claude-3-5-haiku-latest" }
api_key_env = "WEIR_TEST_NO_SUCH_KEY_IS_NEEDED_WHEN_REPLACED"

[[steps]]
name = "category"
model = "fast"
prompt = "Category of: {text}"

[[steps]]
name = "reply"
model = "careful"
prompt = "Write a reply for a {category} ticket: {text}"
output_schema = { type = "object", required = ["reply"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_workflow_runs_its_steps_in_order_each_seeing_the_answers_before_it() {
    let fast = Arc::new(FakeModel::scripted("fast", [FakeModel::text("billing")]));
    let careful = Arc::new(FakeModel::scripted("careful", [FakeModel::text("{\"reply\": \"We refunded you.\"}")]));
    let declared = Loader::new()
        .model("fast", fast.clone())
        .model("careful", careful.clone())
        .load(&file("triage.toml", WORKFLOW_TOML))
        .await
        .unwrap();
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("t-1", json!({"text": "I was charged twice."}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!({"reply": "We refunded you."})]);
    assert_eq!(fast.requests()[0].messages.last().unwrap().content, "Category of: I was charged twice.");
    assert_eq!(
        careful.requests()[0].messages.last().unwrap().content,
        "Write a reply for a billing ticket: I was charged twice."
    );
}

#[tokio::test]
async fn invalid_files_get_errors_that_name_the_line_and_the_field() {
    let unknown_field = load_error("a.yaml", "name: x\nkind: react\nmodels: {}\npromt: hi\n").await;
    assert!(unknown_field.contains("a.yaml: line 4") && unknown_field.contains("promt"), "{unknown_field}");

    let wrong_type = load_error("b.yaml", "name: x\nkind: react\nmodels: {}\nmax_steps: many\n").await;
    assert!(wrong_type.contains("line 4") && wrong_type.contains("field `max_steps`"), "{wrong_type}");

    let bad_kind = load_error("c.toml", "name = \"x\"\nkind = \"pipeline\"\nmodels = {}\n").await;
    assert!(bad_kind.contains("c.toml: line 2") && bad_kind.contains("field `kind`"), "{bad_kind}");

    let text = WORKFLOW_TOML.replace("model = \"careful\"", "model = \"clever\"");
    let fakes = Loader::new()
        .model("fast", Arc::new(FakeModel::scripted("f", [])))
        .model("careful", Arc::new(FakeModel::scripted("c", [])));
    let unknown_model = fakes.load(&file("d.toml", &text)).await.unwrap_err().to_string();
    assert!(
        unknown_model.contains("field `steps[1].model`") && unknown_model.contains("no model named `clever`"),
        "{unknown_model}"
    );
    assert!(
        unknown_model.contains(&format!("line {}", text.lines().position(|l| l.contains("clever")).unwrap() + 1)),
        "{unknown_model}"
    );

    let with_default = Loader::new().model("default", Arc::new(FakeModel::scripted("d", [])));
    let text = REACT_YAML.replace("{{\\\"score\\\": n}}", "{score n}");
    let bad_prompt = with_default.load(&file("e.yaml", &text)).await.unwrap_err().to_string();
    assert!(bad_prompt.contains("field `prompt`") && bad_prompt.contains("bad placeholder"), "{bad_prompt}");

    let no_file = Loader::new().load(Path::new("/nonexistent/agent.yaml")).await.unwrap_err().to_string();
    assert!(no_file.contains("/nonexistent/agent.yaml: cannot read"), "{no_file}");
    assert!(load_error("f.json", "{}").await.contains("ends in .yaml, .yml or .toml"));
}

/// The MCP everything server's entry point, as `.ci/run` installs it.
fn everything_entry() -> PathBuf {
    let entry = std::env::var_os("WEIR_MCP_EVERYTHING").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../.ci/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
    });
    assert!(entry.is_file(), "the MCP everything server is not at {}: run .ci/run once", entry.display());
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_agent_uses_a_real_mcp_servers_tools_and_prompt() {
    let yaml = format!(
        r#"
name: weather
kind: react
models:
  default: environment
mcp_servers:
  - name: everything
    transport: {{stdio: {{command: node, args: ["{}", stdio]}}}}
tools:
  - mcp: {{server: everything, tools: [echo, get-sum]}}
prompt:
  mcp: {{server: everything, name: args-prompt, arguments: {{city: "{{city}}"}}}}
"#,
        everything_entry().display()
    );
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [
            FakeModel::tool_calls([
                weir_models::ToolCall { id: "1".into(), name: "echo".into(), arguments: json!({"message": "hi"}) },
                weir_models::ToolCall { id: "2".into(), name: "get-sum".into(), arguments: json!({"a": 2, "b": 3}) },
            ]),
            FakeModel::text("Sunny."),
        ],
    ));
    let declared = Loader::new().model("default", model.clone()).load(&file("weather.yaml", &yaml)).await.unwrap();
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("lyon", json!({"city": "Lyon"}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!("Sunny.")]);
    let requests = model.requests();
    assert_eq!(requests[0].messages[0].content, "What's weather in Lyon?", "the MCP prompt, filled per event");
    let offered: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, ["echo", "get-sum"]);
    let results: Vec<&str> =
        requests[1].messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.as_str()).collect();
    assert!(results[0].contains("hi") && results[1].contains('5'), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_agent_searches_a_knowledge_base_of_its_store_as_a_tool() {
    use weir_search::{AddOptions, DocumentKind, KnowledgeBase, SourceDocument};
    let dir = std::env::temp_dir().join(format!("weir-declarative-kb-{}-{}", std::process::id(), fastrand::u64(..)));
    let store = format!("file://{}", dir.display());
    let kb = KnowledgeBase::new(weir_engine::Storage::from_url(&store).unwrap(), "product-faq").unwrap();
    let faq =
        SourceDocument::new("faq.md", DocumentKind::Markdown, "# Returns\nKettles may be returned within 30 days.");
    kb.add(vec![faq], AddOptions::default(), &()).await.unwrap();

    let yaml = format!(
        "name: support\nkind: react\nmodels:\n  default: {{provider: openai, options: {{model: gpt-4o-mini}}}}\n\
         prompt: \"Answer: {{question}}\"\ntools:\n  - knowledge_base: {{name: product-faq, store: \"{store}\"}}\n"
    );
    let model = Arc::new(FakeModel::scripted(
        "fake",
        [
            FakeModel::tool_call("c1", "search_product_faq", json!({"query": "return a kettle"})),
            FakeModel::text("Within 30 days."),
        ],
    ));
    let declared = Loader::new().model("default", model.clone()).load(&file("support.yaml", &yaml)).await.unwrap();
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("q-1", json!({"question": "Can I return my kettle?"}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!("Within 30 days.")]);
    let tool_reply = model.requests()[1].messages.last().unwrap().content.clone();
    assert!(tool_reply.contains("within 30 days") && tool_reply.contains("faq.md"), "{tool_reply}");

    let both = "name: x\nkind: react\nmodels:\n  default: {provider: openai, options: {model: m}}\nprompt: hi\n\
                tools:\n  - knowledge_base: {name: bad/name, store: \"memory://\"}\n";
    let error = Loader::new().model("default", model).load(&file("bad.yaml", both)).await.unwrap_err().to_string();
    assert!(
        error.contains("field `tools[0].knowledge_base`") && error.contains("invalid knowledge base name"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A knowledge base as context: its best passages for the input are in the prompt before the
/// model answers (a journaled search, made once), with the document to cite; a context of
/// zero passages is refused at load, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_agent_gets_a_knowledge_base_as_context() {
    use weir_search::{AddOptions, DocumentKind, KnowledgeBase, SourceDocument};
    let dir =
        std::env::temp_dir().join(format!("weir-declarative-kb-ctx-{}-{}", std::process::id(), fastrand::u64(..)));
    let store = format!("file://{}", dir.display());
    let kb = KnowledgeBase::new(weir_engine::Storage::from_url(&store).unwrap(), "product-faq").unwrap();
    let faq = SourceDocument::new(
        "faq.md",
        DocumentKind::Markdown,
        "# Returns\nKettles may be returned within 30 days.\n\n# Shipping\nOrders ship in two days.",
    );
    kb.add(vec![faq], AddOptions::default(), &()).await.unwrap();

    let yaml = format!(
        "name: support\nkind: workflow\nmodels:\n  default: {{provider: openai, options: {{model: gpt-4o-mini}}}}\n\
         tools:\n  - knowledge_base: {{name: product-faq, store: \"{store}\", context: 1}}\n\
         steps:\n  - name: answer\n    prompt: \"Known:\\n{{knowledge.product_faq}}\\nQuestion: {{question}}\"\n"
    );
    let model = Arc::new(FakeModel::scripted("fake", [FakeModel::text("Within 30 days.")]));
    let declared = Loader::new().model("default", model.clone()).load(&file("support.yaml", &yaml)).await.unwrap();
    let test = AgentTest::new(Arc::new(declared.agent)).await;
    let run = test.run([("q-1", json!({"question": "Can I return my kettle?"}))]).await.unwrap();
    assert_eq!(run.outputs(), vec![json!("Within 30 days.")]);
    let requests = model.requests();
    assert_eq!(requests.len(), 1, "the search is not the model's to make");
    let prompt = &requests[0].messages.last().unwrap().content;
    assert!(prompt.starts_with("Known:\n- [faq.md] ") && prompt.contains("returned within 30 days"), "{prompt}");
    assert!(!prompt.contains("ship in two days"), "one passage, the best: {prompt}");
    assert!(requests[0].tools.is_empty(), "a workflow step offers only the tools it names");

    let zero = yaml.replace("context: 1", "context: 0");
    let error = Loader::new().model("default", model).load(&file("zero.yaml", &zero)).await.unwrap_err().to_string();
    assert!(error.contains("tools[0].knowledge_base.context") && error.contains("at least 1"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
