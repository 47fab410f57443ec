//! What `docs/configuration.md` promises the functions: their binaries, the variables each
//! reads, and the actions each may take.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use super::tools::repository;

/// The functions, by the role that names them in the module and the docs.
pub const ROLES: [&str; 5] = ["ingest", "process", "dispatch", "collect", "approvals"];

/// The binary a role runs: its own, but the approvals function is ingest taking links only.
pub fn binary_of(role: &str) -> String {
    match role {
        "approvals" => "weir-ingest".to_string(),
        role => format!("weir-{role}"),
    }
}

/// The contract, read from the document.
#[derive(Debug)]
pub struct Contract {
    /// The whole document, for the runtime and handler it names.
    pub text: String,
    /// Binary names from the table of binaries, `weir-ingest`, ...
    pub binaries: BTreeSet<String>,
    /// Per role: every variable it reads, and the required ones.
    pub variables: BTreeMap<&'static str, BTreeSet<String>>,
    pub required: BTreeMap<&'static str, BTreeSet<String>>,
    /// Per role: every IAM action its role may be granted, conditional ones included.
    pub actions: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Contract {
    /// Reads `docs/configuration.md`.
    pub fn read() -> Contract {
        let text = fs::read_to_string(repository().join("docs/configuration.md")).expect("docs/configuration.md");
        let binaries = table(&text, "binary").iter().flat_map(|row| code_spans(&row[0])).collect();
        let (mut variables, mut required, mut actions) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for role in ROLES {
            let applies = |cell: &str| cell.split(',').map(str::trim).any(|who| who == "all" || who == role);
            let rows = table(&text, "variable");
            let mine = || rows.iter().filter(|row| applies(&row[1]));
            variables.insert(role, mine().flat_map(|row| code_spans(&row[0])).collect());
            required.insert(
                role,
                mine().filter(|row| row[2].starts_with("yes")).flat_map(|row| code_spans(&row[0])).collect(),
            );
            let permissions = table(&text, "function");
            let granted = permissions.iter().filter(|row| applies(&row[0])).flat_map(|row| code_spans(&row[1]));
            actions.insert(role, granted.collect());
        }
        Contract { text, binaries, variables, required, actions }
    }
}

/// The body rows of the first table whose first header cell is `first_header`, as cells.
fn table(text: &str, first_header: &str) -> Vec<Vec<String>> {
    let cells = |line: &str| line.trim().trim_matches('|').split('|').map(|cell| cell.trim().to_string()).collect();
    let mut lines = text.lines().skip_while(|line| {
        let row: Vec<String> = cells(line);
        !(line.starts_with('|') && row[0] == first_header)
    });
    assert!(lines.next().is_some(), "docs/configuration.md has no table headed `{first_header}`");
    lines.skip(1).take_while(|line| line.starts_with('|')).map(cells).collect()
}

/// The `code` spans of a table cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}
