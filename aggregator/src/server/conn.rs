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
//! logged through a [`Throttle`] with the peer address.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use super::throttle::{INTERVAL, Throttle};
use crate::metrics::Metrics;
use crate::warn_throttled;

/// File descriptors kept for everything but connections: the store, logs,
/// alert sinks, the metrics listener.
const RESERVED_FDS: u64 = 128;
/// The most connections served at once, whatever the descriptor limit.
const MAX_CONNECTIONS: usize = 16_384;

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
struct Counts {
    established: usize,
    anonymous: usize,
    handshakes: usize,
    anonymous_by_peer: HashMap<IpAddr, usize>,
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
    limits: ConnLimits,
    counts: Mutex<Counts>,
    /// The request activity of each live connection, by peer address.
    live: Mutex<HashMap<SocketAddr, Weak<Activity>>>,
    metrics: Arc<Metrics>,
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

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
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

    /// Wraps an established connection: it closes once idle for its class's
    /// idle time with no request in flight (requests are marked by [`Track`]).
    pub fn guard<IO>(self: &Arc<Self>, io: IO, slot: Slot) -> Guarded<IO> {
        let idle = match slot.kind {
            SlotKind::Established(Class::Anonymous) => self.limits.idle_anonymous,
            _ => self.limits.idle_trusted,
        };
        let activity = Arc::new(Activity::default());
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slot.peer, Arc::downgrade(&activity));
        Guarded::new(io, slot, activity, idle, Idle::Requests, None)
    }

    fn activity(&self, peer: SocketAddr) -> Option<Arc<Activity>> {
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
enum SlotKind {
    Handshake,
    Established(Class),
}

/// A connection's place in the counts, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    conns: Arc<Conns>,
    peer: SocketAddr,
    kind: SlotKind,
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

/// Milliseconds since an arbitrary process-wide origin.
fn millis(at: Instant) -> u64 {
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
    fn touch(&self) {
        self.last.store(millis(Instant::now()), Ordering::Relaxed);
    }

    /// When the connection becomes idle-expired, or `None` while a request is
    /// in flight.
    fn expires(&self, idle: Duration, opened: Instant) -> Option<u64> {
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
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
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

/// What keeps a connection from being idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// A request in flight (marked by [`Track`]); for HTTP/2, where pings
    /// flow on idle connections.
    Requests,
    /// Bytes read; for HTTP/1.
    Reads,
}

/// A connection that closes itself (its next read fails with `TimedOut`)
/// once idle too long, or at a maximum age, and gives back its [`Slot`] when
/// dropped.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    // Dropped before the slot, so that the slot finds the activity gone and
    // takes its entry out of the live map.
    activity: Arc<Activity>,
    _slot: Slot,
    idle: Duration,
    mode: Idle,
    opened: Instant,
    max_age: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Guarded<IO> {
    fn new(
        io: IO,
        slot: Slot,
        activity: Arc<Activity>,
        idle: Duration,
        mode: Idle,
        max_age: Option<Duration>,
    ) -> Self {
        let opened = Instant::now();
        Guarded {
            io,
            _slot: slot,
            activity,
            idle,
            mode,
            opened,
            max_age: max_age.map(|age| opened + age),
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// A plain HTTP/1 connection: closed after `idle` without a byte read, or
    /// at `max_age` whatever it does.
    pub fn http1(io: IO, slot: Slot, idle: Duration, max_age: Duration) -> Self {
        Self::new(
            io,
            slot,
            Arc::new(Activity::default()),
            idle,
            Idle::Reads,
            Some(max_age),
        )
    }

    /// Whether the connection must close now; otherwise arms the timer for
    /// the next check.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let now = Instant::now();
            if self.max_age.is_some_and(|at| now >= at) {
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection reached its maximum age",
                ));
            }
            let next = match self.activity.expires(self.idle, self.opened) {
                Some(at) if at <= millis(now) => {
                    tracing::debug!(idle = ?self.idle, "idle connection closed");
                    return Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    ));
                }
                Some(at) => now + Duration::from_millis(at - millis(now)),
                None => now + self.idle,
            };
            let next = self.max_age.map_or(next, |at| next.min(at));
            self.timer.as_mut().reset(next.into());
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.mode == Idle::Reads && buf.filled().len() > before {
            this.activity.touch();
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Accepts the next connection on `listener`. A failure (out of file
/// descriptors, say) is counted, logged through `throttle` and retried after
/// a pause, so a full descriptor table neither spins nor floods the log.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    metrics: &Metrics,
    throttle: &Throttle,
) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                metrics.accept_failed();
                warn_throttled!(throttle, %error, "accept failed; retrying in 50 ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Plain-text connections accepted on `listener`, each in an established
/// slot of [`Class::Trusted`] (there are no certificates to tell agents by).
pub fn incoming_plain(
    listener: tokio::net::TcpListener,
    conns: Arc<Conns>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Guarded<tokio::net::TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let throttle = Throttle::new(INTERVAL);
        loop {
            let (tcp, peer) = accept(&listener, &conns.metrics, &throttle).await;
            if tx.is_closed() {
                return;
            }
            let Ok(slot) = conns.establish(peer, Class::Trusted) else {
                continue;
            };
            if tx.send(Ok(conns.guard(tcp, slot))).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The metrics listener: plain HTTP/1, a few connections at once, each
/// closed after [`METRICS_IDLE`] without a byte read or at [`METRICS_MAX_AGE`]
/// (a scrape takes well under a second; Prometheus reconnects).
#[derive(Debug)]
pub struct Http1Listener {
    listener: tokio::net::TcpListener,
    conns: Arc<Conns>,
    throttle: Throttle,
}

/// How long a metrics connection may send nothing.
pub const METRICS_IDLE: Duration = Duration::from_secs(10);
/// How long a metrics connection may stay open at all.
pub const METRICS_MAX_AGE: Duration = Duration::from_secs(60);
/// Metrics connections served at once.
pub const METRICS_MAX_CONNECTIONS: usize = 64;

impl Http1Listener {
    /// Guards the connections accepted on `listener`.
    pub fn new(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) -> Self {
        let limits = ConnLimits {
            max_connections: METRICS_MAX_CONNECTIONS,
            ..ConnLimits::for_this_process()
        };
        Http1Listener {
            listener,
            conns: Conns::new(limits, metrics),
            throttle: Throttle::new(INTERVAL),
        }
    }
}

impl axum::serve::Listener for Http1Listener {
    type Io = Guarded<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, peer) = accept(&self.listener, &self.conns.metrics, &self.throttle).await;
            if let Ok(slot) = self.conns.establish(peer, Class::Trusted) {
                return (
                    Guarded::http1(tcp, slot, METRICS_IDLE, METRICS_MAX_AGE),
                    peer,
                );
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// The peer address tonic put in a request's extensions.
fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let ext = request.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

/// A tower layer marking each request as activity on its connection, so a
/// connection with a request in flight is never closed as idle.
#[derive(Debug, Clone)]
pub struct Track(pub Arc<Conns>);

impl<S> tower::Layer<S> for Track {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tracked {
            inner,
            conns: Arc::clone(&self.0),
        }
    }
}

/// The service of [`Track`].
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    conns: Arc<Conns>,
}

impl<S, B> tower::Service<http::Request<B>> for Tracked<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let busy = peer_of(&request)
            .and_then(|peer| self.conns.activity(peer))
            .map(Busy::new);
        let response = self.inner.call(request);
        Box::pin(async move {
            let out = response.await;
            drop(busy);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(limits: ConnLimits) -> Arc<Conns> {
        Conns::new(limits, Arc::new(Metrics::new()))
    }

    fn at(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn limits_follow_the_descriptor_limit_and_keep_room_for_trusted_peers() {
        let small = ConnLimits::for_nofile(1_024);
        assert_eq!(small.max_connections, 896);
        assert!(small.max_anonymous < small.max_connections);
        let big = ConnLimits::for_nofile(1 << 20);
        assert_eq!(big.max_connections, MAX_CONNECTIONS);
    }

    #[test]
    fn anonymous_connections_cannot_take_the_trusted_room() {
        let limits = ConnLimits {
            max_connections: 10,
            max_anonymous: 4,
            max_anonymous_per_peer: 3,
            ..ConnLimits::for_nofile(1_024)
        };
        let c = conns(limits);
        let attacker = |port| at([10, 0, 0, 1], port);
        let mut held = Vec::new();
        for port in 0..3 {
            held.push(c.establish(attacker(port), Class::Anonymous).unwrap());
        }
        assert_eq!(
            c.establish(attacker(9), Class::Anonymous).unwrap_err(),
            Refusal::AnonymousPerPeer
        );
        held.push(c.establish(at([10, 0, 0, 2], 1), Class::Anonymous).unwrap());
        assert_eq!(
            c.establish(at([10, 0, 0, 3], 1), Class::Anonymous)
                .unwrap_err(),
            Refusal::Anonymous
        );
        // Agents still get the other six slots, then nobody does.
        for port in 0..6 {
            held.push(
                c.establish(at([10, 1, 0, 1], port), Class::Trusted)
                    .unwrap(),
            );
        }
        assert_eq!(
            c.establish(at([10, 1, 0, 2], 1), Class::Trusted)
                .unwrap_err(),
            Refusal::Connections
        );
        assert_eq!(c.established(), (10, 4));
        // Slots come back when connections close.
        held.clear();
        assert_eq!(c.established(), (0, 0));
        assert!(c.counts().anonymous_by_peer.is_empty());
        c.establish(attacker(1), Class::Anonymous).unwrap();
    }

    #[test]
    fn handshakes_are_bounded_per_peer_and_in_total() {
        let limits = ConnLimits {
            max_handshakes: 3,
            max_handshakes_per_peer: 2,
            ..ConnLimits::for_nofile(1_024)
        };
        let c = conns(limits);
        let a = c.handshake(at([10, 0, 0, 1], 1)).unwrap();
        let _b = c.handshake(at([10, 0, 0, 1], 2)).unwrap();
        assert_eq!(
            c.handshake(at([10, 0, 0, 1], 3)).unwrap_err(),
            Refusal::HandshakesPerPeer
        );
        let _c = c.handshake(at([10, 0, 0, 2], 1)).unwrap();
        assert_eq!(
            c.handshake(at([10, 0, 0, 3], 1)).unwrap_err(),
            Refusal::Handshakes
        );
        drop(a);
        c.handshake(at([10, 0, 0, 3], 1)).unwrap();
    }

    #[tokio::test]
    async fn an_idle_connection_closes_and_a_busy_one_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let limits = ConnLimits {
            idle_anonymous: Duration::from_millis(200),
            ..ConnLimits::for_nofile(1_024)
        };
        let c = conns(limits);
        let peer = at([127, 0, 0, 1], 4242);
        let (client, server) = tokio::io::duplex(64);
        let slot = c.establish(peer, Class::Anonymous).unwrap();
        let mut guarded = c.guard(server, slot);
        // A request in flight keeps it open past the idle time...
        let busy = Busy::new(c.activity(peer).unwrap());
        let mut buf = [0u8; 8];
        let mut client = client;
        let read = tokio::time::timeout(Duration::from_millis(500), guarded.read(&mut buf)).await;
        assert!(read.is_err(), "closed while a request was in flight");
        drop(busy);
        // ...and once it ends, the connection closes after the idle time,
        // even though the peer keeps writing (pings are not requests).
        client.write_all(b"ping").await.unwrap();
        let started = Instant::now();
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(2), guarded.read(&mut buf)).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => break e,
                Err(_) => panic!("an idle connection stayed open"),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(150));
        drop(guarded);
        assert_eq!(c.established(), (0, 0));
        assert!(c.activity(peer).is_none());
        assert!(
            c.live.lock().unwrap().is_empty(),
            "a closed connection left its entry behind"
        );
    }

    #[tokio::test]
    async fn an_http1_connection_closes_at_its_maximum_age_while_trickling() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let c = conns(ConnLimits::for_nofile(1_024));
        let (mut client, server) = tokio::io::duplex(64);
        let slot = c.establish(at([127, 0, 0, 1], 1), Class::Trusted).unwrap();
        let mut guarded = Guarded::http1(
            server,
            slot,
            Duration::from_millis(300),
            Duration::from_millis(600),
        );
        let writer = tokio::spawn(async move {
            // One byte every 100 ms: never idle, but never done either.
            for _ in 0..30 {
                if client.write_all(b"G").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let err = loop {
            match guarded.read(&mut buf).await {
                Ok(0) => panic!("unexpected end of stream"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        writer.abort();
    }
}
