//! A segment: an immutable object holding chunks, their vectors and an IVF index over them.
//!
//! Layout, little-endian: the magic `WEIRKB01`; the header's length (u32) and the header
//! (JSON: chunks, dimensions, list count); `chunks × dimensions` vectors (f32); `lists ×
//! dimensions` centroids (f32); each list's length (u32) and rows (u32); an xxh3-64 checksum
//! of everything before it (u64).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::chunk::Chunk;
use crate::ivf::{IvfIndex, MIN_INDEXED};

const MAGIC: &[u8; 8] = b"WEIRKB01";

/// The chunks of one add (or one compaction), with their vectors if the knowledge base has any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    pub(crate) chunks: Vec<Chunk>,
    /// 0 when the chunks have no vectors.
    pub(crate) dimensions: usize,
    /// `chunks × dimensions` unit vectors, row by row.
    pub(crate) vectors: Vec<f32>,
    /// Present for segments of [`MIN_INDEXED`] vectors or more.
    pub(crate) index: Option<IvfIndex>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    chunks: Vec<Chunk>,
    dimensions: usize,
    lists: usize,
}

impl Segment {
    /// A segment of `chunks` and their `vectors` (empty, or one per chunk), indexed if large.
    pub(crate) fn new(chunks: Vec<Chunk>, vectors: Vec<Vec<f32>>, seed: u64) -> Self {
        let dimensions = vectors.first().map_or(0, Vec::len);
        let vectors: Vec<f32> = vectors.into_iter().flatten().collect();
        let index =
            (dimensions > 0 && chunks.len() >= MIN_INDEXED).then(|| IvfIndex::build(&vectors, dimensions, seed));
        Segment { chunks, dimensions, vectors, index }
    }

    /// The vector of chunk `row`.
    pub(crate) fn vector(&self, row: usize) -> &[f32] {
        &self.vectors[row * self.dimensions..(row + 1) * self.dimensions]
    }

    /// The segment's bytes.
    pub(crate) fn encode(&self) -> Bytes {
        let header = Header {
            chunks: self.chunks.clone(),
            dimensions: self.dimensions,
            lists: self.index.as_ref().map_or(0, IvfIndex::list_count),
        };
        let header = serde_json::to_vec(&header).expect("a segment header serializes");
        let mut out = Vec::with_capacity(32 + header.len() + self.vectors.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend(self.vectors.iter().flat_map(|x| x.to_le_bytes()));
        if let Some(index) = &self.index {
            out.extend(index.centroids.iter().flat_map(|x| x.to_le_bytes()));
            for list in &index.lists {
                out.extend_from_slice(&(list.len() as u32).to_le_bytes());
                out.extend(list.iter().flat_map(|row| row.to_le_bytes()));
            }
        }
        let checksum = xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        Bytes::from(out)
    }

    /// Decodes a segment; the error says which check failed.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MAGIC.len() + 12 || &bytes[..8] != MAGIC {
            return Err("not a weir knowledge-base segment (bad magic)".into());
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 8);
        if xxh3_64(body).to_le_bytes() != checksum {
            return Err("checksum mismatch (truncated or overwritten)".into());
        }
        let mut reader = Reader { bytes: body, at: 8 };
        let header_len = reader.u32()? as usize;
        let header: Header =
            serde_json::from_slice(reader.take(header_len)?).map_err(|e| format!("header does not decode: {e}"))?;
        let n = header.chunks.len();
        let vectors = reader.f32s(n * header.dimensions)?;
        let index = if header.lists > 0 {
            let centroids = reader.f32s(header.lists * header.dimensions)?;
            let mut lists = Vec::with_capacity(header.lists);
            for _ in 0..header.lists {
                let len = reader.u32()? as usize;
                let rows: Vec<u32> = (0..len).map(|_| reader.u32()).collect::<Result<_, _>>()?;
                if rows.iter().any(|&row| row as usize >= n) {
                    return Err("an index list names a row past the chunks".into());
                }
                lists.push(rows);
            }
            Some(IvfIndex { dimensions: header.dimensions, centroids, lists })
        } else {
            None
        };
        if reader.at != body.len() {
            return Err(format!("{} bytes left over after the index", body.len() - reader.at));
        }
        Ok(Segment { chunks: header.chunks, dimensions: header.dimensions, vectors, index })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(len).filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("ends at byte {} where {len} more were expected", self.bytes.len()))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn f32s(&mut self, count: usize) -> Result<Vec<f32>, String> {
        let bytes = self.take(count.checked_mul(4).ok_or("vector count overflows")?)?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("four bytes"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::normalized;

    fn chunk(i: usize) -> Chunk {
        Chunk {
            document: format!("doc{}", i / 3),
            ordinal: (i % 3) as u32,
            text: format!("text {i}"),
            metadata: Default::default(),
        }
    }

    #[test]
    fn a_segment_round_trips_with_and_without_an_index() {
        let mut rng = fastrand::Rng::with_seed(3);
        for n in [0, 5, MIN_INDEXED + 10] {
            let vectors: Vec<Vec<f32>> =
                (0..n).map(|_| normalized((0..16).map(|_| rng.f32() - 0.5).collect())).collect();
            let segment = Segment::new((0..n).map(chunk).collect(), vectors, 9);
            assert_eq!(segment.index.is_some(), n >= MIN_INDEXED);
            assert_eq!(Segment::decode(&segment.encode()).unwrap(), segment);
        }
        let text_only = Segment::new((0..4).map(chunk).collect(), Vec::new(), 0);
        assert_eq!(Segment::decode(&text_only.encode()).unwrap(), text_only);
    }

    #[test]
    fn any_damage_is_detected() {
        let segment = Segment::new((0..4).map(chunk).collect(), vec![vec![1.0, 0.0]; 4], 0);
        let bytes = segment.encode();
        assert!(Segment::decode(&bytes[..bytes.len() - 1]).unwrap_err().contains("checksum"));
        let mut flipped = bytes.to_vec();
        flipped[20] ^= 1;
        assert!(Segment::decode(&flipped).unwrap_err().contains("checksum"));
        assert!(Segment::decode(b"{\"json\": true}").unwrap_err().contains("magic"));
    }
}
