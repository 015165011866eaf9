//! Login attempts per client address: at most [`MAX_ATTEMPTS`] a
//! [`WINDOW`], so that query tokens cannot be guessed at speed. The login
//! form counts them ([`super::login`]); the access rules hold the count
//! ([`super::access::Access`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Login attempts a client address may make per [`WINDOW`].
pub const MAX_ATTEMPTS: u32 = 10;
/// The window of [`MAX_ATTEMPTS`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most (the oldest windows are forgotten first).
const MAX_TRACKED: usize = 10_000;

/// Login attempts per client address, in fixed windows.
#[derive(Debug, Default)]
pub struct Attempts {
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Attempts {
    /// Counts an attempt from `ip` at `now`; false when over the limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= MAX_ATTEMPTS
    }
}
