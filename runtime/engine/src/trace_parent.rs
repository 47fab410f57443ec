//! The trace context a producer's request carried, kept with its event so that the event's
//! spans join the producer's trace (`docs/observability.md`, "The caller's trace").
//!
//! It is kept in the form of W3C Trace Context's `traceparent` header; AWS X-Ray's header
//! (`_X_AMZN_TRACE_ID` on Lambda, `AWSTraceHeader` on SQS messages) converts to it, since
//! an X-Ray trace id is a W3C trace id written in two parts.

use std::fmt;
use std::str::FromStr;

/// The attribute of an event's root span that keeps its producer's trace context, as a
/// `traceparent`, in the committed trace.
pub const TRACE_PARENT_ATTRIBUTE: &str = "weir.trace_parent";

/// A parent span in another process: its trace id, its span id and whether it was sampled.
///
/// ```
/// use weir_engine::TraceParent;
///
/// let w3c: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert!(w3c.sampled);
/// let xray = TraceParent::from_xray("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1").unwrap();
/// assert_eq!(xray, w3c);
/// assert_eq!(xray.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace, 16 bytes, not all zero.
    pub trace_id: [u8; 16],
    /// The caller's span, 8 bytes, not all zero.
    pub span_id: [u8; 8],
    /// Whether the caller sampled the trace (the `01` flag).
    pub sampled: bool,
}

impl TraceParent {
    /// Reads an AWS X-Ray trace header, `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`
    /// (fields in any order, others ignored); `None` without a root or a parent, as X-Ray
    /// writes before a segment exists.
    pub fn from_xray(header: &str) -> Option<TraceParent> {
        let field = |name: &str| {
            header.split(';').filter_map(|part| part.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
        };
        let root = field("Root")?.strip_prefix("1-")?;
        let (time, unique) = root.split_once('-')?;
        if time.len() != 8 || unique.len() != 24 {
            return None;
        }
        let trace_id = hex::<16>(&format!("{time}{unique}"))?;
        let span_id = hex::<8>(field("Parent")?)?;
        let parent = TraceParent { trace_id, span_id, sampled: field("Sampled") == Some("1") };
        parent.valid().then_some(parent)
    }

    fn valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }
}

/// Why a `traceparent` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("traceparent `{0}`: expected `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not all zero")]
pub struct InvalidTraceParent(String);

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    /// Reads a W3C `traceparent` of version `00`, or of a later version whose first four
    /// fields have that shape (as the specification asks of a reader of version 00).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTraceParent(text.chars().take(80).collect());
        let mut parts = text.trim().split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let version = hex::<1>(version).ok_or_else(invalid)?[0];
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return Err(invalid());
        }
        let parent = TraceParent {
            trace_id: hex::<16>(trace).ok_or_else(invalid)?,
            span_id: hex::<8>(span).ok_or_else(invalid)?,
            sampled: hex::<1>(flags).ok_or_else(invalid)?[0] & 1 == 1,
        };
        parent.valid().then_some(parent).ok_or_else(invalid)
    }
}

impl fmt::Display for TraceParent {
    /// The W3C `traceparent`, version `00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        write!(f, "00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), u8::from(self.sampled))
    }
}

/// `N` bytes from exactly `2 * N` lowercase hex digits (the specification allows no other).
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut bytes = [0; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more".parse::<TraceParent>().unwrap();
        assert!(!later.sampled, "a later version is read by its first fields");
        assert_eq!(TraceParent::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"), None, "no parent");
        assert_eq!(TraceParent::from_xray("Parent=53995c3f42cd8ad8"), None, "no root");
    }
}
