//! The API's error model: every failure is JSON `{"error":{"code","message"}}` with the status that fits.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldError;

/// An error answered to an HTTP caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON (400).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A path segment cannot be decoded, e.g. a percent-encoded id that is not UTF-8 (400).
    #[error("malformed path: {0}")]
    MalformedPath(String),
    /// Missing or wrong bearer token (401).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Unknown run, trial or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not JSON (415).
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Well-formed but invalid (422).
    #[error("{0}")]
    Invalid(FieldError),
    /// The training queue is full (429).
    #[error("training queue is full; retry in {retry_after_secs} s")]
    QueueFull {
        /// Seconds the caller should wait.
        retry_after_secs: u64,
    },
    /// A dependency the request needs is unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an infrastructure failure (500); the detail is logged, not returned.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::MalformedPath(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::MalformedPath(_) => "malformed_path",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Invalid(_) => "invalid_request",
            Self::QueueFull { .. } => "queue_full",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        match &self {
            Self::Invalid(field_error) => {
                error["field"] = json!(field_error.field);
            }
            Self::Internal(detail) => {
                tracing::error!(error = %format!("{detail:#}"), "internal error");
            }
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Self::QueueFull { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
