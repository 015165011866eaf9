//! What a standby does with the connections it is sent: passes each, as
//! bytes, to the replica holding the writer lease (`writer.rs`), at the
//! address that replica wrote into the lease row (`--advertise`). TLS goes
//! through untouched and ends at the holder, which authenticates the
//! caller as if it had connected directly; the standby reads nothing of
//! it. So any replica accepts any connection, whatever balancer is in
//! front (a Kubernetes Service sends to every ready pod).
//!
//! Bounded as the server itself is: at most half as many connections at
//! once as the server takes ([`super::conn::ConnLimits`]), each taking two
//! descriptors; the holder then applies its own bounds to them, the standby
//! being their peer address. One arriving beyond that,
//! or whose holder does not answer within [`CONNECT_TIMEOUT`], is closed
//! at once, and the client retries (agents back off and try again).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How long connecting to the holder may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections on `listener` and forwards each to the address
/// `holder` says, at most `max` at once. Accepts nothing until a holder is
/// known: meanwhile connections wait in the listen backlog, and are served
/// by this replica itself if it takes the lease first (a lone replica
/// starting). Runs until dropped.
pub async fn forward(
    listener: &TcpListener,
    mut holder: watch::Receiver<Option<String>>,
    max: usize,
) {
    if holder.wait_for(Option::is_some).await.is_err() {
        // The lease's watcher is gone: this replica is being stopped.
        return std::future::pending().await;
    }
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, typically: let them come back.
                tracing::warn!(error = %e, "standby: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, max, "standby: too many forwarded connections; closed");
            continue;
        };
        let Some(to) = holder.borrow().clone() else {
            continue;
        };
        tokio::spawn(async move {
            let _slot = slot;
            pass(client, &to).await;
        });
    }
}

/// Copies `client`'s bytes to `to` and back until either side closes.
async fn pass(mut client: TcpStream, to: &str) {
    let upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await;
    let mut upstream = match upstream {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(e)) => {
            tracing::warn!(holder = %to, error = %e, "standby: cannot reach the serving replica; connection closed");
            return;
        }
        Err(_) => {
            tracing::warn!(holder = %to, "standby: the serving replica did not answer; connection closed");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(holder = %to, error = %e, "standby: forwarded connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_go_to_the_holder_and_back_and_nowhere_without_one() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = holder.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = holder.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 5];
                    s.read_exact(&mut buf).await.unwrap();
                    buf.reverse();
                    s.write_all(&buf).await.unwrap();
                });
            }
        });
        let standby = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = standby.local_addr().unwrap();
        let (tell, told) = watch::channel(None);
        let forwarding = tokio::spawn(async move { forward(&standby, told, 2).await });
        // No holder known yet: the connection waits, unanswered, and is
        // passed on once one is.
        let mut s = TcpStream::connect(front).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        let early = tokio::time::timeout(Duration::from_millis(200), s.read_exact(&mut buf)).await;
        assert!(early.is_err(), "answered without a holder");
        tell.send_replace(Some(at));
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"olleh");
        // Two at once at most: a third is closed.
        let _second = TcpStream::connect(front).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut third = TcpStream::connect(front).await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(third.read_to_end(&mut rest).await.unwrap(), 0);
        forwarding.abort();
    }
}
