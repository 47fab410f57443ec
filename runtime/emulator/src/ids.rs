//! The identifiers Lambda hands out, in the shapes its clients expect.

use std::time::{SystemTime, UNIX_EPOCH};

/// A request id: a random UUID (version 4), as Lambda's are.
pub(crate) fn request_id() -> String {
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// An X-Ray trace header: `Root=1-<epoch seconds>-<96 random bits>;Parent=…;Sampled=0`.
pub(crate) fn trace_id() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    format!(
        "Root=1-{seconds:08x}-{:08x}{:016x};Parent={:016x};Sampled=0",
        fastrand::u32(..),
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// The log stream of a new execution environment: `[$LATEST]<32 hex digits>`, Lambda's
/// name without its date prefix.
pub(crate) fn log_stream_name() -> String {
    format!("[$LATEST]{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let id = request_id();
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{id}");
        assert_ne!(request_id(), id);
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let trace = trace_id();
        assert!(trace.starts_with("Root=1-") && trace.ends_with(";Sampled=0"), "{trace}");
    }
}
