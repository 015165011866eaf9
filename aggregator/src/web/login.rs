//! The token login: `GET /login` shows a form, `POST /login` takes a query
//! token (checked by the same rule as gRPC queries' bearer tokens) and
//! answers with a session cookie ([`super::session`]), `POST /logout` ends
//! the session. Both POSTs need an `Origin` header naming this very origin
//! (a form on another site cannot sign anyone in or out), and login
//! attempts are limited per client address ([`super::attempts`]), so that
//! tokens cannot be guessed at speed.
//!
//! The routes exist only when query tokens are configured; without, the
//! login page says so (404).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};

use super::access::Access;
use super::error::WebError;
use super::layout;
use super::listener::WebPeer;
use super::session;

/// The largest login form accepted.
const MAX_FORM_BYTES: usize = 4096;

/// Refuses a POST whose `Origin` is not this server's own. Under our
/// `Referrer-Policy: no-referrer`, browsers send `Origin: null` even for a
/// form of our own pages; then the browser's `Sec-Fetch-Site: same-origin`
/// (which no page of another site can make it send) vouches instead.
fn same_origin(headers: &HeaderMap, uri: &Uri, peer: &WebPeer) -> Result<(), WebError> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin = headers.get(ORIGIN).and_then(|o| o.to_str().ok());
    let scheme = if peer.tls { "https" } else { "http" };
    match (origin, host) {
        (Some(origin), Some(host)) if origin == format!("{scheme}://{host}") => Ok(()),
        (Some("null"), _)
            if headers
                .get("sec-fetch-site")
                .is_some_and(|v| v == "same-origin") =>
        {
            Ok(())
        }
        (origin, _) => Err(WebError::forbidden(format!(
            "this form may only be sent from this site's own pages (Origin {:?})",
            origin.unwrap_or("absent")
        ))),
    }
}

fn form(message: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        form method="post" action="/login" {
            p {
                label {
                    "Query token (" code { "envparity query-token" } " makes one)"
                    br;
                    input type="password" name="token" autocomplete="off" required;
                }
            }
            button type="submit" { "Sign in" }
        }
        form method="post" action="/logout" {
            p { "Signed in already? " button type="submit" { "Sign out" } }
        }
    }
}

fn page(status: StatusCode, message: Option<&str>) -> Response {
    (
        status,
        Html(layout::page("Sign in", None, form(message)).into_string()),
    )
        .into_response()
}

/// `GET /login`.
pub async fn show(State(access): State<Arc<Access>>) -> Response {
    if access.login.is_none() {
        return WebError::not_found("token login is off: no query tokens are configured")
            .into_response();
    }
    page(StatusCode::OK, None)
}

/// `POST /login`.
pub async fn login(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<WebPeer>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(check) = &access.login else {
        return WebError::not_found("token login is off: no query tokens are configured")
            .into_response();
    };
    if let Err(e) = same_origin(&headers, &uri, &peer) {
        return e.into_response();
    }
    if !access.attempts.allow(peer.addr.ip(), Instant::now()) {
        tracing::warn!(peer = %peer.addr, "web: login attempts over the limit");
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many attempts from this address; wait a minute."),
        );
    }
    if body.len() > MAX_FORM_BYTES {
        return WebError::bad_request("the login form is too large").into_response();
    }
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if token.is_empty() || !check(&token) {
        tracing::info!(peer = %peer.addr, "web: login with an unknown token refused");
        return page(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
    }
    match access.sessions.open("query token", Instant::now()) {
        Ok(id) => {
            tracing::info!(peer = %peer.addr, "web: signed in with a query token");
            (
                StatusCode::SEE_OTHER,
                [
                    (SET_COOKIE, session::set_cookie(&id)),
                    (LOCATION, "/".to_owned()),
                ],
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "web: cannot open a session");
            page(StatusCode::SERVICE_UNAVAILABLE, Some("Cannot sign in now."))
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(access): State<Arc<Access>>,
    ConnectInfo(peer): ConnectInfo<WebPeer>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = same_origin(&headers, &uri, &peer) {
        return e.into_response();
    }
    if let Some(id) = session::id(&headers) {
        access.sessions.close(id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (SET_COOKIE, session::clear_cookie()),
            (LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}
