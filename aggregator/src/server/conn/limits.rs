//! How many connections this process can afford: the bounds, sized from the
//! open-files limit, and raising that limit at start.

use std::time::Duration;

/// File descriptors kept for everything but connections: the store, logs,
/// alert sinks, the metrics listener.
const RESERVED_FDS: u64 = 128;
/// The most connections served at once, whatever the descriptor limit.
pub(super) const MAX_CONNECTIONS: usize = 16_384;

/// The bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Established connections of both classes together.
    pub max_connections: usize,
    /// Established anonymous connections (TLS without a client certificate).
    pub max_anonymous: usize,
    /// Established anonymous connections from one address.
    pub max_anonymous_per_peer: usize,
    /// TLS handshakes in progress.
    pub max_handshakes: usize,
    /// TLS handshakes in progress from one address.
    pub max_handshakes_per_peer: usize,
    /// An anonymous connection with no request in flight is closed after this.
    pub idle_anonymous: Duration,
    /// A trusted connection with no request in flight is closed after this
    /// (agents heartbeat every 15 s by default, so theirs never idle).
    pub idle_trusted: Duration,
}

impl ConnLimits {
    /// The limits for a process allowed `nofile` open file descriptors.
    pub fn for_nofile(nofile: u64) -> Self {
        let usable = usize::try_from(nofile.saturating_sub(RESERVED_FDS))
            .unwrap_or(usize::MAX)
            .max(64);
        let max_connections = usable.min(MAX_CONNECTIONS);
        ConnLimits {
            max_connections,
            max_anonymous: (max_connections / 4).max(16),
            max_anonymous_per_peer: 32,
            max_handshakes: (max_connections / 4).max(16),
            max_handshakes_per_peer: 128,
            idle_anonymous: Duration::from_secs(10),
            idle_trusted: Duration::from_secs(300),
        }
    }

    /// The limits for this process's current descriptor limit.
    pub fn for_this_process() -> Self {
        Self::for_nofile(nofile_limit())
    }
}

/// The soft `RLIMIT_NOFILE` after [`raise_nofile_limit`].
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises the soft limit on open files to the hard limit, as a server should
/// (the soft default of 1,024 is for `select(2)`, which tokio does not use).
/// Returns the limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the open-files limit to the hard limit");
        }
    }
    nofile_limit()
}
