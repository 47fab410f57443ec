//! Immutable sorted runs: the on-object-storage files of the per-key state LSM.
//!
//! A run holds `(key, Option<value>)` pairs with strictly ascending keys (bytewise);
//! `None` is a tombstone. Readers fetch the index region with one ranged GET (its range
//! comes from the manifest's [`RunLayout`] or from the footer), then only the data
//! blocks they need. Compaction reads whole runs with [`read_all`].
//!
//! # Format (all integers little-endian)
//!
//! ```text
//! data region   block*                      block: entry+ [u32 checksum]
//!               entry: [u32 key_len][key][u8 tag: 0 = tombstone, 1 = value]
//!                      ([u32 value_len][value] only when tag = 1)
//! index region  [u32 block_count]
//!               ([u64 offset][u32 len][u32 first_key_len][first_key]) * block_count
//!               [u32 num_hashes][u32 num_bits][bits: ceil(num_bits / 8) bytes]
//!               [u64 key_count][u32 checksum]
//! footer        [u64 index_offset][u64 index_len][b"WRN1"][u32 format_version = 1]
//! ```
//!
//! A checksum is `xxh3_64` of the bytes before it (within its block or index region),
//! truncated to u32. A block's `len` includes its checksum; `index_len` includes the
//! index checksum. Blocks target `block_size` bytes but always hold at least one entry.
//! The bloom filter uses double hashing of `h = xxh3_64(key)`: bit `i` is
//! `(h + i * (h.rotate_left(32) | 1)) mod num_bits`, bit `b` stored as `bits[b / 8] >> (b % 8)`.

use std::ops::Range;

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64;

/// Length of the footer at the end of every run file.
pub const FOOTER_LEN: usize = 24;
const MAGIC: &[u8; 4] = b"WRN1";
const FORMAT_VERSION: u32 = 1;
const CHECKSUM_LEN: usize = 4;
const TAG_TOMBSTONE: u8 = 0;
const TAG_VALUE: u8 = 1;
const MIN_BLOOM_BITS: u64 = 64;
/// Largest multiple of 8 that fits the u32 `num_bits` field.
const MAX_BLOOM_BITS: u64 = u32::MAX as u64 & !7;

/// Errors from building or decoding a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A pushed key was not strictly greater than the previous one.
    #[error("key is not strictly greater than the previous key")]
    KeyOrder,
    /// A single entry does not fit the format's u32 lengths.
    #[error("{what} is too large for the run format")]
    TooLarge {
        /// What was too large.
        what: &'static str,
    },
    /// The bytes ended before a complete structure was read.
    #[error("truncated {what}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
    },
    /// Stored and computed checksums differ.
    #[error("checksum mismatch in {what}")]
    Checksum {
        /// The structure whose checksum failed.
        what: &'static str,
    },
    /// Checksums passed but the contents are inconsistent (e.g. a buggy writer).
    #[error("malformed {what}")]
    Corrupt {
        /// What was inconsistent.
        what: &'static str,
    },
    /// The footer does not end with `WRN1`.
    #[error("bad magic: not a weir run file")]
    BadMagic,
    /// The footer names a format version this code cannot read.
    #[error("unsupported run format version {0}")]
    UnsupportedVersion(u32),
}

/// Builds a run from entries pushed in strictly ascending key order.
#[derive(Debug)]
pub struct RunBuilder {
    block_size: usize,
    bloom_bits_per_key: u32,
    /// Sealed blocks followed by the open block, which starts at `open_block_start`.
    data: Vec<u8>,
    open_block_start: usize,
    open_block_first_key: Option<Vec<u8>>,
    blocks: Vec<BlockMeta>,
    /// Kept per key because the bloom filter can only be sized once the key count is known.
    key_hashes: Vec<u64>,
    last_key: Vec<u8>,
}

#[derive(Debug, Clone)]
struct BlockMeta {
    offset: u64,
    len: u32,
    first_key: Vec<u8>,
}

impl BlockMeta {
    fn block_ref(&self, index: usize) -> BlockRef {
        let (offset, len) = (self.offset, self.len);
        BlockRef { index, offset, len }
    }
}

impl RunBuilder {
    /// Creates a builder targeting `block_size`-byte data blocks and a bloom filter
    /// with `bloom_bits_per_key` bits per key (defaults: 16 KiB and 10).
    pub fn new(block_size: usize, bloom_bits_per_key: u32) -> Self {
        Self {
            block_size: block_size.min(u32::MAX as usize),
            bloom_bits_per_key,
            data: Vec::new(),
            open_block_start: 0,
            open_block_first_key: None,
            blocks: Vec::new(),
            key_hashes: Vec::new(),
            last_key: Vec::new(),
        }
    }

    /// Appends one entry. Keys must be strictly ascending.
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RunError> {
        if !self.is_empty() && key <= self.last_key.as_slice() {
            return Err(RunError::KeyOrder);
        }
        let entry_len = 4 + key.len() + 1 + value.map_or(0, |v| 4 + v.len());
        // Checking the whole entry also bounds key_len and value_len to u32.
        if u32::try_from(entry_len + CHECKSUM_LEN).is_err() {
            return Err(RunError::TooLarge { what: "entry" });
        }
        let open_len = self.data.len() - self.open_block_start;
        if self.open_block_first_key.is_some() && open_len + entry_len + CHECKSUM_LEN > self.block_size {
            self.seal_block();
        }
        if self.open_block_first_key.is_none() {
            self.open_block_first_key = Some(key.to_vec());
        }
        put_bytes(&mut self.data, key);
        match value {
            None => self.data.push(TAG_TOMBSTONE),
            Some(value) => {
                self.data.push(TAG_VALUE);
                put_bytes(&mut self.data, value);
            }
        }
        self.key_hashes.push(xxh3_64(key));
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        Ok(())
    }

    /// Number of entries pushed so far.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.key_hashes.len()
    }

    /// Whether no entry has been pushed.
    pub fn is_empty(&self) -> bool {
        self.key_hashes.is_empty()
    }

    fn seal_block(&mut self) {
        let Some(first_key) = self.open_block_first_key.take() else {
            return;
        };
        put_checksum(&mut self.data, self.open_block_start);
        self.blocks.push(BlockMeta {
            offset: self.open_block_start as u64,
            len: (self.data.len() - self.open_block_start) as u32,
            first_key,
        });
        self.open_block_start = self.data.len();
    }

    /// Seals the last block and appends the index region and footer. An empty run
    /// (zero blocks) is allowed.
    pub fn finish(mut self) -> EncodedRun {
        self.seal_block();
        let bloom = Bloom::build(&self.key_hashes, self.bloom_bits_per_key);
        let index_offset = self.data.len();
        let mut out = self.data;
        put_u32(&mut out, self.blocks.len() as u32);
        for block in &self.blocks {
            put_u64(&mut out, block.offset);
            put_u32(&mut out, block.len);
            put_bytes(&mut out, &block.first_key);
        }
        put_u32(&mut out, bloom.num_hashes);
        put_u32(&mut out, bloom.num_bits as u32);
        out.extend_from_slice(&bloom.bits);
        put_u64(&mut out, self.key_hashes.len() as u64);
        put_checksum(&mut out, index_offset);
        let index_len = out.len() - index_offset;

        put_u64(&mut out, index_offset as u64);
        put_u64(&mut out, index_len as u64);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, FORMAT_VERSION);

        let layout = RunLayout {
            index_offset: index_offset as u64,
            index_len: index_len as u64,
            key_count: self.key_hashes.len() as u64,
            size: out.len() as u64,
            min_key: self.blocks.first().map_or(Vec::new(), |b| b.first_key.clone()),
            max_key: self.last_key,
        };
        EncodedRun { bytes: Bytes::from(out), layout }
    }
}

/// A finished run file and the layout to record in the manifest.
#[derive(Debug, Clone)]
pub struct EncodedRun {
    /// The complete run file.
    pub bytes: Bytes,
    /// Where things are in `bytes`, plus key statistics.
    pub layout: RunLayout,
}

/// Layout of a run file, stored in the manifest so readers can fetch the index region
/// without first reading the footer. `min_key`/`max_key` are empty for an empty run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLayout {
    /// Byte offset of the index region.
    pub index_offset: u64,
    /// Length of the index region, including its checksum.
    pub index_len: u64,
    /// Number of entries, tombstones included.
    pub key_count: u64,
    /// Total file size in bytes.
    pub size: u64,
    /// Smallest key in the run.
    pub min_key: Vec<u8>,
    /// Largest key in the run.
    pub max_key: Vec<u8>,
}

impl RunLayout {
    /// Byte range of the index region, for a ranged GET.
    #[cfg(test)]
    pub fn index_range(&self) -> Range<u64> {
        self.index_offset..self.index_offset + self.index_len
    }
}

/// Parses the footer (the last [`FOOTER_LEN`] bytes; a longer slice is read from its end)
/// into the byte range of the index region.
pub fn decode_footer(footer: &[u8]) -> Result<Range<u64>, RunError> {
    if footer.len() < FOOTER_LEN {
        return Err(RunError::Truncated { what: "footer" });
    }
    let mut cursor = Cursor::new(&footer[footer.len() - FOOTER_LEN..], "footer");
    let index_offset = cursor.u64()?;
    let index_len = cursor.u64()?;
    if cursor.take(MAGIC.len())? != MAGIC {
        return Err(RunError::BadMagic);
    }
    let version = cursor.u32()?;
    if version != FORMAT_VERSION {
        return Err(RunError::UnsupportedVersion(version));
    }
    let index_end = index_offset.checked_add(index_len);
    Ok(index_offset..index_end.ok_or(RunError::Corrupt { what: "footer" })?)
}

/// A decoded index region: block references, bloom filter and key count.
#[derive(Debug, Clone)]
pub struct RunIndex {
    blocks: Vec<BlockMeta>,
    bloom: Bloom,
    key_count: u64,
}

impl RunIndex {
    /// Decodes an index region, verifying its checksum.
    pub fn decode(index_region: &[u8]) -> Result<Self, RunError> {
        const WHAT: &str = "index region";
        let mut cursor = Cursor::new(verified_body(index_region, WHAT)?, WHAT);
        let block_count = cursor.u32()? as usize;
        // The count is checksummed but still untrusted input: cap the preallocation.
        let mut blocks = Vec::with_capacity(block_count.min(index_region.len() / 16));
        for _ in 0..block_count {
            let offset = cursor.u64()?;
            let len = cursor.u32()?;
            let first_key_len = cursor.u32()? as usize;
            let first_key = cursor.take(first_key_len)?.to_vec();
            blocks.push(BlockMeta { offset, len, first_key });
        }
        // block_for binary-searches first keys, which is only correct if they ascend.
        let ascending = blocks.windows(2).all(|b| b[0].first_key < b[1].first_key);
        ensure(ascending, "block index order")?;
        let num_hashes = cursor.u32()?;
        let num_bits = u64::from(cursor.u32()?);
        ensure(num_bits > 0, "bloom filter size")?;
        let bits = cursor.take(num_bits.div_ceil(8) as usize)?.to_vec();
        let bloom = Bloom { num_hashes, num_bits, bits };
        let key_count = cursor.u64()?;
        ensure(cursor.is_empty(), "index region length")?;
        Ok(Self { blocks, bloom, key_count })
    }

    /// Number of entries in the run, tombstones included.
    #[cfg(test)]
    pub fn key_count(&self) -> u64 {
        self.key_count
    }

    /// Number of data blocks.
    #[cfg(test)]
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Bloom filter check: `false` means the key is definitely absent from the run.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.bloom.may_contain(xxh3_64(key))
    }

    /// The block that would hold `key` (last block whose first key <= key), if any.
    pub fn block_for(&self, key: &[u8]) -> Option<BlockRef> {
        let after = self.blocks.partition_point(|b| b.first_key.as_slice() <= key);
        let index = after.checked_sub(1)?;
        Some(self.blocks[index].block_ref(index))
    }
}

/// Location of one data block in the run file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Position of the block in the run, starting at 0.
    pub index: usize,
    /// Byte offset of the block in the run file.
    pub offset: u64,
    /// Length of the block in bytes, including its checksum.
    pub len: u32,
}

impl BlockRef {
    /// Byte range of the block, for a ranged GET.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + u64::from(self.len)
    }
}

/// A decoded data block. Keys and values are zero-copy slices of the block's bytes.
#[derive(Debug, Clone)]
pub struct Block {
    entries: Vec<(Bytes, Option<Bytes>)>,
}

impl Block {
    /// Decodes a data block, verifying its checksum and key order.
    pub fn decode(bytes: Bytes) -> Result<Self, RunError> {
        const WHAT: &str = "data block";
        let body = verified_body(&bytes, WHAT)?;
        let mut cursor = Cursor::new(body, WHAT);
        let mut entries: Vec<(Bytes, Option<Bytes>)> = Vec::new();
        while !cursor.is_empty() {
            let key_len = cursor.u32()? as usize;
            let key = bytes.slice(cursor.take_range(key_len)?);
            let value = match cursor.u8()? {
                TAG_TOMBSTONE => None,
                TAG_VALUE => {
                    let value_len = cursor.u32()? as usize;
                    Some(bytes.slice(cursor.take_range(value_len)?))
                }
                _ => return Err(RunError::Corrupt { what: "entry tag" }),
            };
            // get() binary-searches, which is only correct if keys ascend.
            let ascending = entries.last().is_none_or(|(previous, _)| *previous < key);
            ensure(ascending, "block key order")?;
            entries.push((key, value));
        }
        ensure(!entries.is_empty(), "empty data block")?;
        Ok(Self { entries })
    }

    /// Some(None) = tombstone present, Some(Some(v)) = value, None = key not in block.
    pub fn get(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let found = self.entries.binary_search_by(|(k, _)| k.as_ref().cmp(key));
        Some(self.entries[found.ok()?].1.clone())
    }

    /// All entries in ascending key order.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = (Bytes, Option<Bytes>)> + '_ {
        self.entries.iter().cloned()
    }
}

/// Iterates every entry of a whole run file (used by compaction): validates footer,
/// index and each block, and that blocks tile the data region in key order.
pub fn read_all(run: &Bytes) -> Result<Vec<(Bytes, Option<Bytes>)>, RunError> {
    let index_range = decode_footer(run)?;
    let (data_len, footer_start) = (index_range.start, run.len() - FOOTER_LEN);
    ensure(index_range.end == footer_start as u64, "footer index range")?;
    let index = RunIndex::decode(&run[data_len as usize..footer_start])?;
    let mut entries = Vec::with_capacity(index.key_count.min(run.len() as u64) as usize);
    let mut block_start = 0;
    for (i, meta) in index.blocks.iter().enumerate() {
        let range = meta.block_ref(i).range();
        ensure(range.start == block_start && range.end <= data_len, "block range")?;
        block_start = range.end;
        let block = Block::decode(run.slice(range.start as usize..range.end as usize))?;
        ensure(block.entries[0].0 == meta.first_key, "block first key")?;
        entries.extend(block.entries);
    }
    ensure(block_start == data_len, "data region length")?;
    ensure(entries.len() as u64 == index.key_count, "key count")?;
    let ascending = entries.windows(2).all(|pair| pair[0].0 < pair[1].0);
    ensure(ascending, "key order across blocks")?;
    Ok(entries)
}

#[derive(Debug, Clone)]
struct Bloom {
    num_hashes: u32,
    num_bits: u64,
    bits: Vec<u8>,
}

impl Bloom {
    fn build(key_hashes: &[u64], bits_per_key: u32) -> Self {
        let wanted_bits = key_hashes.len() as u64 * u64::from(bits_per_key);
        // MAX_BLOOM_BITS is a multiple of 8, so rounding up cannot exceed it.
        let num_bits = wanted_bits.clamp(MIN_BLOOM_BITS, MAX_BLOOM_BITS).next_multiple_of(8);
        // k = bits_per_key * ln 2 minimises the false-positive rate.
        let num_hashes = f64::from(bits_per_key) * std::f64::consts::LN_2;
        let num_hashes = num_hashes.round().clamp(1.0, 30.0) as u32;
        let mut bits = vec![0u8; (num_bits / 8) as usize];
        for &hash in key_hashes {
            for bit in bit_positions(hash, num_hashes, num_bits) {
                bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        Self { num_hashes, num_bits, bits }
    }

    fn may_contain(&self, hash: u64) -> bool {
        bit_positions(hash, self.num_hashes, self.num_bits).all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }
}

fn bit_positions(hash: u64, num_hashes: u32, num_bits: u64) -> impl Iterator<Item = usize> {
    let step = hash.rotate_left(32) | 1;
    (0..u64::from(num_hashes)).map(move |i| (hash.wrapping_add(i.wrapping_mul(step)) % num_bits) as usize)
}

fn checksum(bytes: &[u8]) -> u32 {
    xxh3_64(bytes) as u32
}

fn ensure(ok: bool, what: &'static str) -> Result<(), RunError> {
    if ok { Ok(()) } else { Err(RunError::Corrupt { what }) }
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Writes `[u32 len][bytes]`; callers have already bounded the length to u32.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// Appends the checksum of everything written since `start`.
fn put_checksum(out: &mut Vec<u8>, start: usize) {
    put_u32(out, checksum(&out[start..]));
}

/// Splits off the trailing checksum, verifies it and returns the bytes it covers.
fn verified_body<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], RunError> {
    if bytes.len() < CHECKSUM_LEN {
        return Err(RunError::Truncated { what });
    }
    let (body, stored) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if checksum(body).to_le_bytes() != stored {
        return Err(RunError::Checksum { what });
    }
    Ok(body)
}

/// Bounds-checked little-endian reader; `what` names the structure in errors.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        let pos = 0;
        Self { bytes, pos, what }
    }

    fn is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn take_range(&mut self, len: usize) -> Result<Range<usize>, RunError> {
        let start = self.pos;
        if len > self.bytes.len() - start {
            return Err(RunError::Truncated { what: self.what });
        }
        self.pos += len;
        Ok(start..self.pos)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RunError> {
        let range = self.take_range(len)?;
        Ok(&self.bytes[range])
    }

    fn u8(&mut self) -> Result<u8, RunError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, RunError> {
        let bytes = self.take(4)?.try_into().expect("took 4 bytes");
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, RunError> {
        let bytes = self.take(8)?.try_into().expect("took 8 bytes");
        Ok(u64::from_le_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    type Entries = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

    /// splitmix64: deterministic and dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        fn bytes_below(&mut self, max_len: u64) -> Vec<u8> {
            let len = self.below(max_len);
            self.bytes(len)
        }
    }

    /// Tombstones, empty values, long keys and keys that are prefixes of other keys.
    fn sample_entries(rng: &mut Rng, count: usize) -> Entries {
        let mut entries = Entries::new();
        while entries.len() < count {
            let key_len = if rng.below(50) == 0 { 300 + rng.below(3000) } else { rng.below(24) };
            let key = rng.bytes(key_len);
            for key in [key[..key_len / 2].to_vec(), key] {
                let value = match rng.below(4) {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(rng.bytes_below(100)),
                };
                entries.insert(key, value);
            }
        }
        entries
    }

    fn build(entries: &Entries, block_size: usize) -> EncodedRun {
        let mut builder = RunBuilder::new(block_size, 10);
        for (key, value) in entries {
            builder.push(key, value.as_deref()).unwrap();
        }
        assert_eq!(builder.len(), entries.len());
        builder.finish()
    }

    fn slice(run: &Bytes, range: Range<u64>) -> Bytes {
        run.slice(range.start as usize..range.end as usize)
    }

    /// The reader's first step: footer -> index region.
    fn open(run: &Bytes) -> RunIndex {
        let index_range = decode_footer(&run[run.len() - FOOTER_LEN..]).unwrap();
        RunIndex::decode(&slice(run, index_range)).unwrap()
    }

    /// The reader's point lookup, without the bloom filter: block_for -> Block::get.
    fn lookup(run: &Bytes, index: &RunIndex, key: &[u8]) -> Option<Option<Bytes>> {
        let block = slice(run, index.block_for(key)?.range());
        Block::decode(block).unwrap().get(key)
    }

    fn read_error(run: &Bytes) -> String {
        read_all(run).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_many_entries_across_blocks() {
        let mut rng = Rng(1);
        let entries = sample_entries(&mut rng, 3000);
        let run = build(&entries, 256);
        let index = open(&run.bytes);
        assert!(index.block_count() > 100, "{} blocks", index.block_count());
        assert_eq!(index.key_count(), entries.len() as u64);

        for (key, value) in &entries {
            assert!(index.may_contain(key));
            let found = lookup(&run.bytes, &index, key).expect("present key must be found");
            assert_eq!(found.as_deref(), value.as_deref());
        }
        for _ in 0..2000 {
            let key = rng.bytes_below(30);
            if !entries.contains_key(&key) {
                assert_eq!(lookup(&run.bytes, &index, &key), None);
            }
        }

        let all = read_all(&run.bytes).unwrap().into_iter();
        let all: Vec<_> = all.map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec()))).collect();
        assert_eq!(all, entries.clone().into_iter().collect::<Vec<_>>());

        let layout = &run.layout;
        assert_eq!(layout.key_count, entries.len() as u64);
        assert_eq!(layout.size, run.bytes.len() as u64);
        assert_eq!(&layout.min_key, entries.keys().next().unwrap());
        assert_eq!(&layout.max_key, entries.keys().next_back().unwrap());
        let footer = decode_footer(&run.bytes[run.bytes.len() - FOOTER_LEN..]).unwrap();
        assert_eq!(footer, layout.index_range());
        assert_eq!(layout.index_range().end, layout.size - FOOTER_LEN as u64);
    }

    #[test]
    fn entry_larger_than_block_size_gets_its_own_block() {
        let big = vec![7u8; 1000];
        let mut builder = RunBuilder::new(64, 10);
        builder.push(b"a", Some(b"small")).unwrap();
        builder.push(b"b", Some(&big)).unwrap();
        builder.push(b"c", None).unwrap();
        let run = builder.finish().bytes;
        let index = open(&run);
        assert_eq!(index.block_count(), 3);
        assert_eq!(lookup(&run, &index, b"b"), Some(Some(Bytes::from(big))));
        assert_eq!(lookup(&run, &index, b"c"), Some(None));
        assert_eq!(lookup(&run, &index, b""), None);
    }

    #[test]
    fn bloom_false_positive_rate_is_low() {
        let present = (0..10_000).map(|i| (format!("present-{i}").into_bytes(), Some(vec![1])));
        let index = open(&build(&present.collect(), 16 * 1024).bytes);
        let absent = (0..10_000).map(|i| format!("absent-{i}"));
        let false_positives = absent.filter(|key| index.may_contain(key.as_bytes())).count();
        assert!(false_positives < 300, "{false_positives} in 10,000");
    }

    #[test]
    fn rejects_keys_out_of_order() {
        let mut builder = RunBuilder::new(1024, 10);
        builder.push(b"b", Some(b"1")).unwrap();
        let duplicate = builder.push(b"b", Some(b"2"));
        assert!(matches!(duplicate, Err(RunError::KeyOrder)));
        assert!(matches!(builder.push(b"a", None), Err(RunError::KeyOrder)));
        assert_eq!(builder.len(), 1);
        builder.push(b"ba", None).unwrap();
        assert_eq!(read_all(&builder.finish().bytes).unwrap().len(), 2);
    }

    #[test]
    fn detects_corruption() {
        let entries = sample_entries(&mut Rng(2), 200);
        let run = build(&entries, 256);
        let flipped = |at: u64| {
            let mut bytes = run.bytes.to_vec();
            bytes[at as usize] ^= 0x10;
            Bytes::from(bytes)
        };
        let block = open(&run.bytes).block_for(b"").unwrap();
        let bad_block = flipped(block.offset + 3);
        assert_eq!(read_error(&bad_block), "checksum mismatch in data block");
        let decoded = Block::decode(slice(&bad_block, block.range()));
        assert!(matches!(decoded, Err(RunError::Checksum { .. })));

        let bad_index = flipped(run.layout.index_offset + 5);
        assert_eq!(read_error(&bad_index), "checksum mismatch in index region");
        let decoded = RunIndex::decode(&slice(&bad_index, run.layout.index_range()));
        assert!(matches!(decoded, Err(RunError::Checksum { .. })));

        let size = run.layout.size;
        assert!(matches!(read_all(&flipped(size - 6)), Err(RunError::BadMagic)));
        let bad_version = read_all(&flipped(size - 4));
        assert!(matches!(bad_version, Err(RunError::UnsupportedVersion(17))));
        assert_eq!(read_error(&run.bytes.slice(..10)), "truncated footer");
    }

    #[test]
    fn empty_run_round_trips() {
        let builder = RunBuilder::new(16 * 1024, 10);
        assert!(builder.is_empty());
        let run = builder.finish();
        assert!(read_all(&run.bytes).unwrap().is_empty());
        let index = open(&run.bytes);
        assert_eq!((index.block_count(), index.key_count()), (0, 0));
        assert_eq!(index.block_for(b""), None);
        assert!(!index.may_contain(b""));
        let layout = &run.layout;
        assert_eq!((layout.key_count, layout.index_offset), (0, 0));
        assert!(layout.min_key.is_empty() && layout.max_key.is_empty());
        assert_eq!(layout.size, run.bytes.len() as u64);
        assert_eq!(layout.index_range().end, layout.size - FOOTER_LEN as u64);
    }
}
