//! When to retry an HTTP request and how long to wait first: one policy for the model
//! clients and the HTTP tools.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::http::HttpSettings;

/// How a client retries: how often, and how long it waits before each retry when the
/// server does not say.
///
/// ```
/// use std::time::Duration;
/// use reqwest::StatusCode;
/// use reqwest::header::{HeaderMap, HeaderValue};
/// use weir_models::RetryPolicy;
///
/// let policy = RetryPolicy { max_retries: 2, initial_backoff_ms: 200, max_backoff_ms: 30_000 };
/// let mut asked = HeaderMap::new();
/// asked.insert("retry-after", HeaderValue::from_static("3"));
/// assert!(RetryPolicy::RetryPolicy::is_retryable(StatusCode::TOO_MANY_REQUESTS, &asked));
/// assert_eq!(policy.delay(0, Some(&asked)), Duration::from_secs(3), "as the server asks");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Wait before the first retry when the server does not say, doubled for each further
    /// one, with jitter; in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait before a retry, also bounding a server's `Retry-After`; in milliseconds.
    pub max_backoff_ms: u64,
}

impl RetryPolicy {
    /// Whether a failed status is worth another attempt: timeouts (408), lock conflicts
    /// (409), rate limits (429) and server errors, Anthropic's 529 "overloaded" among them. A
    /// server's `x-should-retry` header (OpenAI, Anthropic) overrides the status.
    pub fn is_retryable(status: StatusCode, headers: &HeaderMap) -> bool {
        match headers.get("x-should-retry").and_then(|value| value.to_str().ok()) {
            Some("true") => true,
            Some("false") => false,
            _ => matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error(),
        }
    }

    /// How long to wait before attempt `attempt + 1` (`attempt` counts from 0): what the
    /// server asked for in `headers` if it said (`retry-after-ms`, `Retry-After` as seconds
    /// or a date), else a jittered exponential backoff; never more than `max_backoff_ms`, so
    /// that a far-off `Retry-After` cannot stall a function past its deadline.
    pub fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        let max = Duration::from_millis(self.max_backoff_ms);
        let asked = headers.and_then(|headers| server_delay(headers, SystemTime::now()));
        asked.unwrap_or_else(|| self.backoff(attempt)).min(max)
    }

    /// `initial_backoff_ms` doubled per attempt, capped, then scaled by a random factor in
    /// [0.5, 1] so that clients throttled together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.initial_backoff_ms.saturating_mul(1u64 << attempt.min(32));
        let capped = Duration::from_millis(exponential.min(self.max_backoff_ms));
        capped.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

impl HttpSettings {
    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            initial_backoff_ms: self.initial_backoff_ms,
            max_backoff_ms: self.max_backoff_ms,
        }
    }
}

/// The wait a server asks for: OpenAI's `retry-after-ms`, else `Retry-After` as seconds or as
/// an HTTP date.
fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(millis) = header("retry-after-ms").and_then(|value| value.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    let retry_after = header("retry-after")?;
    match retry_after.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
        Err(_) => {
            let at = httpdate::parse_http_date(retry_after).ok()?;
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (*name, HeaderValue::from_str(value).unwrap())).fold(
            HeaderMap::new(),
            |mut map, (name, value)| {
                map.insert(name, value);
                map
            },
        )
    }

    #[test]
    fn retry_after_is_read_as_seconds_milliseconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(server_delay(&headers(&[("retry-after", "2")]), now), Some(Duration::from_secs(2)));
        assert_eq!(server_delay(&headers(&[("retry-after", "0.5")]), now), Some(Duration::from_millis(500)));
        let date = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:10 GMT")]);
        assert_eq!(server_delay(&date, now), Some(Duration::from_secs(10)));
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]);
        assert_eq!(server_delay(&past, now), Some(Duration::ZERO));
        let both = headers(&[("retry-after-ms", "250"), ("retry-after", "3")]);
        assert_eq!(server_delay(&both, now), Some(Duration::from_millis(250)));
        assert_eq!(server_delay(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(server_delay(&HeaderMap::new(), now), None);
    }

    #[test]
    fn the_wait_is_capped_and_backoff_grows_within_its_jitter() {
        let settings = HttpSettings { initial_backoff_ms: 100, max_backoff_ms: 1000, ..HttpSettings::default() };
        let far = headers(&[("retry-after", "3600")]);
        assert_eq!(settings.retry_policy().delay(0, Some(&far)), Duration::from_secs(1));
        for (attempt, full) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (40, 1000)] {
            let delay = settings.retry_policy().delay(attempt, None);
            let full = Duration::from_millis(full);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn statuses_worth_retrying() {
        let none = HeaderMap::new();
        for status in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(RetryPolicy::is_retryable(StatusCode::from_u16(status).unwrap(), &none), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!RetryPolicy::is_retryable(StatusCode::from_u16(status).unwrap(), &none), "{status}");
        }
        assert!(!RetryPolicy::is_retryable(StatusCode::TOO_MANY_REQUESTS, &headers(&[("x-should-retry", "false")])));
        assert!(RetryPolicy::is_retryable(StatusCode::BAD_REQUEST, &headers(&[("x-should-retry", "true")])));
    }
}
