//! Marking requests as activity on their connection, so a connection with
//! a request in flight is never closed as idle.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::activity::Busy;
use super::slots::Conns;

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
