//! Per-host rate limiting of reports: one token bucket per reporting host,
//! so a flooding (or broken) agent is refused cheaply — before validation
//! and before the store — and cannot crowd out the others.
//!
//! The key is the host a report is for, which with TLS is the host its
//! client certificate names (an agent cannot spend another host's budget).
//! Pure logic over an injected clock, so it is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::defaults;

/// How many reports a host may send: `rate` per second on average, with
/// bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained reports per second per host.
    pub rate: f64,
    /// Reports a host may send at once after being quiet.
    pub burst: u32,
}

impl Default for RateLimit {
    /// `--report-rate` and `--report-burst`'s defaults: far above what a
    /// real agent sends (a heartbeat every 15 s, a snapshot per change,
    /// debounced), far below what a flood costs.
    fn default() -> Self {
        RateLimit {
            rate: defaults::REPORT_RATE,
            burst: defaults::REPORT_BURST,
        }
    }
}

impl RateLimit {
    /// Checks that the numbers make sense.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(format!(
                "report rate must be a positive number of reports per second, not {}",
                self.rate
            ));
        }
        if self.burst == 0 {
            return Err("report burst must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// More buckets than this and the full (idle) ones are dropped: an idle
/// host's bucket is full, so forgetting it changes nothing.
const PRUNE_ABOVE: usize = 10_000;

/// The buckets of every host that reported recently.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter applying `limit` to every host.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit applied.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one report from `host`'s budget at `now`, or says how long to
    /// wait until one is available.
    pub fn check(&self, host: &str, now: Instant) -> Result<(), Duration> {
        let RateLimit { rate, burst } = self.limit;
        let burst = f64::from(burst);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(host) {
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
        }
        // Looked up before inserting: a host's name is copied when its
        // bucket is made, not on every report.
        match buckets.get_mut(host) {
            Some(bucket) => spend(bucket, now, rate, burst),
            None => {
                let mut bucket = Bucket {
                    tokens: burst,
                    updated: now,
                };
                let spent = spend(&mut bucket, now, rate, burst);
                buckets.insert(host.to_owned(), bucket);
                spent
            }
        }
    }

    /// How many hosts have a bucket (for tests of the pruning).
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// Takes one token from `bucket` at `now`, or says how long to wait until
/// one is available.
fn spend(bucket: &mut Bucket, now: Instant, rate: f64, burst: f64) -> Result<(), Duration> {
    let tokens = refill(bucket, now, rate, burst);
    bucket.tokens = tokens;
    bucket.updated = bucket.updated.max(now);
    if tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Ok(())
    } else {
        Err(Duration::from_secs_f64((1.0 - tokens) / rate))
    }
}

/// The bucket's tokens at `now` (not stored). A clock that went backwards
/// adds nothing.
fn refill(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limiter(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit { rate, burst })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let l = limiter(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check("h", t0).expect("within the burst");
        }
        let wait = l.check("h", t0).expect_err("burst spent");
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-6,
            "one token at 2/s: {wait:?}"
        );
        l.check("h", t0 + Duration::from_millis(500))
            .expect("a token came back");
        assert!(l.check("h", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn one_host_flooding_does_not_touch_another_hosts_budget() {
        let l = limiter(1.0, 2);
        let t0 = Instant::now();
        let refused = (0..1000).filter(|_| l.check("flood", t0).is_err()).count();
        assert_eq!(refused, 998);
        l.check("quiet", t0).expect("its own bucket");
        l.check("quiet", t0).expect("its own burst");
    }

    #[test]
    fn a_clock_going_backwards_neither_panics_nor_refills() {
        let l = limiter(1.0, 1);
        let t0 = Instant::now() + Duration::from_secs(10);
        l.check("h", t0).unwrap();
        assert!(l.check("h", t0 - Duration::from_secs(5)).is_err());
    }

    #[test]
    fn idle_buckets_are_pruned_when_there_are_too_many() {
        let l = limiter(1.0, 1);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            l.check(&format!("h{i}"), t0).unwrap();
        }
        assert_eq!(l.tracked(), PRUNE_ABOVE + 1);
        // Much later every bucket is full again: all are forgotten but the
        // new one.
        l.check("new", t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn bad_limits_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(RateLimit { rate, burst: 1 }.validate().is_err(), "{rate}");
        }
        assert!(
            RateLimit {
                rate: 1.0,
                burst: 0
            }
            .validate()
            .is_err()
        );
        RateLimit::default().validate().unwrap();
    }

    proptest! {
        /// Over any schedule, a host gets at most burst + rate × elapsed
        /// reports through.
        #[test]
        fn never_more_than_burst_plus_rate_times_elapsed(
            rate in 0.5f64..50.0,
            burst in 1u32..20,
            gaps_ms in proptest::collection::vec(0u64..400, 1..200),
        ) {
            let l = limiter(rate, burst);
            let t0 = Instant::now();
            let mut now = t0;
            let mut passed = 0u32;
            for gap in gaps_ms {
                now += Duration::from_millis(gap);
                if l.check("h", now).is_ok() {
                    passed += 1;
                }
            }
            let allowed = f64::from(burst) + rate * (now - t0).as_secs_f64();
            prop_assert!(f64::from(passed) <= allowed + 1e-9, "{} > {}", passed, allowed);
        }
    }
}
