//! Connections that close themselves: after the idle time of their class
//! with no request in flight (or no byte read), or at a maximum age.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

use super::activity::{Activity, millis};
use super::slots::{Class, Conns, Slot, SlotKind};

impl Conns {
    /// Wraps an established connection: it closes once idle for its class's
    /// idle time with no request in flight (requests are marked by
    /// [`Track`](super::Track)).
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
}

/// What keeps a connection from being idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// A request in flight (marked by [`Track`](super::Track)); for HTTP/2,
    /// where pings flow on idle connections.
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
