//! `weir ingest` over files with every kind of bad record a producer sends: the good ones
//! are processed exactly once, each bad one is set aside in `<file>.rejects.jsonl` with its
//! line (or row) number and reason, the exit code is 3, and running the file again after
//! fixing records adds exactly those.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use common::{TempDir, fails, ok, outputs, weir};

/// The exit code of an ingest that set records aside.
const REFUSED: i32 = 3;

/// A line of the corpus: its bytes, and for a bad one a part of the reason it must be given.
struct Line {
    bytes: Vec<u8>,
    refused_for: Option<&'static str>,
}

fn good(id: &str) -> Line {
    Line { bytes: format!(r#"{{"id": "{id}", "review": "Review of {id}."}}"#).into_bytes(), refused_for: None }
}

fn bad(bytes: impl Into<Vec<u8>>, reason: &'static str) -> Line {
    Line { bytes: bytes.into(), refused_for: Some(reason) }
}

/// The corpus, one entry a line, line 1 first. A byte-order mark opens it and its lines end
/// in CRLF; both are tolerated.
fn corpus() -> Vec<Line> {
    let bomb = format!(r#"{{"id": "bomb", "review": {}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!(r#"{{"id": "huge", "review": "{}"}}"#, "a".repeat(20 << 20));
    vec![
        Line { bytes: [b"\xEF\xBB\xBF".as_slice(), &good("first").bytes].concat(), refused_for: None },
        good("second"),
        bad(r#"{"id": "truncated", "review": "cut of"#, "not JSON: EOF while parsing a string at column"),
        bad(b"{\"id\": \"latin1\", \"review\": \"caf\xE9\"}".to_vec(), "not UTF-8: byte 32 is not valid UTF-8"),
        bad(r#"["id", "review"]"#, "an array, not a JSON object"),
        bad(r#""just a string""#, "a string, not a JSON object"),
        good("third"),
        bad(r#"{"review": "no id"}"#, "no key at `/id`"),
        bad(r#"{"id": null, "review": "null id"}"#, "the key at `/id` is null"),
        bad(r#"{"id": {"sku": 1}, "review": "object id"}"#, "the key at `/id` is an object"),
        bad(r#"{"id": ["a"], "review": "array id"}"#, "the key at `/id` is an array"),
        bad(r#"{"id": true, "review": "boolean id"}"#, "the key at `/id` is a boolean"),
        bad(r#"{"id": "", "review": "empty id"}"#, "the key at `/id` is an empty string"),
        bad(r#"{"id": 123456789012345678901234567890, "review": "x"}"#, "not a string or an integer of 64 bits"),
        bad(bomb, "not JSON: arrays or objects nested more than 128 deep"),
        bad(huge, "a line of 20971548 bytes; a record may have at most 1048576"),
        bad(r#"{"id": "overflow", "review": "x", "n": 1e400}"#, "not JSON: number out of range"),
        bad(b"{\"id\": \"nul\", \"review\": \"a\0b\"}".to_vec(), "not JSON: control character"),
        bad(b"\0\0\0\0".to_vec(), "not JSON: expected value at column 1"),
        bad(r#"{"id": "dup", "review": "one", "review": "two"}"#, "field `review` appears twice in an object"),
        Line { bytes: Vec::new(), refused_for: None },
        Line {
            bytes: br#"{"id": 42, "review": "An integer key; \u0000 escaped is fine."}"#.to_vec(),
            refused_for: None,
        },
        good("last"),
    ]
}

/// Writes `lines` ending in CRLF, the last without a line end.
fn write_lines(path: &Path, lines: &[Line]) {
    let mut bytes = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        bytes.extend_from_slice(&line.bytes);
        if n + 1 < lines.len() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// Runs an ingest that must set records aside; returns its standard output.
fn ingest_refusing(mut command: Command) -> String {
    let out = command.output().expect("weir runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(REFUSED), "{command:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("refused, set aside in"), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// The rejects file's entries: number to reason, or to `fixed_in <group>`.
fn rejects(input: &Path, unit: &str) -> BTreeMap<u64, String> {
    let path = input.with_file_name(format!("{}.rejects.jsonl", input.file_name().unwrap().to_str().unwrap()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            let said = match (&entry["reason"], &entry["fixed_in"]) {
                (serde_json::Value::String(reason), _) => reason.clone(),
                (_, group) => format!("fixed_in {group}"),
            };
            (entry[unit].as_u64().unwrap(), said)
        })
        .collect()
}

/// Events the last `weir run` processed, from its report.
fn run_events(store: &str) -> u64 {
    let run = ok(weir(&["run", "--store", store]));
    run.split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{run}"))
}

/// The keys of the committed outputs, each with how many outputs it has.
fn output_keys(store: &str) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for output in outputs(store) {
        *keys.entry(output["key"].as_str().unwrap().to_string()).or_default() += 1;
    }
    keys
}

fn ingest(file: &Path, store: &str) -> Command {
    weir(&["ingest", file.to_str().unwrap(), "--key-field", "/id", "--partitions", "4", "--store", store])
}

#[test]
fn every_kind_of_bad_line_is_set_aside_with_its_number_and_every_good_line_processed_once() {
    let dir = TempDir::new("bad-lines");
    let store = dir.store("store");
    let file = dir.join("events.jsonl");
    let lines = corpus();
    write_lines(&file, &lines);

    let summary = ingest_refusing(ingest(&file, &store));
    let bad: BTreeMap<u64, &str> =
        lines.iter().enumerate().filter_map(|(n, l)| Some((n as u64 + 1, l.refused_for?))).collect();
    let set_aside = rejects(&file, "line");
    assert_eq!(set_aside.keys().collect::<Vec<_>>(), bad.keys().collect::<Vec<_>>(), "{summary}");
    for (number, reason) in &bad {
        assert!(set_aside[number].contains(reason), "line {number}: `{}` lacks `{reason}`", set_aside[number]);
        assert!(summary.contains(&format!("  line {number}: {}", set_aside[number])), "line {number}: {summary}");
    }
    assert!(summary.starts_with("ingested 5 records from "), "{summary}");
    assert!(summary.contains(&format!("refused {} lines, each listed with its reason in ", bad.len())), "{summary}");

    assert_eq!(run_events(&store), 5);
    let expected: BTreeMap<String, usize> =
        ["first", "second", "third", "42", "last"].iter().map(|k| (k.to_string(), 1)).collect();
    assert_eq!(output_keys(&store), expected, "each good line once, the first despite its byte-order mark");

    // `--strict` stops at the first and stores nothing.
    let strict_store = dir.store("strict");
    let error = fails(ingest(&file, &strict_store).arg("--strict"));
    assert!(error.starts_with(&format!("error: {}, line 3: not JSON: EOF while parsing", file.display())), "{error}");
    let error = fails(weir(&["run", "--store", &strict_store]));
    assert!(error.starts_with("error: no event log in file://"), "nothing was stored: {error}");
}

#[test]
fn fixing_refused_lines_adds_exactly_them_and_running_again_adds_nothing() {
    let dir = TempDir::new("fixed-lines");
    let store = dir.store("store");
    let file = dir.join("events.jsonl");
    // Enough good lines for several batches, so that a fixed line would shift them; bad
    // lines 11, 601, 701 and 1102.
    let mut lines: Vec<Line> = (0..1204)
        .map(|n| match n {
            10 | 600 | 1101 => bad(r#"{"id": "broken", "review": "#, "not JSON"),
            700 => bad(r#"{"review": "no id"}"#, "no key"),
            _ => good(&format!("p{n}")),
        })
        .collect();
    write_lines(&file, &lines);
    ingest_refusing(ingest(&file, &store));
    assert_eq!(run_events(&store), 1200);

    // The same file again adds nothing, and the rejects file is as it was.
    let before = rejects(&file, "line");
    ingest_refusing(ingest(&file, &store));
    assert_eq!(run_events(&store), 0);
    assert_eq!(rejects(&file, "line"), before);

    // Fix two of the four: exactly those two are added.
    lines[10] = good("fixed-a");
    lines[700] = good("fixed-b");
    write_lines(&file, &lines);
    let summary = ingest_refusing(ingest(&file, &store));
    assert!(
        summary.starts_with("ingested 1202 records from ") && summary.contains("(2 of them refused before"),
        "{summary}"
    );
    assert_eq!(run_events(&store), 2);
    let entries = rejects(&file, "line");
    assert_eq!(entries[&11], "fixed_in 1");
    assert_eq!(entries[&701], "fixed_in 1");
    assert!(entries[&601].starts_with("not JSON") && entries[&1102].starts_with("not JSON"), "{entries:?}");
    ingest_refusing(ingest(&file, &store));
    assert_eq!(run_events(&store), 0, "unchanged: nothing added");

    // Fix the rest: exactly those, then nothing.
    lines[600] = good("fixed-c");
    lines[1101] = good("fixed-d");
    write_lines(&file, &lines);
    let summary = ok(ingest(&file, &store));
    assert!(summary.contains("(2 of them refused before and fixed since)"), "{summary}");
    assert_eq!(run_events(&store), 2);
    ok(ingest(&file, &store));
    assert_eq!(run_events(&store), 0, "unchanged: nothing added");
    assert!(rejects(&file, "line").values().all(|said| said.starts_with("fixed_in")));

    let keys = output_keys(&store);
    assert_eq!(keys.len(), 1204, "every good line and every fixed one");
    assert!(keys.values().all(|&n| n == 1), "each once");
}

#[test]
fn refused_csv_records_are_reported_by_line() {
    let dir = TempDir::new("bad-csv");
    let store = dir.store("store");
    let file = dir.join("events.csv");
    let mut csv = b"\xEF\xBB\xBFid,review\r\n".to_vec();
    csv.extend_from_slice(b"a,Fine.\r\n"); // line 2
    csv.extend_from_slice(b"b,Too,many,fields\r\n"); // line 3
    csv.extend_from_slice(b"c,\"Two\r\nlines\"\r\n"); // lines 4-5
    csv.extend_from_slice(b",No id\r\n"); // line 6
    csv.extend_from_slice(b"d,caf\xE9\r\n"); // line 7
    csv.extend_from_slice(b"e\r\n"); // line 8
    csv.extend_from_slice(b"f,Last.\r\n"); // line 9
    std::fs::write(&file, csv).unwrap();

    let summary = ingest_refusing(ingest(&file, &store));
    let set_aside = rejects(&file, "line");
    assert_eq!(set_aside.keys().copied().collect::<Vec<_>>(), [3, 6, 7, 8], "{summary}");
    assert_eq!(set_aside[&3], "4 fields where the header has 2");
    assert!(set_aside[&6].starts_with("the key at `/id` is an empty string"), "{set_aside:?}");
    assert_eq!(set_aside[&7], "column `review` is not UTF-8: byte 4 is not valid UTF-8");
    assert_eq!(set_aside[&8], "1 field where the header has 2");
    assert!(summary.contains("  line 7: column `review` is not UTF-8"), "{summary}");
    assert_eq!(run_events(&store), 3);
    assert_eq!(
        output_keys(&store).into_keys().collect::<Vec<_>>(),
        ["a", "c", "f"],
        "the header's id, not \\u{{feff}}id"
    );
}

#[test]
fn refused_parquet_rows_are_reported_by_row() {
    let dir = TempDir::new("bad-parquet");
    let store = dir.store("store");
    let file = dir.join("events.parquet");
    let long = "a".repeat(2 << 20);
    let ids = [Some("a"), None, Some("c"), Some(""), Some("e")];
    let reviews = [Some("Fine."), Some("No id."), Some(long.as_str()), Some("Empty id."), Some("Last.")];
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(ids.into_iter().collect::<StringArray>())),
        ("review", Arc::new(reviews.into_iter().collect::<StringArray>())),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&file).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let summary = ingest_refusing(ingest(&file, &store));
    let set_aside = rejects(&file, "row");
    assert_eq!(set_aside.keys().copied().collect::<Vec<_>>(), [2, 3, 4], "{summary}");
    assert!(
        set_aside[&2].starts_with("the key at `/id` is null") || set_aside[&2] == "no key at `/id`",
        "{set_aside:?}"
    );
    assert!(
        set_aside[&3].starts_with("a record of 2097") && set_aside[&3].ends_with("at most 1048576"),
        "{set_aside:?}"
    );
    assert!(
        summary.contains("refused 3 rows") && summary.contains("  row 4: the key at `/id` is an empty string"),
        "{summary}"
    );
    assert_eq!(run_events(&store), 2);
    assert_eq!(output_keys(&store).into_keys().collect::<Vec<_>>(), ["a", "e"]);
}
