//! The arithmetic of unit vectors: similarity is their dot product.

/// The dot product, in eight independent sums so that the compiler vectorises it.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a_blocks, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b_blocks, b_rest) = b.split_at(a_blocks.len());
    for (x, y) in a_blocks.chunks_exact(8).zip(b_blocks.chunks_exact(8)) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + rest
}

/// `vector` scaled to unit length (a zero vector stays zero), so that dot products are cosines.
pub(crate) fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = dot(&vector, &vector).sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// The best `k` of `(score, item)` pairs, best first; ties keep the lower item first.
pub(crate) fn top_k<T: Ord + Copy>(mut scored: Vec<(f32, T)>, k: usize) -> Vec<(f32, T)> {
    let by_score = |a: &(f32, T), b: &(f32, T)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, by_score);
        scored.truncate(k);
    }
    scored.sort_by(by_score);
    scored.truncate(k);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_handles_lengths_that_are_not_multiples_of_eight() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..13).map(|i| (i * i) as f32).sum::<f32>());
    }

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let best = top_k(vec![(0.1, 1), (0.9, 2), (0.5, 3), (0.9, 0)], 3);
        assert_eq!(best, vec![(0.9, 0), (0.9, 2), (0.5, 3)]);
    }
}
