//! `weir replay` and `weir diff`: a shadow run of an unchanged agent reproduces production's
//! outputs without calling a model or a tool; a changed prompt shows exactly the events whose
//! score moved, in a report a browser renders with its drift plot; bad input is refused with
//! a reason, and production is never written.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::provider::{Mode, Provider};
use common::scoring::{STRICT, ScoringModel, Webhook, score};
use common::{TempDir, duckdb, fails, ok, shared_reviews, weir};
use serde_json::{Value, json};

/// Shared reviews used by the prompt-change test.
const REVIEWS: usize = 40;

/// The sample reviews shipped with weir that are JSON.
fn sample_reviews(dir: &TempDir) -> std::path::PathBuf {
    let good: Vec<&str> = include_str!("../../../functions/review-analysis/data/reviews.jsonl")
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .collect();
    let path = dir.join("reviews.jsonl");
    std::fs::write(&path, good.join("\n") + "\n").unwrap();
    path
}

/// Every file under the production namespace and the log, with its size and modification
/// time: what a replay must leave as it was.
fn production_files(root: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.join("agents"), root.join("log")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let meta = entry.metadata().unwrap();
            match meta.is_dir() {
                true => dirs.push(entry.path()),
                false => {
                    let name = entry.path().strip_prefix(root).unwrap().display().to_string();
                    files.insert(name, (meta.len(), meta.modified().unwrap()));
                }
            }
        }
    }
    files
}

fn parsed(out: String) -> Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_unchanged_agent_reproduces_its_outputs_without_calling_a_tool_or_a_model() {
    let webhook = Webhook::start().await;
    let dir = TempDir::new("replay-same");
    let (store, root) = (dir.store("store"), dir.join("store"));
    let reviews = sample_reviews(&dir);
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store]).env("WEIR_NOTIFY_URL", &webhook.url));
    let notified = webhook.calls();
    assert!(notified > 0, "the sample has shipping complaints");
    let before = production_files(&root);

    let replay = |shadow: &str| weir(&["replay", "--store", &store, "--shadow", shadow]);
    let out = ok(replay("same").env("WEIR_NOTIFY_URL", &webhook.url));
    assert_eq!(webhook.calls(), notified, "the replay notified nobody:\n{out}");
    let answered = out.lines().find(|l| l.starts_with("model calls:")).unwrap();
    assert!(!answered.contains("made"), "every call answered from the record: {answered}");
    assert!(answered.contains("from the record; tool calls:") && answered.ends_with("from the record"), "{answered}");

    let diff = parsed(ok(weir(&["diff", "--store", &store, "--shadow", "same", "--format", "json"])));
    let events = diff["events"].as_u64().unwrap();
    assert!(events > 0);
    assert_eq!((diff["unchanged"].as_u64(), diff["missing"].as_u64()), (Some(events), Some(0)), "{diff}");
    assert_eq!(diff["changed"], Value::Array(vec![]));
    let table = ok(weir(&["diff", "--store", &store, "--shadow", "same"]));
    assert!(table.starts_with(&format!("shadow same: {events} events compared, {events} unchanged, 0 changed")));

    // The shadow's outputs are Parquet beside production's: the same rows, read by DuckDB.
    let rows = |dir: &str| {
        duckdb(&format!(
            "select partition, key, event_segment, event_index, output_index, payload \
             from read_parquet('{dir}/agents/review-analysis/p*/out/*.parquet') order by all"
        ))
    };
    let production_rows = rows(root.to_str().unwrap());
    assert_eq!(production_rows.lines().count() as u64, events);
    assert_eq!(rows(root.join("shadows/same").to_str().unwrap()), production_rows);
    assert_eq!(production_files(&root), before, "production's namespace and log are untouched");
}

/// An agent file scoring reviews with the fake model; `strict` adds the words that make it
/// score the best reviews lower.
fn scorer(dir: &TempDir, name: &str, strict: bool, content: bool) -> String {
    let system = match strict {
        true => format!("Score the review from 1 to 5. {STRICT}."),
        false => "Score the review from 1 to 5.".to_string(),
    };
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!(
            r#"name: scorer
kind: react
models: {{default: environment}}
trace: {{content: {content}}}
prompt:
  - {{role: system, content: "{system} Answer with JSON only."}}
  - {{role: user, content: "Review: {{review}}"}}
output_schema: {{type: object, required: [score]}}
"#
        ),
    )
    .unwrap();
    file.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_prompt_shows_exactly_the_events_whose_score_moved_and_the_report_plots_the_drift() {
    let model = ScoringModel::start().await;
    let dir = TempDir::new("replay-prompt");
    let (store, root) = (dir.store("store"), dir.join("store"));
    let reviews = shared_reviews(&dir, REVIEWS);
    let texts: Vec<String> = std::fs::read_to_string(&reviews)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["review"].as_str().unwrap().to_string())
        .collect();
    let (v1, v2) = (scorer(&dir, "v1.yaml", false, true), scorer(&dir, "v2.yaml", true, true));
    let with_model = |mut command: Command| {
        command.envs(model.env());
        command
    };
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(with_model(weir(&["run", "--store", &store, "--agent", &v1])));
    assert_eq!(model.requests(), REVIEWS);
    let before = production_files(&root);

    // The same file again: the record answers every call.
    ok(with_model(weir(&["replay", "--store", &store, "--agent", &v1, "--shadow", "again", "--models", "record"])));
    assert_eq!(model.requests(), REVIEWS, "no model call made");

    let out = ok(with_model(weir(&["replay", "--store", &store, "--agent", &v1, "--with", &v2, "--shadow", "strict"])));
    assert_eq!(model.requests(), 2 * REVIEWS, "the new prompt's calls are made:\n{out}");
    let diff = parsed(ok(weir(&["diff", "--store", &store, "--agent", &v1, "--shadow", "strict", "--format", "json"])));
    let moved = texts.iter().filter(|t| score(t, true) != score(t, false)).count();
    assert!(moved > 0 && moved < REVIEWS, "the sample has both kinds: {moved}");
    let changed = diff["changed"].as_array().unwrap();
    assert_eq!(changed.len(), moved, "{diff}");
    for change in changed {
        let field = &change["fields"][0];
        assert_eq!((field["path"].as_str(), change["fields"].as_array().unwrap().len()), (Some("score"), 1));
        let (was, now) = (field["before"].as_u64().unwrap(), field["after"].as_u64().unwrap());
        assert!(was >= 4 && now == was - 1, "{change}");
    }
    assert_eq!(diff["unchanged"].as_u64().unwrap() as usize, REVIEWS - moved);
    assert_eq!(diff["drift"]["score"]["moved"].as_u64().unwrap() as usize, moved);

    let report = dir.join("report.html");
    ok(weir(&["diff", "--store", &store, "--agent", &v1, "--shadow", "strict", "--html", report.to_str().unwrap()]));
    let shot = screenshot(&report, &dir.join("report.png"));
    let (before_bars, after_bars) = (pixels(&shot, [0x9c, 0xa3, 0xaf]), pixels(&shot, [0x25, 0x63, 0xeb]));
    assert!(
        before_bars > 500 && after_bars > 500,
        "the drift plot's bars are on screen: {before_bars} production, {after_bars} shadow pixels"
    );
    assert_eq!(production_files(&root), before, "production's namespace and log are untouched");
}

/// Headless Chromium's screenshot of `page` (`$WEIR_CHROMIUM`, or Debian's chromium, which
/// `.ci/run` installs), decoded: its pixels and the bytes of each.
fn screenshot(page: &Path, png: &Path) -> (Vec<u8>, usize) {
    let chromium = std::env::var("WEIR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let out = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,900"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("{chromium}: {e}: run `.ci/run`, which installs it"));
    assert!(png.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("a screenshot in {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    (pixels[..info.buffer_size()].to_vec(), channels)
}

/// How many pixels of `shot` are `colour`.
fn pixels(shot: &(Vec<u8>, usize), colour: [u8; 3]) -> usize {
    shot.0.chunks(shot.1).filter(|p| p[..3] == colour).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_reason_and_production_is_never_written() {
    let model = ScoringModel::start().await;
    let dir = TempDir::new("replay-refused");
    let (store, root) = (dir.store("store"), dir.join("store"));
    let reviews = shared_reviews(&dir, 5);
    let quiet = scorer(&dir, "quiet.yaml", false, false);
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store, "--agent", &quiet]).envs(model.env()));
    let before = production_files(&root);
    let replay = |args: &[&str]| {
        let mut command = weir(&[&["replay", "--store", &store, "--agent", &quiet][..], args].concat());
        command.envs(model.env());
        command
    };

    let empty = fails(replay(&["--shadow", "late", "--from", "999:0"]));
    assert!(empty.contains("nothing to replay"), "{empty}");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "name: broken\nkind: react\nmodels: [not, a, map]\n").unwrap();
    let unparsed = fails(replay(&["--shadow", "broken", "--with", broken.to_str().unwrap()]));
    assert!(unparsed.contains("broken.yaml"), "{unparsed}");
    let gone = fails(replay(&["--shadow", "recorded", "--models", "record"]));
    assert!(gone.contains("recorded the content of 0 of its 5 model calls"), "{gone}");
    let policy = fails(replay(&["--shadow", "policy", "--tool-policy", "notify=maybe"]));
    assert!(policy.contains("--tool-policy `notify=maybe`"), "{policy}");
    assert_eq!(model.requests(), 5, "no refused replay called the model");

    ok(replay(&["--shadow", "taken"]));
    let taken = fails(replay(&["--shadow", "taken"]));
    assert!(taken.contains("shadow `taken` exists"), "{taken}");
    ok(replay(&["--shadow", "taken", "--replace"]));
    let collected = ok(weir(&["gc", "--store", &store, "--shadow", "taken"]));
    assert!(collected.starts_with("gc: deleted"), "{collected}");
    let dropped = ok(weir(&["gc", "--store", &store, "--shadow", "taken", "--drop"]));
    assert!(dropped.starts_with("gc: deleted shadow taken:"), "{dropped}");
    ok(replay(&["--shadow", "taken"]));
    let missing = fails(weir(&["diff", "--store", &store, "--agent", &quiet, "--shadow", "nowhere"]));
    assert!(missing.contains("no shadow named `nowhere`"), "{missing}");
    let bad_name = fails(replay(&["--shadow", "../agents"]));
    assert!(bad_name.contains("shadow name `../agents`"), "{bad_name}");
    assert_eq!(production_files(&root), before, "production's namespace and log are untouched");

    // Collection past the output retention takes the commits, their traces and the state
    // they had: the record and the state as of the start are gone.
    ok(weir(&["gc", "--store", &store, "--agent", &quiet, "--output-retention-secs", "0"]).envs(model.env()));
    let collected = production_files(&root);
    let state_gone = fails(replay(&["--shadow", "collected"]));
    assert!(state_gone.contains("state as of 0:0 is no longer retained"), "{state_gone}");
    let record_gone = fails(replay(&["--shadow", "collected", "--state", "head", "--models", "record"]));
    assert!(record_gone.contains("record of 5 of the 5 events is gone"), "{record_gone}");
    let out = ok(replay(&["--shadow", "collected", "--state", "head", "--estimate"]));
    assert!(out.contains("5 of the events have no record"), "{out}");
    assert_eq!(production_files(&root), collected, "refused replays write nothing to production");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_fans_out_over_the_process_function_under_the_emulator() {
    use tokio::io::AsyncBufReadExt;

    let dir = TempDir::new("replay-function");
    let (store, root) = (dir.store("store"), dir.join("store"));
    // `weir dev` finds its functions next to itself; `weir demo` builds them if missing.
    ok(weir(&["demo", "--store", &dir.store("build-only")]));
    let reviews = sample_reviews(&dir);
    ok(weir(&["ingest", reviews.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store]));
    let before = production_files(&root);

    let mut dev = weir(&["dev", "--port", "0", "--url-port", "0", "--schedule-secs", "3600", "--store", &store]);
    dev.stdout(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(dev).kill_on_drop(true).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("weir dev says where it listens");
    let invoke_url = first.split("Invoke API at ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut replay = weir(&["replay", "--store", &store, "--shadow", "fanned", "--function", "process"]);
    replay.envs([
        ("AWS_ENDPOINT_URL_LAMBDA", invoke_url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "emulator"),
        ("AWS_SECRET_ACCESS_KEY", "emulator"),
    ]);
    let out = tokio::task::spawn_blocking(move || ok(replay)).await.unwrap();
    let replayed = out.lines().find(|l| l.starts_with("shadow fanned:")).unwrap();
    assert!(replayed.contains("events replayed with process"), "{out}");
    let answered = out.lines().find(|l| l.starts_with("model calls:")).unwrap();
    assert!(!answered.contains("made"), "the function answered every call from the record: {answered}");
    let diff = parsed(ok(weir(&["diff", "--store", &store, "--shadow", "fanned", "--format", "json"])));
    assert!(diff["events"].as_u64().unwrap() > 0);
    assert_eq!(
        (diff["unchanged"].clone(), diff["missing"].clone()),
        (diff["events"].clone(), Value::from(0)),
        "{diff}"
    );
    // The replay's invocations were metered in the shadow's namespace: `weir cost --shadow`
    // shows what they processed.
    let cost = ok(weir(&["cost", "--store", &store, "--shadow", "fanned"]));
    assert!(cost.lines().next().unwrap().contains(" (shadow fanned): "), "{cost}");
    let process = cost.lines().find(|l| l.starts_with("process ")).unwrap_or_else(|| panic!("no process row:\n{cost}"));
    let cells: Vec<&str> = process.split_whitespace().collect();
    let (invocations, events) = (cells[1].parse::<u64>().unwrap(), cells[2].parse::<u64>().unwrap());
    assert!(invocations > 0 && events == diff["events"].as_u64().unwrap(), "{cost}");

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    assert!(child.wait().await.unwrap().success(), "Ctrl-C is a clean stop");
    // The emulator's scheduled process invocations claim and release production's own
    // partitions and record their usage: only its committed files and the log must be as
    // they were.
    let committed = |files: BTreeMap<String, _>| {
        let production_own =
            |name: &str| name.contains("/manifest/") || name.contains("/usage/") || name.ends_with("head-hint.json");
        files.into_iter().filter(|(name, _)| !production_own(name)).collect::<Vec<_>>()
    };
    assert_eq!(committed(production_files(&root)), committed(before), "production's files and log are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_dead_letters_with_a_fixed_model_shows_each_one_answered() {
    let (broken, fixed) = (Provider::start(Mode::Nonsense).await, ScoringModel::start().await);
    let dir = TempDir::new("replay-dead");
    let store = dir.store("store");
    let all = std::fs::read_to_string(shared_reviews(&dir, 10)).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let v1 = scorer(&dir, "v1.yaml", false, true);
    let (healthy, failing) = (dir.join("healthy.jsonl"), dir.join("failing.jsonl"));
    std::fs::write(&healthy, lines[..6].join("\n") + "\n").unwrap();
    std::fs::write(&failing, lines[6..].join("\n") + "\n").unwrap();
    // Six reviews answered, then the model breaks and four are dead-lettered.
    ok(weir(&["ingest", healthy.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store, "--agent", &v1]).envs(fixed.env()));
    ok(weir(&["ingest", failing.to_str().unwrap(), "--key-field", "/id", "--store", &store]));
    ok(weir(&["run", "--store", &store, "--agent", &v1]).envs(broken.env()));

    // The record would answer with the broken replies again: the calls are made anew.
    let replay =
        ["replay", "--store", &store, "--agent", &v1, "--shadow", "fixed", "--dead-letters", "--models", "live"];
    let out = ok(weir(&replay).envs(fixed.env()));
    assert!(out.starts_with("replay of 4 events"), "{out}");
    let diff = parsed(ok(weir(&["diff", "--store", &store, "--shadow", "fixed", "--format", "json"])));
    assert_eq!((diff["events"].as_u64(), diff["missing"].as_u64()), (Some(4), Some(0)), "{diff}");
    for change in diff["changed"].as_array().unwrap() {
        assert!(change["dead_letter"][0].is_string() && change["dead_letter"][1].is_null(), "{change}");
        assert_eq!(change["outputs"], json!([0, 1]), "{change}");
    }
    assert_eq!(diff["changed"].as_array().unwrap().len(), 4);
}
