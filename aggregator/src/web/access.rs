//! Who may see the pages: the rules of queries (`server::auth`), applied to
//! the web listener's connections.
//!
//! - Over TLS, a client certificate of the fleet CA whose role (`OU`) is
//!   `envparity-query` or `envparity-admin` passes; any other certificate
//!   (an agent's) gets 403. The handshake verified the chain already
//!   ([`super::listener`]); this reads only the role.
//! - Otherwise a live session of the token login passes
//!   ([`super::login`], [`super::session`]). The cookie is read here and
//!   nowhere else; the gRPC port never looks at cookies.
//! - Otherwise, when query tokens are configured, every page is 401 and
//!   points to the login; over TLS without tokens, 401 (a certificate is
//!   needed); in plain text without tokens, pages are open to whoever
//!   reaches the (loopback, unless forced) address, as queries are.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::attempts::Attempts;
use super::error::WebError;
use super::listener::WebPeer;
use super::session::{self, Sessions};
use crate::certs::{self, ADMIN_OU, QUERY_OU};

/// Checks a query token by the rule of gRPC queries: true when it is valid.
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The access rule in force, and the sessions of the token login.
#[derive(Clone, Default)]
pub struct Access {
    /// With query tokens configured: how to check one (the login is on).
    pub login: Option<TokenCheck>,
    /// The sessions signed in.
    pub sessions: Arc<Sessions>,
    /// Login attempts per address.
    pub attempts: Arc<Attempts>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("login", &self.login.is_some())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// Why a connection may not see the pages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No client certificate over TLS, and no token login.
    #[error(
        "the web view needs a query client certificate of the fleet CA (see `envparity certs --client`)"
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
    /// Neither a certificate nor a session, with the login on.
    #[error("sign in with a query token at /login (or present a query client certificate)")]
    SignIn,
}

impl Access {
    /// Pages open to all who reach them in plain text; over TLS, for query
    /// certificates only. No login.
    pub fn certificates_only() -> Self {
        Access::default()
    }

    /// [`Access::certificates_only`], and a token login checking tokens
    /// with `check`.
    pub fn with_tokens(check: TokenCheck) -> Self {
        Access {
            login: Some(check),
            ..Access::default()
        }
    }

    /// May `peer`, with the session id its cookies carry, see the pages at
    /// `now`?
    pub fn allows(
        &self,
        peer: &WebPeer,
        session_id: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        if let Some(der) = peer.certificate.as_ref().filter(|_| peer.tls) {
            let (name, role) =
                certs::subject(der.as_ref()).map_or_else(Default::default, |s| (s.name, s.role));
            return if role == QUERY_OU || role == ADMIN_OU {
                Ok(())
            } else {
                Err(Refusal::Role { name, role })
            };
        }
        if let Some(id) = session_id
            && self.sessions.check(id, now).is_some()
        {
            return Ok(());
        }
        match (&self.login, peer.tls) {
            (Some(_), _) => Err(Refusal::SignIn),
            (None, true) => Err(Refusal::NoCertificate),
            (None, false) => Ok(()),
        }
    }
}

/// The middleware: a refused connection gets the refusal's page.
pub async fn check(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<WebPeer>,
    request: Request,
    next: Next,
) -> Response {
    match access.allows(&peer, session::id(request.headers()), Instant::now()) {
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
