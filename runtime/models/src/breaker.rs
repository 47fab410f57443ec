//! A circuit breaker per provider endpoint: a provider that keeps failing is not asked again
//! until a cool-down has passed, so that an outage costs a few requests, not one per event.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many cool-downs a breaker's wait may grow to, doubling at each failed probe.
const MAX_COOLDOWN_FACTOR: u32 = 10;

/// Closed (calls go), open (calls fail at once) or half-open (one probe goes).
#[derive(Debug)]
pub(crate) struct Breaker {
    /// Consecutive failed calls that open it; 0 never opens.
    failures_to_open: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    /// While set and in the future: open.
    open_until: Option<Instant>,
    /// The wait after the next failure that opens it.
    next_cooldown: Option<Duration>,
    /// A probe is out: other calls wait for its result.
    probing: bool,
}

impl Breaker {
    pub(crate) fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Breaker { failures_to_open, cooldown, state: Mutex::default() }
    }

    /// Whether a call may go now: `Err` with the time left while the breaker is open (or a
    /// probe is out).
    pub(crate) fn admit(&self) -> Result<(), Duration> {
        let mut state = self.state.lock().expect("breaker");
        let Some(until) = state.open_until else { return Ok(()) };
        let now = Instant::now();
        if now < until {
            return Err(until - now);
        }
        if state.probing {
            return Err(Duration::ZERO);
        }
        state.probing = true;
        Ok(())
    }

    /// How long the breaker stays open, if it is: a call admitted before it opened (one
    /// that waited for a concurrency permit) checks again before each request.
    pub(crate) fn open_for(&self) -> Option<Duration> {
        let until = self.state.lock().expect("breaker").open_until?;
        until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// A call that reached the provider and was answered: the provider is up.
    pub(crate) fn succeeded(&self) {
        *self.state.lock().expect("breaker") = State::default();
    }

    /// A call that failed for the provider's own reasons, after its retries. Returns
    /// whether the breaker opened.
    pub(crate) fn failed(&self) -> bool {
        if self.failures_to_open == 0 {
            return false;
        }
        let mut state = self.state.lock().expect("breaker");
        state.consecutive_failures += 1;
        let probe_failed = std::mem::take(&mut state.probing);
        if !probe_failed && state.consecutive_failures < self.failures_to_open {
            return false;
        }
        let cooldown = state.next_cooldown.unwrap_or(self.cooldown);
        state.open_until = Some(Instant::now() + cooldown);
        state.next_cooldown = Some((cooldown * 2).min(self.cooldown * MAX_COOLDOWN_FACTOR));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_after_the_cooldown() {
        let breaker = Breaker::new(2, Duration::from_secs(30));
        assert!(breaker.admit().is_ok());
        assert!(!breaker.failed(), "one failure is not an outage");
        assert!(breaker.failed(), "the second opens it");
        assert_eq!(breaker.admit(), Err(Duration::from_secs(30)));

        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(breaker.admit().is_ok(), "one probe goes");
        assert!(breaker.admit().is_err(), "and only one");
        assert!(breaker.failed(), "a failed probe opens it again");
        assert_eq!(breaker.admit(), Err(Duration::from_secs(60)), "for twice as long");

        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(breaker.admit().is_ok());
        breaker.succeeded();
        assert!(breaker.admit().is_ok() && breaker.admit().is_ok(), "closed again");
        assert!(!breaker.failed(), "and counting from zero");
    }

    #[tokio::test]
    async fn zero_failures_to_open_never_opens() {
        let breaker = Breaker::new(0, Duration::from_secs(30));
        for _ in 0..10 {
            assert!(!breaker.failed());
        }
        assert!(breaker.admit().is_ok());
    }
}
