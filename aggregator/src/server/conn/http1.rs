//! The metrics listener: plain HTTP/1 connections, few at once, closed when
//! silent or old.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::accept::accept;
use super::guarded::Guarded;
use super::limits::ConnLimits;
use super::slots::{Class, Conns};
use crate::metrics::Metrics;
use crate::server::throttle::{INTERVAL, Throttle};

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
