//! Who may see the pages: the rules of queries (`server::auth`), applied to
//! the web listener's connections.
//!
//! - Over TLS, a client certificate of the fleet CA whose role (`OU`) is
//!   `envparity-query` or `envparity-admin` passes; any other certificate
//!   (an agent's) gets 403; none gets 401. The handshake verified the chain
//!   already ([`super::listener`]); this reads only the role.
//! - In plain text, pages are open to whoever reaches the (loopback, unless
//!   forced) address, as queries are, unless query tokens are configured:
//!   then every page is 401, since the login that would take a token is not
//!   built yet (docs/web.md).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use super::listener::WebPeer;
use crate::certs::{ADMIN_OU, QUERY_OU};

/// The access rule in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Query tokens are configured (plain text then refuses every page).
    pub tokens: bool,
}

/// Why a connection may not see the pages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No client certificate over TLS.
    #[error(
        "the web view needs a query client certificate of the fleet CA (see `envparity certs`); \
         token login is not built yet"
    )]
    NoCertificate,
    /// A certificate of another role.
    #[error(
        "certificate {name:?} has role {role:?}; the web view needs an {QUERY_OU} or {ADMIN_OU} certificate"
    )]
    Role {
        /// Its common name.
        name: String,
        /// Its organizational unit.
        role: String,
    },
    /// Plain text with query tokens configured.
    #[error(
        "queries need a token here, and the web view's token login is not built yet; use TLS with a query certificate"
    )]
    TokenNeeded,
}

impl Access {
    /// May `peer` see the pages?
    pub fn allows(&self, peer: &WebPeer) -> Result<(), Refusal> {
        if !peer.tls {
            return if self.tokens {
                Err(Refusal::TokenNeeded)
            } else {
                Ok(())
            };
        }
        let Some(der) = &peer.certificate else {
            return Err(Refusal::NoCertificate);
        };
        let (name, role) = subject(der.as_ref()).unwrap_or_default();
        if role == QUERY_OU || role == ADMIN_OU {
            Ok(())
        } else {
            Err(Refusal::Role { name, role })
        }
    }
}

/// A certificate's common name and organizational unit.
fn subject(der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some((name, role))
}

/// The middleware: a refused connection gets the refusal's page.
pub async fn check(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<WebPeer>,
    request: Request,
    next: Next,
) -> Response {
    match access.allows(&peer) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::info!(peer = %peer.addr, reason = %refusal, "web view refused");
            match refusal {
                Refusal::Role { .. } => WebError::forbidden(refusal.to_string()),
                _ => WebError::unauthorized(refusal.to_string()),
            }
            .into_response()
        }
    }
}
