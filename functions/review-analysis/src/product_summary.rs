//! A product's rolling summary of review analyses: the product-suggestions agent's
//! short-term memory.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How many recent reasons the summary keeps.
pub const RECENT_REASONS: usize = 10;
/// A drop of the average score this large since the last suggestions asks for new ones.
pub const AVERAGE_DROP: f64 = 0.5;

/// One output of the review-analysis agent: the product-suggestions agent's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedReview {
    /// The product's id.
    pub id: String,
    /// 1 to 5.
    pub score: u8,
    /// The reasons for the score.
    pub reasons: Vec<String>,
    /// Whether the review complained about shipping.
    #[serde(default)]
    pub shipping_complaint: bool,
}

/// What the agent remembers of a product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductSummary {
    /// Analyses seen.
    pub count: u64,
    /// How many scored 1, 2, 3, 4 and 5.
    pub histogram: [u64; 5],
    /// How many complained about shipping.
    pub shipping_complaints: u64,
    /// The latest reasons, oldest first, at most [`RECENT_REASONS`].
    pub recent_reasons: Vec<String>,
    /// The average score when suggestions were last asked for.
    pub average_at_last_suggestions: Option<f64>,
}

impl ProductSummary {
    /// Adds one analysis; its score must be 1 to 5.
    pub fn record(&mut self, review: &AnalyzedReview) {
        self.count += 1;
        self.histogram[usize::from(review.score.clamp(1, 5) - 1)] += 1;
        self.shipping_complaints += u64::from(review.shipping_complaint);
        self.recent_reasons.extend(review.reasons.iter().cloned());
        let excess = self.recent_reasons.len().saturating_sub(RECENT_REASONS);
        self.recent_reasons.drain(..excess);
    }

    /// The average score, 0 before any analysis.
    pub fn average(&self) -> f64 {
        let total: u64 = self.histogram.iter().zip(1..).map(|(n, score)| n * score).sum();
        if self.count == 0 { 0.0 } else { total as f64 / self.count as f64 }
    }

    /// Whether it is time for suggestions: every `every` analyses, or when the average fell by
    /// [`AVERAGE_DROP`] since the last ones.
    pub fn suggestions_due(&self, every: u64) -> bool {
        let dropped = self.average_at_last_suggestions.is_some_and(|last| self.average() <= last - AVERAGE_DROP);
        (every > 0 && self.count.is_multiple_of(every)) || dropped
    }

    /// The summary as the model and the output show it.
    pub fn report(&self) -> Value {
        json!({
            "count": self.count,
            "average_score": (self.average() * 100.0).round() / 100.0,
            "score_histogram": {"1": self.histogram[0], "2": self.histogram[1], "3": self.histogram[2], "4": self.histogram[3], "5": self.histogram[4]},
            "shipping_complaints": self.shipping_complaints,
            "recent_reasons": self.recent_reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(score: u8, reason: &str) -> AnalyzedReview {
        AnalyzedReview { id: "kettle".into(), score, reasons: vec![reason.into()], shipping_complaint: score == 1 }
    }

    #[test]
    fn the_summary_counts_scores_and_keeps_the_latest_reasons() {
        let mut summary = ProductSummary::default();
        for i in 0..12 {
            summary.record(&analysis(if i % 2 == 0 { 5 } else { 2 }, &format!("reason {i}")));
        }
        assert_eq!(summary.count, 12);
        assert_eq!(summary.histogram, [0, 6, 0, 0, 6]);
        assert_eq!(summary.average(), 3.5);
        assert_eq!(summary.recent_reasons.len(), RECENT_REASONS);
        assert_eq!(summary.recent_reasons[0], "reason 2");
        assert_eq!(summary.report()["score_histogram"]["5"], 6);
    }

    #[test]
    fn suggestions_are_due_every_n_or_after_a_drop() {
        let mut summary = ProductSummary::default();
        summary.record(&analysis(5, "great"));
        summary.record(&analysis(5, "great"));
        assert!(!summary.suggestions_due(3));
        summary.record(&analysis(5, "great"));
        assert!(summary.suggestions_due(3));
        summary.average_at_last_suggestions = Some(summary.average());
        summary.record(&analysis(4, "fine"));
        assert!(!summary.suggestions_due(3), "4.75 is not a drop of 0.5");
        summary.record(&analysis(1, "broke"));
        assert!(summary.suggestions_due(3), "4.0 is");
        assert_eq!(summary.shipping_complaints, 1);
    }
}
