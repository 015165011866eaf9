//! Connections to the aggregator's listeners: how many, from whom, and for
//! how long they may sit idle.
//!
//! Every accepted connection holds a file descriptor and some memory until
//! it closes, and before authentication the server cannot tell an agent from
//! an attacker. So connections are admitted in two steps, each bounded:
//! - a **handshake** slot while TLS is negotiated (bounded in total and per
//!   peer address, and by the handshake deadline of [`super::tls`]);
//! - then an **established** slot of one of two classes. *Trusted*
//!   connections presented a client certificate the fleet CA signed (or the
//!   server runs in plain text, where there are no certificates); they may
//!   use every slot. *Anonymous* connections (TLS without a certificate:
//!   token-holding CLIs, or anybody) share a smaller pool, bounded per peer
//!   address too, so anonymous clients can never take the room the agents
//!   need.
//!
//! A connection with no request in flight for its class's idle time is
//! closed: HTTP/2 pings do not count as activity, requests do (the
//! [`Track`] layer marks them). The metrics listener, plain HTTP/1, counts
//! bytes read instead and also closes a connection at a maximum age, so a
//! request sent one byte at a time cannot hold it open.
//!
//! Every refusal is counted (`envparity_connections_refused_total`) and
//! logged through a [`Throttle`](super::throttle::Throttle) with the peer
//! address.
//!
//! One file per concern: `limits` sizes the bounds from the descriptor
//! limit, `slots` admits and counts connections per class and peer,
//! `activity` records requests in flight, `guarded` closes a connection once
//! idle or too old, `track` marks requests as activity, `accept` is the
//! plain-text accept loop and `http1` the metrics listener.

mod accept;
mod activity;
mod guarded;
mod http1;
mod limits;
mod slots;
mod track;

pub use accept::{accept, incoming_plain};
pub use activity::Activity;
pub use guarded::{Guarded, Idle};
pub use http1::{Http1Listener, METRICS_IDLE, METRICS_MAX_AGE, METRICS_MAX_CONNECTIONS};
pub use limits::{ConnLimits, nofile_limit, raise_nofile_limit};
pub use slots::{Class, Conns, Refusal, Slot};
pub use track::{Track, Tracked};

#[cfg(test)]
mod tests;
