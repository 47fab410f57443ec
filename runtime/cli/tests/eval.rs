//! `weir eval`: a dataset of cases with expectations run through versions of an agent; a
//! version that meets them passes, a candidate that regresses against its baseline exits
//! non-zero naming the cases and why, the judge grades outputs against a rubric, and a
//! dataset line that is not a case is refused by its line number.

mod common;

use common::scoring::{ScoringModel, score};
use common::{TempDir, fails, shared_reviews, weir};
use serde_json::{Value, json};

/// Cases in the dataset.
const CASES: usize = 12;

fn agent_file(dir: &TempDir, name: &str, system: &str) -> String {
    let file = dir.join(name);
    let text = format!(
        r#"name: scorer
kind: react
models: {{default: environment}}
prompt:
  - {{role: system, content: "{system} Answer with JSON only."}}
  - {{role: user, content: "Review: {{review}}"}}
output_schema: {{type: object, required: [score]}}
"#
    );
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_meets_the_dataset_passes_and_a_regressing_one_fails_naming_why() {
    let model = ScoringModel::start().await;
    let dir = TempDir::new("eval");
    let reviews = std::fs::read_to_string(shared_reviews(&dir, CASES)).unwrap();
    let mut lines = Vec::new();
    let mut scores = Vec::new();
    for (i, line) in reviews.lines().enumerate() {
        let review: Value = serde_json::from_str(line).unwrap();
        let expected = score(review["review"].as_str().unwrap(), false);
        scores.push(expected);
        let expect = json!({"equals": {"score": expected}, "schema": {"type": "object", "required": ["score"]}});
        lines.push(
            json!({"id": format!("review-{i}"), "key": review["id"], "input": review, "expect": expect}).to_string(),
        );
    }
    let dataset = dir.join("cases.jsonl");
    std::fs::write(&dataset, lines.join("\n") + "\n").unwrap();
    let dataset = dataset.to_str().unwrap();
    let lenient = agent_file(&dir, "lenient.yaml", "Score the review from 1 to 5.");
    let strict =
        agent_file(&dir, "strict.yaml", &format!("Score the review from 1 to 5. {}.", common::scoring::STRICT));
    let eval = |args: &[&str]| {
        let mut command = weir(&[&["eval", dataset][..], args].concat());
        command.envs(model.env());
        command
    };

    let passed = eval(&["--agent", &lenient, "--format", "json"]).output().unwrap();
    assert!(passed.status.success(), "{}", String::from_utf8_lossy(&passed.stderr));
    let report: Value = serde_json::from_slice(&passed.stdout).unwrap();
    assert_eq!((report["candidate"]["pass_rate"].as_f64(), &report["verdict"]), (Some(1.0), &Value::Null));
    assert_eq!(report["candidate"]["input_tokens"], 30 * CASES, "tokens per case from the trace");

    let regressed: Vec<usize> = (0..CASES).filter(|&i| scores[i] >= 4).collect();
    assert!(!regressed.is_empty() && regressed.len() < CASES, "the sample has both kinds");
    let out = eval(&["--agent", &strict, "--baseline", &lenient]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a regression fails the gate");
    let (table, error) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    for &i in &regressed {
        let row = table.lines().find(|l| l.starts_with(&format!("review-{i} "))).unwrap();
        let expected = format!("score: expected {}, got {}", scores[i], scores[i] - 1);
        assert!(row.contains("pass") && row.contains("FAIL") && row.contains(&expected), "{row}");
    }
    assert!(
        error.contains(&format!("it fails {} that the baseline passes", regressed.len())),
        "the reason, on one line: {error}"
    );
    let tolerated = eval(&["--agent", &strict, "--baseline", &lenient, "--max-regression", "1"]).output().unwrap();
    assert!(tolerated.status.success(), "a regression within --max-regression passes");

    // The judge grades each output against the rubric, in journaled calls of its own.
    let judged = eval(&["--agent", &lenient, "--rubric", "The score is fair.", "--min-pass", "0", "--format", "json"])
        .output()
        .unwrap();
    assert!(judged.status.success(), "{}", String::from_utf8_lossy(&judged.stderr));
    let report: Value = serde_json::from_slice(&judged.stdout).unwrap();
    for (i, result) in report["candidate"]["results"].as_array().unwrap().iter().enumerate() {
        let grade = result["judge"]["score"].as_f64().unwrap();
        assert_eq!(grade, if scores[i] >= 3 { 1.0 } else { 0.2 }, "{result}");
        assert_eq!(result["passed"], scores[i] >= 3, "a grade under --judge-pass fails the case: {result}");
    }
}

#[test]
fn a_dataset_line_that_is_not_a_case_is_refused_by_its_number() {
    let dir = TempDir::new("eval-bad");
    let dataset = dir.join("cases.jsonl");
    std::fs::write(&dataset, "{\"input\": {\"review\": \"fine\"}}\n{\"input\": 1, \"expected\": {}}\n").unwrap();
    let error = fails(weir(&["eval", dataset.to_str().unwrap()]));
    assert!(error.contains("cases.jsonl: line 2: not a case: unknown field `expected`"), "{error}");
    std::fs::write(&dataset, "{\"input\": {}, \"expect\": {\"schema\": {\"type\": 12}}}\n").unwrap();
    let error = fails(weir(&["eval", dataset.to_str().unwrap()]));
    assert!(error.contains("line 1: `expect.schema` is not a JSON Schema"), "{error}");
}
