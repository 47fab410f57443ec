//! The function binaries `weir dev` and `weir demo` run: found next to `weir`, or given.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{CliError, Result};

/// The ingest function's binary.
const INGEST_BINARY: &str = "weir-ingest";
/// The dispatch function's binary.
const DISPATCH_BINARY: &str = "weir-dispatch";
/// The packages whose binaries are the functions.
const FUNCTION_PACKAGES: [&str; 2] = ["weir-functions", "weir-review-analysis"];
/// The package of `weir` itself. Built with the functions, it makes cargo resolve the
/// dependencies' features as it did for `weir`, so that the dependencies `weir` was built
/// with are used again as they are: built alone, the functions ask for fewer features (no
/// Parquet JSON, no tokio signals), and cargo would compile object_store, parquet, rmcp and
/// everything above tokio a second time.
const CLI_PACKAGE: &str = "weir-cli";

/// Where the function binaries are, when not next to `weir`.
#[derive(Debug, Clone, clap::Args)]
pub struct BinaryArgs {
    /// The ingest function's binary [default: weir-ingest next to weir].
    #[arg(long)]
    ingest_bin: Option<PathBuf>,
    /// The process function's binary [default: the agent's, next to weir].
    #[arg(long)]
    process_bin: Option<PathBuf>,
    /// The dispatch function's binary [default: weir-dispatch next to weir].
    #[arg(long)]
    dispatch_bin: Option<PathBuf>,
}

/// The three functions' executables.
#[derive(Debug, Clone)]
pub struct FunctionBinaries {
    /// `weir-ingest`.
    pub ingest: PathBuf,
    /// The agent's process function.
    pub process: PathBuf,
    /// `weir-dispatch`.
    pub dispatch: PathBuf,
}

impl BinaryArgs {
    /// The binaries, each of which must exist; `process` is the agent's process binary name.
    pub fn locate(&self, process: &str) -> Result<FunctionBinaries> {
        let binaries = self.paths(process)?;
        for path in [&binaries.ingest, &binaries.process, &binaries.dispatch] {
            if !path.is_file() {
                return Err(CliError::Binary(format!(
                    "function binary {} not found; build it with `cargo build --release -p {CLI_PACKAGE} -p {}` \
                     or name it with --ingest-bin, --process-bin or --dispatch-bin",
                    path.display(),
                    FUNCTION_PACKAGES.join(" -p ")
                )));
            }
        }
        Ok(binaries)
    }

    /// The binaries, building those missing next to `weir` once with cargo, in the target
    /// directory and profile `weir` itself was built in.
    pub fn locate_or_build(&self, process: &str) -> Result<FunctionBinaries> {
        let binaries = self.paths(process)?;
        let defaults = [
            (&self.ingest_bin, &binaries.ingest, INGEST_BINARY),
            (&self.process_bin, &binaries.process, process),
            (&self.dispatch_bin, &binaries.dispatch, DISPATCH_BINARY),
        ];
        let missing: Vec<&str> =
            defaults.iter().filter(|(given, path, _)| given.is_none() && !path.is_file()).map(|d| d.2).collect();
        if !missing.is_empty() {
            build_functions(&exe_dir()?, &missing)?;
        }
        self.locate(process)
    }

    fn paths(&self, process: &str) -> Result<FunctionBinaries> {
        let dir = exe_dir()?;
        let pick = |given: &Option<PathBuf>, name: &str| given.clone().unwrap_or_else(|| dir.join(name));
        Ok(FunctionBinaries {
            ingest: pick(&self.ingest_bin, INGEST_BINARY),
            process: pick(&self.process_bin, process),
            dispatch: pick(&self.dispatch_bin, DISPATCH_BINARY),
        })
    }
}

/// The directory of the running `weir`.
fn exe_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| CliError::file("the weir executable", e))?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Runs `cargo build -p weir-cli -p weir-functions -p weir-review-analysis --bin …` for the
/// profile whose output directory is `dir` (`target/release` or `target/debug`).
fn build_functions(dir: &Path, binaries: &[&str]) -> Result<()> {
    let (profile, target_dir) = match (dir.file_name().and_then(|n| n.to_str()), dir.parent()) {
        (Some(profile @ ("release" | "debug")), Some(target_dir)) => (profile, target_dir),
        _ => {
            return Err(CliError::Binary(format!(
                "the function binaries are not next to weir in {}, which is not a cargo target directory; \
                 name them with --ingest-bin, --process-bin and --dispatch-bin",
                dir.display()
            )));
        }
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.arg("build").arg("--manifest-path").arg(&workspace).arg("--target-dir").arg(target_dir);
    if profile == "release" {
        command.arg("--release");
    }
    for package in std::iter::once(CLI_PACKAGE).chain(FUNCTION_PACKAGES) {
        command.args(["-p", package]);
    }
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    eprintln!(
        "weir: building the function binaries {} once, with the dependencies weir was built with, so this \
         compiles only their own code and links them: cargo build{} -p {CLI_PACKAGE} -p {}",
        binaries.join(", "),
        if profile == "release" { " --release" } else { "" },
        FUNCTION_PACKAGES.join(" -p ")
    );
    let status =
        command.status().map_err(|e| CliError::Binary(format!("cannot run {}: {e}", cargo.to_string_lossy())))?;
    if !status.success() {
        return Err(CliError::Binary(format!(
            "building the function binaries failed ({status}); see cargo's output above"
        )));
    }
    Ok(())
}
