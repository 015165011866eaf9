//! Admission and accounting: a slot per connection, by class and by peer
//! address, refused over a limit and given back when the connection closes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};

use super::activity::Activity;
use super::limits::ConnLimits;
use crate::metrics::Metrics;
use crate::server::throttle::{INTERVAL, Throttle};
use crate::warn_throttled;

/// Who a connection is, as far as the transport knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Presented a client certificate of the fleet CA, or plain text.
    Trusted,
    /// TLS without a client certificate.
    Anonymous,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// All handshake slots are taken.
    Handshakes,
    /// This address has all its handshake slots.
    HandshakesPerPeer,
    /// All connection slots are taken.
    Connections,
    /// All anonymous slots are taken.
    Anonymous,
    /// This address has all its anonymous slots.
    AnonymousPerPeer,
}

impl Refusal {
    /// The label of the refusal in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Handshakes => "handshakes",
            Refusal::HandshakesPerPeer => "handshakes_per_peer",
            Refusal::Connections => "connections",
            Refusal::Anonymous => "anonymous",
            Refusal::AnonymousPerPeer => "anonymous_per_peer",
        }
    }

    /// Every refusal, for metrics.
    pub const ALL: [Refusal; 5] = [
        Refusal::Handshakes,
        Refusal::HandshakesPerPeer,
        Refusal::Connections,
        Refusal::Anonymous,
        Refusal::AnonymousPerPeer,
    ];
}

#[derive(Debug, Default)]
pub(super) struct Counts {
    established: usize,
    anonymous: usize,
    handshakes: usize,
    pub(super) anonymous_by_peer: HashMap<IpAddr, usize>,
    handshakes_by_peer: HashMap<IpAddr, usize>,
}

fn dec(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

/// The connections of one listener.
#[derive(Debug)]
pub struct Conns {
    pub(super) limits: ConnLimits,
    counts: Mutex<Counts>,
    /// The request activity of each live connection, by peer address.
    pub(super) live: Mutex<HashMap<SocketAddr, Weak<Activity>>>,
    pub(super) metrics: Arc<Metrics>,
    refused: Throttle,
}

impl Conns {
    /// Connections bounded by `limits`, refusals counted in `metrics`.
    pub fn new(limits: ConnLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.register_connection_limits(Refusal::ALL.map(Refusal::as_str));
        Arc::new(Conns {
            limits,
            counts: Mutex::default(),
            live: Mutex::default(),
            metrics,
            refused: Throttle::new(INTERVAL),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    pub(super) fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refuse(&self, peer: SocketAddr, why: Refusal) -> Refusal {
        self.metrics.connection_refused(why.as_str());
        warn_throttled!(self.refused, %peer, limit = why.as_str(), "connection refused: over a connection limit");
        why
    }

    /// A slot for a TLS handshake from `peer`, or why not.
    pub fn handshake(self: &Arc<Self>, peer: SocketAddr) -> Result<Slot, Refusal> {
        let ip = peer.ip();
        {
            let mut c = self.counts();
            let by_peer = c.handshakes_by_peer.get(&ip).copied().unwrap_or(0);
            let refusal = if c.handshakes >= self.limits.max_handshakes {
                Some(Refusal::Handshakes)
            } else if by_peer >= self.limits.max_handshakes_per_peer {
                Some(Refusal::HandshakesPerPeer)
            } else {
                c.handshakes += 1;
                *c.handshakes_by_peer.entry(ip).or_default() += 1;
                None
            };
            if let Some(why) = refusal {
                drop(c);
                return Err(self.refuse(peer, why));
            }
        }
        Ok(Slot {
            conns: Arc::clone(self),
            peer,
            kind: SlotKind::Handshake,
        })
    }

    /// A slot for an established connection of `class` from `peer`, or why
    /// not.
    pub fn establish(self: &Arc<Self>, peer: SocketAddr, class: Class) -> Result<Slot, Refusal> {
        let ip = peer.ip();
        let refusal = {
            let mut c = self.counts();
            let anonymous_by_peer = c.anonymous_by_peer.get(&ip).copied().unwrap_or(0);
            let refusal = if c.established >= self.limits.max_connections {
                Some(Refusal::Connections)
            } else if class == Class::Anonymous && c.anonymous >= self.limits.max_anonymous {
                Some(Refusal::Anonymous)
            } else if class == Class::Anonymous
                && anonymous_by_peer >= self.limits.max_anonymous_per_peer
            {
                Some(Refusal::AnonymousPerPeer)
            } else {
                None
            };
            if refusal.is_none() {
                c.established += 1;
                if class == Class::Anonymous {
                    c.anonymous += 1;
                    *c.anonymous_by_peer.entry(ip).or_default() += 1;
                }
            }
            refusal
        };
        match refusal {
            Some(why) => Err(self.refuse(peer, why)),
            None => Ok(Slot {
                conns: Arc::clone(self),
                peer,
                kind: SlotKind::Established(class),
            }),
        }
    }

    pub(super) fn activity(&self, peer: SocketAddr) -> Option<Arc<Activity>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .and_then(Weak::upgrade)
    }

    /// Established connections now: (all, anonymous).
    pub fn established(&self) -> (usize, usize) {
        let c = self.counts();
        (c.established, c.anonymous)
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum SlotKind {
    Handshake,
    Established(Class),
}

/// A connection's place in the counts, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    conns: Arc<Conns>,
    pub(super) peer: SocketAddr,
    pub(super) kind: SlotKind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let ip = self.peer.ip();
        let mut c = self.conns.counts();
        match self.kind {
            SlotKind::Handshake => {
                c.handshakes -= 1;
                dec(&mut c.handshakes_by_peer, ip);
            }
            SlotKind::Established(class) => {
                c.established -= 1;
                if class == Class::Anonymous {
                    c.anonymous -= 1;
                    dec(&mut c.anonymous_by_peer, ip);
                }
                drop(c);
                let mut live = self.conns.live.lock().unwrap_or_else(|p| p.into_inner());
                if live.get(&self.peer).is_some_and(|w| w.strong_count() == 0) {
                    live.remove(&self.peer);
                }
            }
        }
    }
}
