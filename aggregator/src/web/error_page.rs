//! A [`WebError`] as a page of its own: a title for its status, the
//! message, and where to go next.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::error::WebError;
use super::layout;

/// The page's title for `error`'s status.
fn title(error: &WebError) -> &'static str {
    match error.status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED => "Not signed in",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Cannot answer",
        StatusCode::SERVICE_UNAVAILABLE => "Busy",
        _ => "Error",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = title(&self);
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (self.message) }
            @if self.status == StatusCode::UNAUTHORIZED {
                p { a href="/login" { "Sign in with a query token" } }
            }
            p { a href="/" { "Back to the overview" } }
        };
        (
            self.status,
            Html(layout::page(title, None, body).into_string()),
        )
            .into_response()
    }
}
