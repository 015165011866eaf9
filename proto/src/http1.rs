//! The metrics listeners' HTTP server, shared by both daemons: HTTP/1 only.
//!
//! Not `axum::serve`, which also takes HTTP/2 without TLS (h2c) once axum's
//! `http2` feature is on (the aggregator's web view turns it on for the whole
//! workspace). A metrics listener bounds its connections, and one HTTP/2
//! connection could carry many scrapes at once past that bound.

use std::future::Future;

/// Serves `app` on `listener` over HTTP/1 only until `shutdown` resolves.
/// Connections already accepted finish on their own.
pub async fn serve<L: axum::serve::Listener>(
    mut listener: L,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // A connection that ends badly (a reset, a malformed request,
            // its idle or age limit) is the listener's business, not an
            // error of the server.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .await;
        });
    }
}
