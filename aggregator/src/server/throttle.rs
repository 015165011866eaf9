//! Log lines that an unauthenticated client can provoke, at a bounded rate.
//!
//! A client without credentials can make the server refuse it thousands of
//! times a second (and, once file descriptors run out, every `accept` fails
//! as fast as it is retried). One line per event would flood the log and the
//! disk under it. A [`Throttle`] lets the first line of a burst through at
//! once, then at most one line per interval, and that line says how many
//! were suppressed since the last one, so nothing is hidden: the count is
//! exact, only the lines are fewer. Counters in `/metrics` keep every event.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a throttled kind of line may be logged.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// A rate gate for one kind of log line.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// A gate letting one line through per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of
    /// lines suppressed since the last one that was let through, or `None`
    /// (the event is counted as suppressed).
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

/// Logs at WARN through `throttle`: `$throttle` is a `&Throttle`, the rest is
/// what `tracing::warn!` takes. The line carries `suppressed`, the number of
/// lines of its kind dropped since the previous one.
#[macro_export]
macro_rules! warn_throttled {
    ($throttle:expr, $($rest:tt)+) => {
        if let Some(suppressed) = $throttle.admit(::std::time::Instant::now()) {
            ::tracing::warn!(suppressed, $($rest)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_rest_are_counted() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Some(0));
        for i in 1..=4_500u64 {
            // A flood within the interval: all suppressed.
            assert_eq!(t.admit(t0 + Duration::from_micros(i)), None);
        }
        // The next line after the interval says how many were dropped.
        assert_eq!(t.admit(t0 + Duration::from_secs(10)), Some(4_500));
        assert_eq!(t.admit(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.admit(t0 + Duration::from_secs(25)), Some(1));
    }
}
