//! Accepting TCP connections: retrying a failed accept without spinning, and
//! the plain-text stream of guarded connections served over gRPC.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::guarded::Guarded;
use super::slots::{Class, Conns};
use crate::metrics::Metrics;
use crate::server::throttle::{INTERVAL, Throttle};
use crate::warn_throttled;

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
