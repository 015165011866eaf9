//! The web listener: accepts TCP connections and, with TLS, shakes hands in
//! a task of its own under a deadline (a slow client cannot hold up the
//! accept loop), handing each connection to axum with who is on the other
//! end ([`WebPeer`]: the address and the client certificate, if one was
//! presented).
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (the next ones
//! wait in the kernel's backlog), [`HANDSHAKE_TIMEOUT`] per handshake, and
//! a connection that moves no byte for [`IDLE`] is closed (a client that
//! sends half a request and waits cannot keep its place).

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
/// How long a connection may move no byte either way.
pub const IDLE: Duration = Duration::from_secs(60);

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
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    _permit: OwnedSemaphorePermit,
}

impl WebConn {
    fn new(io: Io, idle: Duration, permit: OwnedSemaphorePermit) -> Self {
        WebConn {
            io,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            _permit: permit,
        }
    }

    /// A byte moved: the idle time starts again.
    fn touch(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// Whether the connection has been idle too long (registering a wake-up
    /// for when it will have been).
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "web connection idle for too long",
    )
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
        Self::with_idle(listener, tls, IDLE)
    }

    /// [`WebListener::new`], closing connections idle for `idle`.
    pub fn with_idle(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        idle: Duration,
    ) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, accepted) = mpsc::channel(16);
        tokio::spawn(accept_loop(listener, tls.map(TlsAcceptor::from), idle, tx));
        WebListener { local, accepted }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    idle: Duration,
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
                let conn = WebConn::new(Io::Plain(tcp), idle, permit);
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
                            let conn = WebConn::new(Io::Tls(Box::new(stream)), idle, permit);
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
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match polled {
            std::task::Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                std::task::Poll::Ready(r)
            }
            std::task::Poll::Pending if this.expired(cx) => {
                std::task::Poll::Ready(Err(idle_error()))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl AsyncWrite for WebConn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Io::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        match polled {
            std::task::Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.touch();
                }
                std::task::Poll::Ready(Ok(n))
            }
            std::task::Poll::Pending if this.expired(cx) => {
                std::task::Poll::Ready(Err(idle_error()))
            }
            other => other,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A real listener serving `ok` at `/`, closing idle connections after
    /// `idle`.
    async fn server(idle: Duration) -> SocketAddr {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .into_make_service_with_connect_info::<WebPeer>();
        tokio::spawn(async move {
            axum::serve(WebListener::with_idle(tcp, None, idle), app)
                .await
                .unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn a_client_that_sends_half_a_request_and_waits_is_closed_when_idle() {
        let addr = server(Duration::from_millis(300)).await;
        let mut full = tokio::net::TcpStream::connect(addr).await.unwrap();
        full.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        full.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );

        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost:").await.unwrap();
        let start = Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest))
            .await
            .expect("the idle connection was not closed");
        assert!(
            read.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
            "{rest:?}"
        );
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }
}
