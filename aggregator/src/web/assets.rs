//! The static files of the view, embedded in the binary, each served under
//! a name that carries a hash of its content (`style.0123456789ab.css`), so
//! that it can be cached forever: a new build with other content has
//! another name. There is no build step and no third-party code; the hash is computed once, at the
//! first request.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::WebError;

/// An embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/static/`, with the hash of its content.
    pub name: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let hash = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
        Asset {
            name: format!("{stem}.{hash}.{extension}"),
            content_type,
            body,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("/static/{}", self.name)
    }
}

/// The style sheet of every page.
pub static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "style",
        "css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
});

/// The page script: live updates by conditional polling ([`super::etag`]).
pub static LIVE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "live",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/live.js"),
    )
});

/// `GET /static/{file}`: an embedded file by its hashed name, cacheable
/// for a year and never revalidated.
pub async fn serve(Path(file): Path<String>) -> Response {
    for asset in [&*STYLE, &*LIVE] {
        if asset.name == file {
            return (
                [
                    (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                    (
                        CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=31536000, immutable"),
                    ),
                ],
                asset.body,
            )
                .into_response();
        }
    }
    WebError::not_found(format!("there is no static file {file:?}")).into_response()
}
