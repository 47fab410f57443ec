//! Cutting documents into overlapping chunks.

use crate::chunk::Chunk;
use crate::source::{DocumentKind, SourceDocument};

/// How long chunks are and how much neighbours share, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkingOptions {
    /// The longest chunk.
    pub max_chars: usize,
    /// How much of the end of a chunk the next one repeats, so that a sentence cut at a chunk's
    /// end is whole in the next.
    pub overlap_chars: usize,
}

impl Default for ChunkingOptions {
    /// 1,000 characters (some 250 tokens: what all-MiniLM-L6-v2 reads whole), 200 of overlap.
    fn default() -> Self {
        ChunkingOptions { max_chars: 1000, overlap_chars: 200 }
    }
}

/// The chunks of `document`, in order. Markdown is first split at its headings, and each
/// chunk's metadata `section` is its heading path (`Restart > Check the disk`).
///
/// ```
/// use weir_search::{ChunkingOptions, DocumentKind, SourceDocument, chunk_document};
///
/// let doc = SourceDocument::new("r.md", DocumentKind::Markdown, "# Disk full\nDelete old WAL files.\n## Check\nRun df -h.");
/// let chunks = chunk_document(&doc, ChunkingOptions::default());
/// assert_eq!(chunks.len(), 2);
/// assert_eq!(chunks[1].metadata["section"], "Disk full > Check");
/// ```
pub fn chunk_document(document: &SourceDocument, options: ChunkingOptions) -> Vec<Chunk> {
    let sections = match document.kind {
        DocumentKind::Markdown => markdown_sections(&document.text),
        DocumentKind::Text => vec![(String::new(), document.text.clone())],
    };
    let mut chunks = Vec::new();
    for (section, text) in sections {
        for window in windows(&text, options) {
            let mut metadata = document.metadata.clone();
            if !section.is_empty() {
                metadata.insert("section".into(), section.clone());
            }
            let ordinal = chunks.len() as u32;
            chunks.push(Chunk { document: document.id.clone(), ordinal, text: window, metadata });
        }
    }
    chunks
}

/// The sections of a Markdown text, each with its heading path; headings inside fenced code
/// are text.
fn markdown_sections(text: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;
    let mut flush = |path: &[(usize, String)], current: &mut String| {
        if !current.trim().is_empty() {
            let heading = path.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(" > ");
            sections.push((heading, std::mem::take(current)));
        }
        current.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let level = line.bytes().take_while(|b| *b == b'#').count();
        let is_heading = !in_fence && (1..=6).contains(&level) && line[level..].starts_with(' ');
        if is_heading {
            flush(&path, &mut current);
            path.retain(|(l, _)| *l < level);
            path.push((level, line[level..].trim().to_string()));
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&path, &mut current);
    sections
}

/// Windows of at most `max_chars` characters overlapping by `overlap_chars`, cut at whitespace
/// where there is some in the window's last fifth.
fn windows(text: &str, options: ChunkingOptions) -> Vec<String> {
    let chars: Vec<char> = text.trim().chars().collect();
    let max = options.max_chars.max(1);
    let overlap = options.overlap_chars.min(max / 2);
    let mut windows = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + max).min(chars.len());
        if end < chars.len() {
            let earliest = end - max / 5;
            if let Some(space) = (earliest..end).rev().find(|&i| chars[i].is_whitespace()) {
                end = space;
            }
        }
        let window: String = chars[start..end].iter().collect();
        if !window.trim().is_empty() {
            windows.push(window.trim().to_string());
        }
        if end >= chars.len() {
            break;
        }
        // Step back by the overlap, then forward to a word's start, and always forward.
        let mut next = end.saturating_sub(overlap).max(start + 1);
        while next < end && !chars[next - 1].is_whitespace() {
            next += 1;
        }
        start = next;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_into_overlapping_windows_at_whitespace() {
        let text = (0..300).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
        let options = ChunkingOptions { max_chars: 200, overlap_chars: 50 };
        let windows = windows(&text, options);
        assert!(windows.len() > 5);
        for pair in windows.windows(2) {
            assert!(pair[0].chars().count() <= 200);
            let last_word = pair[0].split_whitespace().last().unwrap();
            assert!(pair[1].contains(last_word), "`{last_word}` repeats in the next window");
            assert!(!pair[1].starts_with(|c: char| c.is_ascii_digit()), "windows start at a word");
        }
        assert!(windows.last().unwrap().ends_with("word299"));
    }

    #[test]
    fn headings_in_code_fences_do_not_split() {
        let sections = markdown_sections("# A\ntext\n```\n# not a heading\n```\n## B\nmore\n");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].0, "A");
        assert_eq!(sections[1].0, "A > B");
    }
}
