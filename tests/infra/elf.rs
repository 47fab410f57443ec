//! What a Lambda zip's `bootstrap` needs from the machine: its architecture and the glibc
//! symbol versions it imports.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::tools::{printed, python};

/// `e_machine` of x86-64 in an ELF header.
const EM_X86_64: u16 = 62;

/// The `bootstrap` of a Lambda zip.
#[derive(Debug)]
pub struct Bootstrap {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Whether the zip records it as executable (Lambda runs it as is).
    pub executable: bool,
}

/// Reads `bootstrap` out of `zip` with Python's zipfile.
pub fn bootstrap_of(zip: &Path, into: &Path) -> Bootstrap {
    const EXTRACT: &str = r#"
import sys, zipfile
entry = zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap")
open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read(entry))
print(oct(entry.external_attr >> 16))
"#;
    let output = python(EXTRACT, &[zip.to_str().expect("UTF-8 path"), into.to_str().expect("UTF-8 path")]);
    assert!(output.status.success(), "no bootstrap in {}: {}", zip.display(), printed(&output));
    let mode = u32::from_str_radix(String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("0o"), 8)
        .expect("an octal mode");
    Bootstrap { bytes: fs::read(into).expect("extracted bootstrap"), executable: mode & 0o111 != 0 }
}

/// Whether `bytes` are a 64-bit little-endian x86-64 ELF.
pub fn is_x86_64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && bytes[..4] == *b"\x7fELF"
        && bytes[4] == 2
        && bytes[5] == 1
        && u16::from_le_bytes([bytes[18], bytes[19]]) == EM_X86_64
}

/// The `GLIBC_x.y[.z]` versions the dynamic symbols of `binary` name, as (major, minor),
/// from `readelf --dyn-syms -W` or, failing that, `objdump -T`.
pub fn glibc_versions(binary: &Path) -> Vec<(u32, u32)> {
    let listing = ["readelf --dyn-syms -W", "objdump -T"]
        .iter()
        .find_map(|tool| {
            let mut words = tool.split(' ');
            let output = Command::new(words.next().unwrap()).args(words).arg(binary).output().ok()?;
            assert!(output.status.success(), "{tool} {}: {}", binary.display(), printed(&output));
            Some(String::from_utf8_lossy(&output.stdout).into_owned())
        })
        .expect("neither readelf nor objdump found: install binutils");
    parse_glibc_versions(&listing)
}

/// The `GLIBC_x.y[.z]` versions named in a symbol listing.
pub fn parse_glibc_versions(listing: &str) -> Vec<(u32, u32)> {
    let mut versions: Vec<(u32, u32)> = listing
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let mut numbers = version.split('.').filter_map(|n| n.parse().ok());
            Some((numbers.next()?, numbers.next()?))
        })
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}
