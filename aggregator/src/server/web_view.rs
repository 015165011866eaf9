//! The web view's place in `serve`: its listener bound beside gRPC and
//! metrics (under the same plain-text rule), its pages served from a
//! `QueryApi` of their own over the same fleet and alerting, and who may see
//! them decided by the rules of queries (`crate::web` has the view itself).

use std::sync::Arc;

use anyhow::Context;
use envparity_proto::v1::query_service_server::QueryService;
use tokio::net::TcpListener;

use super::{QueryApi, ServeConfig, auth, check_address};
use crate::alert::Alerting;
use crate::fleet::Fleet;

/// The web view running, until [`WebView::stop`].
#[derive(Debug)]
pub(super) struct WebView {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Binds `config.web_listen`, if set, and serves the view there: over TLS
/// with the server's `tls` configuration, else in plain text where the rule
/// of gRPC allows it.
pub(super) async fn start(
    config: &ServeConfig,
    fleet: &Arc<Fleet>,
    alerting: &Arc<Alerting>,
    auth: &Arc<auth::Auth>,
    tls: Option<&rustls::ServerConfig>,
) -> anyhow::Result<Option<WebView>> {
    let Some(addr) = config.web_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the web view on {addr}"))?;
    let bound = listener.local_addr().context("web listener address")?;
    // The plain-text rule of gRPC, for the web view's own address.
    check_address(config, "web listen address", bound)?;
    let pages: Arc<dyn QueryService> = Arc::new(
        QueryApi::new(Arc::clone(fleet), Arc::clone(alerting)).with_auth(Arc::clone(auth)),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::web::serve(
        listener,
        tls.map(crate::web::tls_config),
        crate::web::Web::new(pages, fleet.generation().watch()),
        access(auth),
        async {
            stopped.await.ok();
        },
    ));
    Ok(Some(WebView { stop, task }))
}

impl WebView {
    /// Stops serving (requests in flight finish) and logs how it ended.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "web view failed"),
            Err(e) => tracing::error!(error = %e, "web view task failed"),
            Ok(Ok(())) => {}
        }
    }
}

/// Who may see the web view: the rules of queries. With query tokens, its
/// login checks a token exactly as a query's bearer token is checked.
fn access(auth: &Arc<auth::Auth>) -> crate::web::Access {
    if auth.tokens.is_none() {
        return crate::web::Access::certificates_only();
    }
    let auth = Arc::clone(auth);
    crate::web::Access::with_tokens(Arc::new(move |token: &str| {
        let Ok(bearer) = format!("Bearer {token}").parse() else {
            return false;
        };
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert("authorization", bearer);
        auth.query(&request).is_ok()
    }))
}
