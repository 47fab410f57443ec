//! The trace context a producer's request carried, kept with its event so that the event's
//! spans join the producer's trace (`docs/observability.md`, "The caller's trace").
//!
//! It is kept in the form of W3C Trace Context's `traceparent` header, with the
//! `tracestate` header beside it when the caller sent one; AWS X-Ray's header
//! (`_X_AMZN_TRACE_ID` on Lambda, `AWSTraceHeader` on SQS messages) converts to it, since
//! an X-Ray trace id is a W3C trace id written in two parts.

use std::fmt;
use std::str::FromStr;

/// The attribute of an event's root span that keeps its producer's trace context, as a
/// `traceparent`, in the committed trace.
pub const TRACE_PARENT_ATTRIBUTE: &str = "weir.trace_parent";

/// The attribute of an event's root span that keeps its producer's `tracestate`, in the
/// committed trace.
pub const TRACE_STATE_ATTRIBUTE: &str = "weir.trace_state";

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
/// let with_state = w3c.with_state(Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
/// assert_eq!(with_state.state.as_deref(), Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace, 16 bytes, not all zero.
    pub trace_id: [u8; 16],
    /// The caller's span, 8 bytes, not all zero.
    pub span_id: [u8; 8],
    /// Whether the caller sampled the trace (the `01` flag).
    pub sampled: bool,
    /// The caller's `tracestate`: the vendors' entries, passed on as received; `None` when
    /// there was none, or it was malformed.
    pub state: Option<String>,
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
        let parent = TraceParent { trace_id, span_id, sampled: field("Sampled") == Some("1"), state: None };
        parent.valid().then_some(parent)
    }

    /// The same context with the caller's `tracestate` (several header lines joined with
    /// `,`), kept only if well-formed (W3C Trace Context: at most 32 `key=value` entries of
    /// printable ASCII, 512 characters, keys not repeated); a malformed one is dropped, as
    /// the specification asks, and the `traceparent` kept.
    pub fn with_state(mut self, state: Option<&str>) -> Self {
        let state = state.map(str::trim).filter(|s| !s.is_empty());
        self.state = state.filter(|s| valid_state(s)).map(String::from);
        if state.is_some() && self.state.is_none() {
            tracing::debug!(tracestate = ?state, "malformed tracestate dropped");
        }
        self
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
            state: None,
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

/// Whether `state` is a `tracestate` W3C Trace Context lets through: list members
/// `key=value` (empty members allowed), at most 32, no key twice, 512 characters in all.
fn valid_state(state: &str) -> bool {
    let members: Vec<&str> = state.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty()).collect();
    let mut keys = std::collections::HashSet::new();
    state.len() <= 512
        && !members.is_empty()
        && members.len() <= 32
        && members.iter().all(|member| {
            let Some((key, value)) = member.split_once('=') else { return false };
            let value_ok = !value.is_empty()
                && value.len() <= 256
                && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
                && !value.ends_with(' ');
            valid_state_key(key) && value_ok && keys.insert(key)
        })
}

/// A `tracestate` key: `simple-key` or `tenant-id@system-id`, of lowercase letters,
/// digits, `_`, `-`, `*` and `/`.
fn valid_state_key(key: &str) -> bool {
    let chars_ok = |s: &str| s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b));
    let starts = |s: &str, digit: bool| {
        s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || (digit && b.is_ascii_digit()))
    };
    match key.split_once('@') {
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && starts(tenant, true)
                && starts(system, false)
                && chars_ok(tenant)
                && chars_ok(system)
        }
        None => key.len() <= 256 && starts(key, false) && chars_ok(key),
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

    #[test]
    fn a_tracestate_is_kept_only_when_well_formed() {
        let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
        let state = |text: &str| parent.clone().with_state(Some(text)).state;
        assert_eq!(
            state("rojo=00f067aa0ba902b7, ,congo=t61rcWkgMzE").as_deref(),
            Some("rojo=00f067aa0ba902b7, ,congo=t61rcWkgMzE")
        );
        assert_eq!(state("acme@dd=x").as_deref(), Some("acme@dd=x"), "a multi-tenant key");
        let too_many = (0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        for bad in ["", "novalue", "Upper=1", "a=1,a=2", "a=tab\there", "1key=v", too_many.as_str()] {
            assert_eq!(state(bad), None, "{bad}");
        }
        assert_eq!(parent.with_state(None).state, None);
    }
}
