//! Errors of the runner client, with the kind and attempt count the CLI reports.

use std::fmt;

/// What went wrong talking to the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The base URL is not a usable `http(s)://` URL.
    InvalidUrl,
    /// The TCP or TLS connection could not be made.
    Connect,
    /// No complete answer before the deadline.
    Timeout,
    /// The runner answered with a non-2xx status.
    HttpStatus,
    /// The connection broke mid-request.
    Transport,
    /// The runner's answer is not the JSON expected.
    InvalidResponse,
}

impl ErrorKind {
    /// Short snake_case name used in the JSON error object.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUrl => "invalid_url",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::HttpStatus => "http_status",
            Self::Transport => "transport",
            Self::InvalidResponse => "invalid_response",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to the runner, after every retry the deadline allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ClientError {
    /// Class of the failure.
    pub kind: ErrorKind,
    /// Human-readable detail (the runner's own message for HTTP errors).
    pub message: String,
    /// Requests sent, retries included (0 when none could be sent).
    pub attempts: u32,
    /// HTTP status, for [`ErrorKind::HttpStatus`].
    pub http_status: Option<u16>,
    /// The runner's error code (`error.code` of its JSON error), when it gave one.
    pub code: Option<String>,
}

impl ClientError {
    /// An error of `kind` with no HTTP details.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            attempts: 0,
            http_status: None,
            code: None,
        }
    }

    /// Whether trying again may succeed: connection failures, timeouts, 408, 429 and 5xx.
    ///
    /// Other 4xx answers (bad input, 409 conflict, unknown run) stay the same however often they are sent.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Transport => true,
            ErrorKind::HttpStatus => self
                .http_status
                .is_some_and(|s| s == 408 || s == 429 || (500..600).contains(&s)),
            ErrorKind::InvalidUrl | ErrorKind::InvalidResponse => false,
        }
    }

    /// Whether the runner answered 404.
    pub fn is_not_found(&self) -> bool {
        self.http_status == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ClientError {
        ClientError {
            http_status: Some(code),
            ..ClientError::new(ErrorKind::HttpStatus, "x")
        }
    }

    #[test]
    fn server_errors_throttling_and_network_failures_are_transient() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).is_transient(), "{code}");
        }
        assert!(ClientError::new(ErrorKind::Connect, "refused").is_transient());
        assert!(ClientError::new(ErrorKind::Timeout, "slow").is_transient());
    }

    #[test]
    fn client_errors_are_permanent() {
        for code in [400, 401, 404, 409, 413, 415, 422] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(!ClientError::new(ErrorKind::InvalidResponse, "garbage").is_transient());
    }
}
