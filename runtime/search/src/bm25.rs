//! BM25: ranking chunks by the query's words, with no model.

use std::collections::HashMap;

/// How fast a word's weight saturates with repeats.
const K1: f32 = 1.2;
/// How much a long chunk's weight is discounted.
const B: f32 = 0.75;

/// English words too common to tell chunks apart.
const STOPWORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who", "will",
    "with",
];

/// The words of a text as BM25 counts them: lower-cased runs of letters and digits, stopwords
/// left out, English endings cut off so that `kettles` finds `kettle` and `returned` `return`.
pub(crate) fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .map(stem)
}

/// A word without its commonest English inflection: a light stemmer (no dictionary) that only
/// cuts endings long words carry, so that short words and identifiers stay whole.
fn stem(word: String) -> String {
    if word.len() < 5 || word.bytes().any(|b| b.is_ascii_digit()) {
        return word;
    }
    for (ending, replacement) in [("ies", "y"), ("ing", ""), ("ed", "")] {
        if let Some(root) = word.strip_suffix(ending).filter(|root| root.len() >= 3) {
            return format!("{root}{replacement}");
        }
    }
    // `-es` after a hissing sound (boxes, glasses), else `-s` (kettles), but not `-ss` (glass).
    if let Some(root) = word.strip_suffix("es").filter(|r| ["s", "x", "z", "ch", "sh"].iter().any(|e| r.ends_with(e))) {
        return root.to_string();
    }
    match word.strip_suffix('s') {
        Some(root) if !root.ends_with('s') => root.to_string(),
        _ => word,
    }
}

/// An inverted index of chunk texts, numbered from 0 in the order added.
#[derive(Debug, Default)]
pub(crate) struct Bm25Index {
    postings: HashMap<String, Vec<(u32, u32)>>,
    lengths: Vec<u32>,
    total_length: u64,
}

impl Bm25Index {
    /// Indexes the next chunk's text.
    pub(crate) fn add(&mut self, text: &str) {
        let chunk = self.lengths.len() as u32;
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut length = 0;
        for term in terms(text) {
            *counts.entry(term).or_default() += 1;
            length += 1;
        }
        for (term, count) in counts {
            self.postings.entry(term).or_default().push((chunk, count));
        }
        self.lengths.push(length);
        self.total_length += u64::from(length);
    }

    /// Every chunk holding a query word, with its score, for chunks `accept` lets through.
    pub(crate) fn scores(&self, query: &str, accept: impl Fn(u32) -> bool) -> Vec<(f32, u32)> {
        let n = self.lengths.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let average = self.total_length as f32 / n;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut query_terms: Vec<String> = terms(query).collect();
        query_terms.sort();
        query_terms.dedup();
        for term in query_terms {
            let Some(postings) = self.postings.get(&term) else { continue };
            let df = postings.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(chunk, tf) in postings {
                if !accept(chunk) {
                    continue;
                }
                let tf = tf as f32;
                let length = self.lengths[chunk as usize] as f32;
                let weight = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average));
                *scores.entry(chunk).or_default() += idf * weight;
            }
        }
        scores.into_iter().map(|(chunk, score)| (score, chunk)).collect()
    }
}

/// The best `k` of `texts` for `query` by BM25, as (score, index), best first; only texts that
/// share a word with the query. For small collections searched once, such as one key's
/// long-term memories.
///
/// ```
/// let ranked = weir_search::rank_texts("card declined abroad", &["paid at home", "declined in Spain, card abroad"], 5);
/// assert_eq!(ranked.iter().map(|(_, i)| *i).collect::<Vec<_>>(), vec![1]);
/// ```
pub fn rank_texts(query: &str, texts: &[&str], k: usize) -> Vec<(f32, usize)> {
    let mut index = Bm25Index::default();
    texts.iter().for_each(|text| index.add(text));
    crate::vector::top_k(index.scores(query, |_| true), k).into_iter().map(|(score, i)| (score, i as usize)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::top_k;

    #[test]
    fn rare_words_outweigh_common_ones() {
        let mut index = Bm25Index::default();
        index.add("the disk is full on the database host");
        index.add("the api returns 502 errors");
        index.add("the disk controller reports latency");
        let ranked = top_k(index.scores("database disk full", |_| true), 3);
        assert_eq!(ranked[0].1, 0);
        assert_eq!(ranked.len(), 2, "only chunks holding a query word");
        assert!(index.scores("the of", |_| true).is_empty(), "stopwords match nothing");
        assert!(index.scores("disk", |chunk| chunk != 0).iter().all(|(_, c)| *c == 2));
    }

    #[test]
    fn inflections_meet_their_root_and_identifiers_stay_whole() {
        let stems: Vec<String> = terms("Kettles returned policies passing glasses boxes glass x509 ssl").collect();
        assert_eq!(stems, ["kettle", "return", "policy", "pass", "glass", "box", "glass", "x509", "ssl"]);
        assert_eq!(terms("kettle return").collect::<Vec<_>>(), ["kettle", "return"]);
    }
}
