//! Positions in a partition's event log.

use serde::{Deserialize, Serialize};

/// One event in a partition's log: the segment that holds it and its index there.
///
/// Positions order like the log: by segment, then index.
///
/// ```
/// use weir_engine::Position;
/// let p = Position::new(42, 7);
/// assert_eq!(p.to_string(), "42:7");
/// assert!(p < Position::new(43, 0));
/// assert_eq!(p.object_name(), "00000000000000000042-000007");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Sequence number of the segment.
    pub segment: u64,
    /// Index of the event within the segment.
    pub index: u32,
}

impl Position {
    /// The position of event `index` in segment `segment`.
    pub const fn new(segment: u64, index: u32) -> Self {
        Position { segment, index }
    }

    /// The position as a path segment whose lexical order is the log order.
    pub fn object_name(&self) -> String {
        crate::layout::position_name(*self)
    }
}

/// Parses what [`Display`](std::fmt::Display) writes, `SEGMENT:INDEX`.
///
/// ```
/// use weir_engine::Position;
/// assert_eq!("42:7".parse::<Position>().unwrap(), Position::new(42, 7));
/// assert!("42".parse::<Position>().is_err());
/// ```
impl std::str::FromStr for Position {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text.split_once(':').and_then(|(s, i)| Some(Position::new(s.parse().ok()?, i.parse().ok()?)));
        parsed.ok_or_else(|| crate::Error::InvalidInput(format!("`{text}` is not a log position: write SEGMENT:INDEX")))
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.segment, self.index)
    }
}
