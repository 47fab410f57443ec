//! Reciprocal rank fusion: one ranking from several, by rank alone, so that BM25 scores and
//! cosines need no common scale.

use std::collections::HashMap;

use crate::vector::top_k;

/// The constant of reciprocal rank fusion (Cormack et al.): it damps the weight of the very
/// first ranks.
const RRF_K: f32 = 60.0;

/// The items of `rankings` (each best first) by the sum of `1 / (60 + rank)`, best first, at
/// most `k`.
pub(crate) fn reciprocal_rank_fusion(rankings: &[Vec<u32>], k: usize) -> Vec<(f32, u32)> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for ranking in rankings {
        for (rank, item) in ranking.iter().enumerate() {
            *fused.entry(*item).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    top_k(fused.into_iter().map(|(item, score)| (score, item)).collect(), k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_both_rankings_agree_on_wins() {
        let fused = reciprocal_rank_fusion(&[vec![1, 2, 3], vec![2, 3, 4]], 2);
        assert_eq!(fused.iter().map(|(_, item)| *item).collect::<Vec<_>>(), vec![2, 3]);
    }
}
