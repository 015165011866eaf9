//! The web listener: accepts TCP connections and, with TLS, shakes hands in
//! a task of its own under a deadline (a slow client cannot hold up the
//! accept loop), handing each connection to axum with who is on the other
//! end ([`WebPeer`]: the address and the client certificate, if one was
//! presented).
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (the next ones
//! wait in the kernel's backlog), [`HANDSHAKE_TIMEOUT`] per handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct WebPeer {
    /// Its address.
    pub addr: SocketAddr,
    /// The client certificate it presented over TLS (verified against the
    /// fleet CA by the handshake), if any.
    pub certificate: Option<Arc<CertificateDer<'static>>>,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// A connection, plain or TLS, holding its place among the
/// [`MAX_CONNECTIONS`] until it closes.
#[derive(Debug)]
pub struct WebConn {
    io: Io,
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The listener axum serves from.
#[derive(Debug)]
pub struct WebListener {
    local: SocketAddr,
    accepted: mpsc::Receiver<(WebConn, WebPeer)>,
}

impl WebListener {
    /// Accepts on `listener` (TLS with `tls`) in a background task, which
    /// ends when this is dropped.
    pub fn new(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, accepted) = mpsc::channel(16);
        tokio::spawn(accept_loop(listener, tls.map(TlsAcceptor::from), tx));
        WebListener { local, accepted }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<(WebConn, WebPeer)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of descriptors and the like: back off a little.
                    tracing::warn!(%error, "web listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let tx = tx.clone();
        match &tls {
            None => {
                let peer = WebPeer {
                    addr,
                    certificate: None,
                    tls: false,
                };
                let conn = WebConn {
                    io: Io::Plain(tcp),
                    _permit: permit,
                };
                if tx.send((conn, peer)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| Arc::new(c.clone().into_owned()));
                            let peer = WebPeer {
                                addr,
                                certificate,
                                tls: true,
                            };
                            let conn = WebConn {
                                io: Io::Tls(Box::new(stream)),
                                _permit: permit,
                            };
                            let _ = tx.send((conn, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(peer = %addr, %error, "web: TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(peer = %addr, "web: TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }
}

impl axum::serve::Listener for WebListener {
    type Io = WebConn;
    type Addr = WebPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (it cannot while this holds the
            // receiver, but never spin): wait for the shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(WebPeer {
            addr: self.local,
            certificate: None,
            tls: false,
        })
    }
}

impl AsyncRead for WebConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WebConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match &mut self.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, WebListener>>
    for WebPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, WebListener>) -> Self {
        stream.remote_addr().clone()
    }
}
