//! What a connection is doing: requests in flight and when it last did
//! something.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds since an arbitrary process-wide origin.
pub(super) fn millis(at: Instant) -> u64 {
    static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(at.saturating_duration_since(*ORIGIN).as_millis()).unwrap_or(u64::MAX)
}

/// What a connection is doing: requests in flight and when it last did
/// something.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    last: AtomicU64,
}

impl Activity {
    pub(super) fn touch(&self) {
        self.last.store(millis(Instant::now()), Ordering::Relaxed);
    }

    /// When the connection becomes idle-expired, or `None` while a request is
    /// in flight.
    pub(super) fn expires(&self, idle: Duration, opened: Instant) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = self.last.load(Ordering::Relaxed).max(millis(opened));
        Some(last.saturating_add(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// A request in flight on a connection; ends (and counts as activity) when
/// dropped.
#[derive(Debug)]
pub(super) struct Busy(Arc<Activity>);

impl Busy {
    pub(super) fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
