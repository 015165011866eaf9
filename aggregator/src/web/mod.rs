//! The web view (`envparity serve --web-listen ADDR`, docs/web.md): the
//! fleet's parity as server-rendered pages, on a listener of its own beside
//! gRPC and metrics.
//!
//! Every page is built from the answers of the query API itself: the
//! handlers call the same [`QueryService`] the gRPC server serves, in
//! process, so a page cannot disagree with `envparity status -o json` at the
//! same moment, and nothing here reads or copies the fleet. That is also why
//! this module imports nothing of `server` (which starts it): it is handed
//! the query service and, with TLS, the server's rustls configuration.
//!
//! The pages are plain HTML (every view is a GET link, all of its state in
//! the URL) that work without script; our one small script ([`assets`])
//! keeps an open page current: it waits for the fleet's change generation
//! on [`events`] (server-sent events) and asks for the page again when it
//! moved, or polls conditionally ([`etag`]) where events fail. Each
//! response carries the headers of [`headers`]; every string that came from
//! an agent is escaped by the templates ([`maud`] escapes whatever it
//! interpolates). Who may see the pages is decided per request by
//! [`access`]: a query certificate, or a session of the token login
//! ([`login`], [`session`]). One file per page, plus the pieces they share
//! ([`layout`], [`table`], [`params`], [`answers`], [`timeline`]), and
//! the reader's light or dark choice ([`theme`]).

mod access;
mod alerts;
mod answers;
mod assets;
mod attempts;
mod cookies;
mod diff;
mod error;
mod error_page;
mod etag;
mod events;
#[cfg(test)]
mod events_tests;
mod findings;
mod gate;
mod headers;
mod host;
mod hosts;
mod layout;
mod listener;
mod login;
#[cfg(test)]
mod login_tests;
mod overview;
#[cfg(test)]
mod pages_tests;
mod params;
mod policy;
mod service;
mod session;
mod table;
mod theme;
mod timeline;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use envparity_proto::v1::query_service_server::QueryService;
use tokio::net::TcpListener;

pub use access::{Access, TokenCheck};
pub use error::WebError;
pub use events::Changes;
pub use listener::WebPeer;

/// What every handler is handed: the query service the pages are built
/// from, and the change generation their live updates wait for.
#[derive(Clone)]
pub struct Web {
    query: Arc<dyn QueryService>,
    changes: Changes,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

impl Web {
    /// Pages built from `query`'s answers, live with `generation` (the
    /// fleet's [`crate::fleet::Generation::watch`]).
    pub fn new(
        query: Arc<dyn QueryService>,
        generation: tokio::sync::watch::Receiver<u64>,
    ) -> Self {
        Web {
            query,
            changes: Changes::new(generation),
        }
    }
}

/// The ALPN protocols the web listener offers over TLS: browsers speak
/// either.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The server's TLS configuration for the web listener: the same
/// certificate, key and client CA (a client certificate stays optional),
/// offering HTTP/2 and HTTP/1.1.
pub fn tls_config(server: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = server.clone();
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Every route of the view, behind the access rule and the headers.
pub fn router(web: Web, access: Access) -> axum::Router {
    use axum::routing::{get, post};
    let access = Arc::new(access);
    // Signing in and out is open to all: it is how access is gained.
    let login = axum::Router::new()
        .route("/login", get(login::show).post(login::login))
        .route("/logout", post(login::logout))
        .with_state(Arc::clone(&access));
    axum::Router::new()
        .route("/", get(overview::page))
        .route("/service", get(service::page))
        .route("/diff", get(diff::page))
        .route("/findings", get(findings::page))
        .route("/hosts", get(hosts::page))
        .route("/host", get(host::page))
        .route("/gate", get(gate::page))
        .route("/alerts", get(alerts::page))
        .route("/policy", get(policy::page))
        .route("/events", get(events::stream))
        .fallback(get(not_found))
        .with_state(web)
        .layer(axum::middleware::from_fn(etag::conditional))
        .layer(axum::middleware::from_fn_with_state(access, access::check))
        .merge(login)
        .route("/static/{file}", get(assets::serve))
        // A preference, open to all like the login page that shows it.
        .route("/theme", get(theme::set))
        // Every page, error and refusal in the reader's theme.
        .layer(axum::middleware::from_fn(theme::scope))
        // Outermost, so that assets, refusals and errors carry them too.
        .layer(axum::middleware::from_fn(headers::secure))
}

async fn not_found(uri: axum::http::Uri) -> WebError {
    WebError::not_found(format!("there is no page at {}", uri.path()))
}

/// Serves the view on `listener` until `shutdown` resolves: over TLS with
/// `tls` (see [`tls_config`]), else in plain text (which the caller has
/// allowed for this address, under the rules of gRPC).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    web: Web,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local: SocketAddr = listener.local_addr().context("web listener address")?;
    let changes = web.changes.clone();
    let app = router(web, access).into_make_service_with_connect_info::<WebPeer>();
    tracing::info!(web = %local, tls = tls.is_some(), "serving the web view");
    axum::serve(listener::WebListener::new(listener, tls), app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Event streams never end by themselves: end them, so that the
            // requests in flight can finish.
            changes.close();
        })
        .await
        .with_context(|| format!("web server on {local}"))
}
