//! Why a page cannot show what was asked, with the status that fits (400
//! for a bad parameter, naming it; 404 for an unknown service or
//! environment, saying so). [`super::error_page`] shows it as a page of its
//! own.

use axum::http::StatusCode;

use super::params::ParamError;

/// A page that could not be shown, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct WebError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the reader.
    pub message: String,
}

impl WebError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError {
            status,
            message: message.into(),
        }
    }

    /// 400: a request the page cannot take.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: who is asking is not known.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: who is asking may not see this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: what was asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: too busy to answer this now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<ParamError> for WebError {
    fn from(e: ParamError) -> Self {
        WebError::bad_request(e.to_string())
    }
}

/// A query's refusal as a page: the query API's codes mapped to HTTP, its
/// message kept (it names the input and, for unknown names, the known ones).
impl From<tonic::Status> for WebError {
    fn from(s: tonic::Status) -> Self {
        let status = match s.code() {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => StatusCode::BAD_REQUEST,
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(code = ?s.code(), error = %s.message(), "web: a query failed");
        }
        WebError::new(status, s.message())
    }
}
