//! Conditional GETs of the pages: each page answers with an `ETag` that
//! is a hash of its content and `Cache-Control: no-cache`, and a request
//! whose `If-None-Match` names the page as it is now gets 304 without a
//! body. The page script ([`super::assets::LIVE`]) polls with it, so an
//! unchanged page costs a render on the server but no transfer and no work
//! in the browser.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The largest page hashed (pages are paged; this is far above one).
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// The ETag of a page's bytes.
pub fn tag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

/// Adds the ETag to a successful HTML page, or answers 304.
pub async fn conditional(request: Request, next: Next) -> Response {
    let is_get = request.method() == Method::GET;
    let asked = request.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"text/html"));
    if !is_get || response.status() != StatusCode::OK || !html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = tag(&bytes);
    let Ok(value) = HeaderValue::from_str(&etag) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    parts
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let unchanged = asked.is_some_and(|a| {
        a.to_str()
            .is_ok_and(|a| a.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    });
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(ETAG, value);
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    }
    parts.headers.insert(ETAG, value);
    Response::from_parts(parts, Body::from(bytes))
}
