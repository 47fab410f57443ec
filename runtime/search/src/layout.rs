//! Every object name of a knowledge base (docs/search.md), made here and nowhere else.

/// The folder holding every knowledge base.
pub(crate) const KB_ROOT: &str = "kb/";

/// The folder of one knowledge base.
pub(crate) fn kb_prefix(name: &str) -> String {
    format!("{KB_ROOT}{name}/")
}

/// The folder of a knowledge base's manifests.
pub(crate) fn manifest_prefix(name: &str) -> String {
    format!("{KB_ROOT}{name}/manifest/")
}

/// Manifest `seq`: zero-padded so that names sort as numbers.
pub(crate) fn manifest(name: &str, seq: u64) -> String {
    format!("{}{seq:020}", manifest_prefix(name))
}

/// The sequence number of a manifest's file name, if it is one.
pub(crate) fn manifest_seq(file_name: &str) -> Option<u64> {
    (file_name.len() == 20).then(|| file_name.parse().ok()).flatten()
}

/// The folder of a knowledge base's segments.
pub(crate) fn segment_prefix(name: &str) -> String {
    format!("{KB_ROOT}{name}/segment/")
}

/// A segment written for manifest `seq`; the nonce keeps two racing writers' segments apart.
pub(crate) fn segment(name: &str, seq: u64, nonce: u64) -> String {
    format!("{}{seq:020}.{nonce:016x}", segment_prefix(name))
}

/// Whether `name` may name a knowledge base: it becomes a folder name.
pub(crate) fn valid_kb_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_sort_as_numbers_and_parse_back() {
        assert!(manifest("docs", 9) < manifest("docs", 10));
        assert_eq!(manifest("docs", 42), "kb/docs/manifest/00000000000000000042");
        assert_eq!(manifest_seq("00000000000000000042"), Some(42));
        assert_eq!(manifest_seq("42"), None);
    }

    #[test]
    fn names_are_folder_safe() {
        assert!(valid_kb_name("runbooks_v2-eu"));
        assert!(!valid_kb_name("") && !valid_kb_name("a/b") && !valid_kb_name("Runbooks") && !valid_kb_name(".."));
    }
}
