//! The README's first command: `weir demo` runs on a fresh directory, and a second run changes
//! nothing (idempotent append, exactly-once commits).

use std::process::Command;

fn demo(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).arg("demo").current_dir(dir).output().expect("weir runs");
    assert!(out.status.success(), "weir demo failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn demo_runs_then_reruns_without_duplicates() {
    let dir = std::env::temp_dir().join(format!("weir-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = demo(&dir);
    assert!(first.contains("this run: 18 events processed"), "{first}");
    assert!(first.contains("committed: 17 scored reviews, 1 dead letters"), "{first}");
    assert!(first.contains("payload is not JSON"), "{first}");
    let second = demo(&dir);
    assert!(second.contains("this run: 0 events processed"), "{second}");
    assert!(second.contains("committed: 17 scored reviews, 1 dead letters"), "{second}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_store_url_is_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir")).args(["demo", "--store", "ftp://x"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: invalid input: store url `ftp://x`: unknown scheme `ftp`; use memory://, file:///dir or s3://bucket/prefix"
    );
}

#[test]
fn demo_runs_on_s3_from_a_store_url_and_aws_variables() {
    let moto = weir_tests::moto::shared();
    let url = moto.store_url("demo");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["demo", "--store", &url])
            .envs(moto.env())
            .output()
            .expect("weir runs");
        assert!(out.status.success(), "weir demo on s3 failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run().contains("committed: 17 scored reviews, 1 dead letters"));
    assert!(run().contains("this run: 0 events processed"));
}
