//! An inverted-file (IVF) index: vectors grouped by their nearest k-means centroid, so that a
//! query scans only the groups nearest to it.

use crate::vector::{dot, normalized, top_k};

/// Segments smaller than this are scanned whole: an index would save less than it costs.
pub(crate) const MIN_INDEXED: usize = 2048;

/// The centroids and, for each, the vectors nearest to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IvfIndex {
    pub(crate) dimensions: usize,
    /// `lists × dimensions` unit vectors.
    pub(crate) centroids: Vec<f32>,
    /// For each centroid, the row numbers of its vectors.
    pub(crate) lists: Vec<Vec<u32>>,
}

impl IvfIndex {
    /// An index of `rows` (`n × dimensions` unit vectors) with √n lists, from k-means over a
    /// sample, seeded so that the same vectors give the same index.
    pub(crate) fn build(rows: &[f32], dimensions: usize, seed: u64) -> Self {
        let n = rows.len() / dimensions;
        let lists = ((n as f64).sqrt().round() as usize).max(1);
        let mut rng = fastrand::Rng::with_seed(seed);
        // Some 40 vectors per centroid train it as well as all of them, in a fraction of the time.
        let mut sample: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut sample);
        sample.truncate((lists * 40).min(n));
        let mut centroids: Vec<f32> =
            sample[..lists].iter().flat_map(|&i| rows[i * dimensions..(i + 1) * dimensions].to_vec()).collect();
        for _ in 0..10 {
            let mut sums = vec![0.0f32; lists * dimensions];
            let mut counts = vec![0usize; lists];
            for &i in &sample {
                let row = &rows[i * dimensions..(i + 1) * dimensions];
                let nearest = nearest_centroid(&centroids, dimensions, row);
                counts[nearest] += 1;
                sums[nearest * dimensions..(nearest + 1) * dimensions].iter_mut().zip(row).for_each(|(s, x)| *s += x);
            }
            for (c, count) in counts.iter().enumerate() {
                // An empty list keeps its centroid: it may win vectors in the next round.
                if *count > 0 {
                    let mean = normalized(sums[c * dimensions..(c + 1) * dimensions].to_vec());
                    centroids[c * dimensions..(c + 1) * dimensions].copy_from_slice(&mean);
                }
            }
        }
        let assignments = assign(rows, &centroids, dimensions);
        let mut members = vec![Vec::new(); lists];
        for (row, list) in assignments.into_iter().enumerate() {
            members[list].push(row as u32);
        }
        IvfIndex { dimensions, centroids, lists: members }
    }

    /// The number of lists.
    pub(crate) fn list_count(&self) -> usize {
        self.lists.len()
    }

    /// The rows in the `nprobe` lists nearest to `query`.
    pub(crate) fn candidates(&self, query: &[f32], nprobe: usize) -> impl Iterator<Item = u32> + '_ {
        let scored: Vec<(f32, usize)> =
            self.centroids.chunks_exact(self.dimensions).map(|c| dot(c, query)).zip(0..).collect();
        top_k(scored, nprobe).into_iter().flat_map(move |(_, list)| self.lists[list].iter().copied())
    }
}

fn nearest_centroid(centroids: &[f32], dimensions: usize, row: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for (c, centroid) in centroids.chunks_exact(dimensions).enumerate() {
        let score = dot(centroid, row);
        if score > best.0 {
            best = (score, c);
        }
    }
    best.1
}

/// Each row's nearest centroid, on two threads: assigning 100,000 rows is most of a build.
fn assign(rows: &[f32], centroids: &[f32], dimensions: usize) -> Vec<usize> {
    let n = rows.len() / dimensions;
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).clamp(1, 8);
    let per_thread = n.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(per_thread * dimensions)
            .map(|part| {
                scope.spawn(move || {
                    part.chunks_exact(dimensions)
                        .map(|row| nearest_centroid(centroids, dimensions, row))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("assignment thread")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_in_exactly_one_list_and_its_own_list_is_probed_first() {
        let dimensions = 8;
        let mut rng = fastrand::Rng::with_seed(7);
        let rows: Vec<f32> =
            (0..3000).flat_map(|_| normalized((0..dimensions).map(|_| rng.f32() - 0.5).collect())).collect();
        let index = IvfIndex::build(&rows, dimensions, 1);
        assert_eq!(index.list_count(), 55);
        let mut seen: Vec<u32> = index.lists.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..3000).collect::<Vec<u32>>());
        let row = &rows[5 * dimensions..6 * dimensions];
        assert!(index.candidates(row, 1).any(|r| r == 5));
    }
}
