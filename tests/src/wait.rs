//! Polling instead of sleeping: wait for a condition, and say what was awaited
//! when it never comes.

use std::fmt::Display;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Polls `check` until it returns true, for at most `timeout`.
///
/// `what` describes the awaited condition for the timeout error, e.g.
/// `"the aggregator to list 3 hosts"`.
pub fn wait_until(
    timeout: Duration,
    what: impl Display,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    wait_for(timeout, what, || Ok(check().then_some(())))
}

/// Polls `probe` until it returns `Ok(Some(value))`, for at most `timeout`.
///
/// `Ok(None)` means "not yet". An `Err` also means "not yet" (a server that is
/// still starting refuses connections), but the last one is reported if time
/// runs out — except [`Error::Exited`], which ends the wait at once: a process
/// that died will not come back.
pub fn wait_for<T>(
    timeout: Duration,
    what: impl Display,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error @ Error::Exited { .. }) => return Err(error),
            Err(error) => last_error = Some(error),
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: timeout,
                last: last_error
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default(),
            });
        }
        thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 3 / 2).min(Duration::from_millis(200));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before it is returned, so another process could take
/// it; ports handed out by this process are never handed out twice, which
/// covers tests running side by side in one test binary.
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _attempt in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(Error::io("bind 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(Error::io("read the address of a bound port"))?
            .port();
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err(Error::unexpected(
        "free_port",
        "no unused port on 127.0.0.1 after 64 tries",
    ))
}
